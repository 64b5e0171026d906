"""W5 on the dialer (issue 13.7): a spool message records Read (WhatsApp Cloud and Twilio `read` status
webhooks, signed, in any order) and Replied (the customer's next message to that provider, within
DIALER_REPLY_HOURS, marks the dialer message sent to them last, once); the dashboard counts both."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from tests.fakes.whatsapp_cloud import message_payload, sign, status_payload
from tests.helpers import listen_live, live_events, run_jobs
from tests.helpers.whatsapp import CUSTOMER, center

OTHER = "+59899123999"


def sent_spool(db: Any, make: Any, provider: Any, number: str, minutes_ago: float, sid: str,
               state: int = 2) -> int:
    """A dialer message the gateway took `minutes_ago` (the send path is the engine's; tested apart)."""
    from webapp.models import SpoolMessage
    from webapp.services import time as clock

    dialer = _dialer(db, make, provider)
    when = clock.now() - timedelta(minutes=minutes_ago)
    message = SpoolMessage(dialer_id=dialer.id, destination=number, body="Promo", state=state,
                           provider_message_id=sid, created_at=when, sent_at=when)
    db.session.add(message)
    db.session.commit()
    return message.id


def _dialer(db: Any, make: Any, provider: Any) -> Any:
    from webapp.models import Dialer

    return db.session.scalar(sa.select(Dialer).where(Dialer.provider_id == provider.id)) or \
        make.dialer(make.group(), provider)


def spool(db: Any, message_id: int) -> Any:
    from webapp.models import SpoolMessage

    db.session.expire_all()
    return db.session.get(SpoolMessage, message_id)


def meta_post(app: Any, provider: Any, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    answer = app.test_client().post(f"/webhooks/{provider.id}/inbound", data=body, content_type="application/json",
                                    headers={"X-Hub-Signature-256": sign(body)})
    assert answer.status_code == 200
    run_jobs(app)


def customer_writes(app: Any, provider: Any, number: str, text: str = "Me interesa") -> dict[str, Any]:
    payload = message_payload(number.lstrip("+"), {"type": "text", "text": {"body": text}})
    meta_post(app, provider, payload)
    return payload


def test_whatsapp_read_counts_once_and_as_delivered_when_it_comes_first(app: Any, db: Any, make: Any,
                                                                       fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    first = sent_spool(db, make, c.provider, CUSTOMER, 5, "wamid.DIAL1")
    second = sent_spool(db, make, c.provider, OTHER, 5, "wamid.DIAL2")
    meta_post(app, c.provider, status_payload("wamid.DIAL1", "read", CUSTOMER.lstrip("+")))
    row = spool(db, first)
    assert (row.state, row.delivered_at is not None, row.read_at is not None) == (7, True, True)
    read_at = row.read_at
    for status in ("delivered", "read", "sent"):  # late and repeated callbacks change nothing
        meta_post(app, c.provider, status_payload("wamid.DIAL1", status, CUSTOMER.lstrip("+")))
    assert (spool(db, first).state, spool(db, first).read_at) == (7, read_at)
    meta_post(app, c.provider, status_payload("wamid.DIAL2", "delivered", OTHER.lstrip("+")))
    assert (spool(db, second).state, spool(db, second).read_at) == (7, None)
    meta_post(app, c.provider, status_payload("wamid.DIAL2", "read", OTHER.lstrip("+")))
    assert spool(db, second).read_at is not None


def test_a_failed_message_is_never_read(app: Any, db: Any, make: Any, fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    msg = sent_spool(db, make, c.provider, CUSTOMER, 5, "wamid.DIAL3")
    meta_post(app, c.provider, status_payload("wamid.DIAL3", "failed", CUSTOMER.lstrip("+"), error_code=131026))
    meta_post(app, c.provider, status_payload("wamid.DIAL3", "read", CUSTOMER.lstrip("+")))
    assert (spool(db, msg).state, spool(db, msg).read_at) == (5, None)


def test_twilio_whatsapp_read_status_is_recorded(app: Any, db: Any, make: Any, fake_twilio: Any) -> None:
    c = center(make, db, "twilio", fake_twilio)
    sid = "SM" + "d" * 32
    msg = sent_spool(db, make, c.provider, CUSTOMER, 5, sid)
    url = f"http://localhost/webhooks/{c.provider.id}/status"
    for status in ("read", "delivered"):
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": fake_twilio.account_sid,
                  "From": "whatsapp:+15005550006", "To": f"whatsapp:{CUSTOMER}", "ApiVersion": "2010-04-01"}
        answer = app.test_client().post(f"/webhooks/{c.provider.id}/status", data=params,
                                        headers={"X-Twilio-Signature": fake_twilio.signature(url, params)})
        assert answer.status_code == 200
        run_jobs(app)
    row = spool(db, msg)
    assert (row.state, row.read_at is not None) == (7, True)


def test_a_reply_marks_the_latest_message_sent_to_that_customer_once(app: Any, db: Any, make: Any,
                                                                     fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    old = sent_spool(db, make, c.provider, CUSTOMER, 60 * 24, "wamid.OLD")
    latest = sent_spool(db, make, c.provider, CUSTOMER, 30, "wamid.LATEST", state=7)
    failed = sent_spool(db, make, c.provider, CUSTOMER, 10, "wamid.FAILED", state=5)  # never reached them
    other = sent_spool(db, make, c.provider, OTHER, 30, "wamid.OTHERCUST")
    dialer_id = spool(db, latest).dialer_id
    app.extensions["conversa_redis"].delete(f"conversa:dialer:{dialer_id}:counts-sent")
    listener = listen_live(app, f"dialer:{dialer_id}")
    payload = customer_writes(app, c.provider, CUSTOMER)
    assert spool(db, latest).replied_at is not None
    assert (f"dialer:{dialer_id}", "dialer.counts") in [(t, k) for t, k, _d in live_events(listener)]  # live
    assert [spool(db, m).replied_at for m in (old, failed, other)] == [None, None, None]
    replied_at = spool(db, latest).replied_at
    meta_post(app, c.provider, payload)  # the same message delivered again: not a second reply
    customer_writes(app, c.provider, CUSTOMER, "¿Y el precio?")  # a second message: still one reply
    assert spool(db, latest).replied_at == replied_at
    assert spool(db, old).replied_at is None


def test_a_reply_outside_the_window_or_to_another_provider_counts_nothing(
        app: Any, db: Any, make: Any, fake_whatsapp: Any, monkeypatch: Any) -> None:
    from tests.helpers.whatsapp import provider_for

    c = center(make, db, "meta", fake_whatsapp)
    monkeypatch.setitem(app.config, "DIALER_REPLY_HOURS", 2)
    stale = sent_spool(db, make, c.provider, CUSTOMER, 180, "wamid.STALE")
    elsewhere = provider_for(make, "sms", fake_whatsapp)
    theirs = sent_spool(db, make, elsewhere, CUSTOMER, 5, "SM" + "e" * 32)
    customer_writes(app, c.provider, CUSTOMER)
    assert (spool(db, stale).replied_at, spool(db, theirs).replied_at) == (None, None)


def test_the_dashboard_counts_read_and_replied_beside_delivered(app: Any, db: Any, make: Any,
                                                                fake_whatsapp: Any) -> None:
    from tests.helpers.web import login
    from webapp.models import Dialer

    c = center(make, db, "meta", fake_whatsapp)
    for n, sid in enumerate(("wamid.A", "wamid.B", "wamid.C")):
        sent_spool(db, make, c.provider, f"+5989912300{n}", 5, sid)
    meta_post(app, c.provider, status_payload("wamid.A", "read", "59899123000"))
    meta_post(app, c.provider, status_payload("wamid.B", "delivered", "59899123001"))
    customer_writes(app, c.provider, "+59899123002")
    dialer = db.session.scalar(sa.select(Dialer).where(Dialer.provider_id == c.provider.id))
    make.user("sup", role="supervisor", groups=[dialer.security_group])
    client = app.test_client()
    login(client, "sup")
    body = client.get(f"/dialers/{dialer.id}/counts", headers={"HX-Request": "true"}).get_data(as_text=True)
    figures = dict(re.findall(r'data-count="(\w+)"[^>]*>\s*<span class="label">[^<]+</span><b>(\d+)</b>', body))
    assert (figures["delivered"], figures["read"], figures["replied"]) == ("2", "1", "1")


def test_the_sandbox_whatsapp_handsets_read_most_of_what_the_dialer_sent(db: Any, make: Any) -> None:
    """`make run`'s WhatsApp sandbox: two customers in three have read it when it is reported delivered."""
    from tests.helpers import queue, rows, run
    from webapp.models import SpoolState
    from webapp.services.dialer.delivery import sandbox_delivery_reports

    provider = make.provider("sandbox", channel="whatsapp", sender="+59829000000", max_per_second=0)
    d = make.dialer(make.group(), provider, running=True, interval_ms=0)
    ids = queue(db, d, [f"+5989910{n:04d}" for n in range(1, 7)])
    run(d)
    assert sandbox_delivery_reports(after_seconds=0) == 6
    db.session.commit()
    state = rows(db, d.id)
    assert {state[i].state for i in ids} == {SpoolState.DELIVERED}
    assert {i for i in ids if state[i].read_at is not None} == {i for i in ids if i % 3}
