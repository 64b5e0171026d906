"""D3 engine against real parts: the test database, the session's Redis and gateway fakes on loopback."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from tests.fakes.dinstar import PASSWORD as DINSTAR_PASSWORD
from tests.fakes.dinstar import USERNAME as DINSTAR_USER
from tests.helpers import (
    SENDER,
    drain_until_done,
    listen_live,
    live_events,
    numbers,
    queue,
    rows,
    run,
    twilio_provider,
)


# -- helpers ---------------------------------------------------------------------
def dinstar_provider(make: Any, fake: Any) -> Any:
    return make.provider("dinstar", credentials={"username": DINSTAR_USER, "password": DINSTAR_PASSWORD},
                         base_url=fake.url, sender="+59829000000", max_per_second=0)


def dialer_for(make: Any, provider: Any, **kw: Any) -> Any:
    kw.setdefault("running", True)
    kw.setdefault("interval_ms", 0)
    return make.dialer(make.group(), provider, **kw)


@pytest.fixture
def ordered(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One request at a time even unpaced, so the gateway sees the spool order."""
    monkeypatch.setitem(app.config, "DIALER_SEND_CONCURRENCY", 1)


@pytest.fixture
def quick(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No backoff sleeps in the adapters' own retries."""
    monkeypatch.setitem(app.config, "PROVIDER_BACKOFF", 0.0)


# -- claims -----------------------------------------------------------------------
def test_claim_order_is_priority_then_entry(db: Any, make: Any) -> None:
    """Higher priority first, then entry order; a second claimant gets the rest."""
    from webapp.services.dialer.claim import claim_batch

    d = dialer_for(make, make.provider())
    low1, = queue(db, d, ["+59899100001"], priority=0)
    mid1, = queue(db, d, ["+59899100002"], priority=5)
    low2, = queue(db, d, ["+59899100003"], priority=0)
    top, = queue(db, d, ["+59899100004"], priority=9)
    mid2, = queue(db, d, ["+59899100005"], priority=5)
    assert claim_batch(d.id, "w1", limit=3) == [top, mid1, mid2]
    assert claim_batch(d.id, "w2", limit=3) == [low1, low2]
    assert claim_batch(d.id, "w3", limit=3) == []
    held = rows(db, d.id)
    assert [held[i].lease_owner for i in (top, mid1, mid2, low1, low2)] == ["w1", "w1", "w1", "w2", "w2"]


def test_claims_never_overlap(app: Any, db: Any, make: Any) -> None:
    """Four threads claiming at once, each with its own connection: every row claimed exactly once."""
    from webapp.services.dialer.claim import claim_batch

    d = dialer_for(make, make.provider())
    ids = queue(db, d, numbers(200))
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def claimant(name: str) -> None:
        try:
            with app.app_context():
                mine: list[int] = []
                while batch := claim_batch(d.id, name, limit=7):
                    mine.extend(batch)
                got[name] = mine
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimant, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    claimed = [i for mine in got.values() for i in mine]
    assert sorted(claimed) == ids
    assert len(set(claimed)) == 200
    held = rows(db, d.id)
    assert all(held[i].lease_owner == name for name, mine in got.items() for i in mine)


def test_expired_claim_goes_back_to_the_pool(db: Any, make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim whose lease passed is released by reconcile and claimable again; a live one is not."""
    from webapp.services import time as clock
    from webapp.services.dialer import claim, reconcile

    d = dialer_for(make, make.provider())
    ids = queue(db, d, numbers(3))
    assert claim.claim_batch(d.id, "dead", limit=3, lease_seconds=30) == ids
    assert claim.claim_batch(d.id, "other", limit=3) == []
    assert reconcile.reconcile_expired()["released"] == 0
    later = clock.now() + timedelta(seconds=31)
    assert reconcile.reconcile_expired(now=later)["released"] == 3
    assert {r.lease_owner for r in rows(db, d.id).values()} == {None}
    assert claim.claim_batch(d.id, "other", limit=3) == ids


# -- sending ------------------------------------------------------------------------
def test_sends_everything_once_in_order(db: Any, make: Any, ordered: None, fake_twilio: Any) -> None:
    """A run drains the dialer: each message once, SENT with the gateway's sid, in priority order."""
    d = dialer_for(make, twilio_provider(make, fake_twilio))
    ids = queue(db, d, numbers(60))
    first, = queue(db, d, ["+59899199999"], priority=3)
    report = run(d)
    assert report["sent"] == 61 and report["stopped"] == "empty"
    sent = fake_twilio.sent()
    assert [m["to"] for m in sent] == ["+59899199999", *numbers(60)]
    state = rows(db, d.id)
    assert {r.state for r in state.values()} == {2}
    assert {r.in_flight_at for r in state.values()} == {None}
    assert {r.lease_owner for r in state.values()} == {None}
    assert {r.attempts for r in state.values()} == {1}
    assert sorted(r.provider_message_id for r in state.values()) == sorted(m["sid"] for m in sent)
    assert state[first].provider_message_id == sent[0]["sid"]
    assert all(state[i].sent_at is not None for i in ids)


@pytest.mark.parametrize("interval_ms", [0, 1], ids=["batched", "paced"])
def test_ports_in_turn_at_the_dinstar_gateway(db: Any, make: Any, fake_dinstar: Any,
                                              interval_ms: int) -> None:
    """Dial string (0.3): ports 0,1,2,3,0,1,… in spool order, as the gateway records them."""
    d = dialer_for(make, dinstar_provider(make, fake_dinstar), dial_string="(0.3)", ports=[0, 1, 2, 3],
                   interval_ms=interval_ms)
    ids = queue(db, d, numbers(10))
    run(d)
    results = sorted(fake_dinstar.sent(), key=lambda r: r["user_id"])
    assert [r["user_id"] for r in results] == ids
    assert [r["port"] for r in results] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    state = rows(db, d.id)
    assert [state[i].port for i in ids] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert {r.state for r in state.values()} == {2}
    requests = fake_dinstar.send_requests()
    assert len(requests) == (4 if interval_ms == 0 else 10)  # one per port when batched


def test_outside_the_schedule_nothing_is_sent(db: Any, make: Any, fake_twilio: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Monday to Friday 09:00-18:00: on Sunday nothing goes out; on Monday at ten it does."""
    from webapp.models import ScheduleEntry
    from webapp.services import time as clock

    d = dialer_for(make, twilio_provider(make, fake_twilio))
    d.schedule.append(ScheduleEntry(days=0b0011111, start_time=dtime(9, 0), end_time=dtime(18, 0)))
    db.session.commit()
    queue(db, d, numbers(5))
    monkeypatch.setattr(clock, "center_now", lambda: datetime(2026, 5, 17, 10, 0))  # a Sunday
    assert run(d)["stopped"] == "out_of_schedule"
    assert fake_twilio.sent_count() == 0
    assert {r.state for r in rows(db, d.id).values()} == {1}
    monkeypatch.setattr(clock, "center_now", lambda: datetime(2026, 5, 18, 8, 59))  # Monday, too early
    assert run(d)["stopped"] == "out_of_schedule"
    assert fake_twilio.sent_count() == 0
    monkeypatch.setattr(clock, "center_now", lambda: datetime(2026, 5, 18, 10, 0))
    assert run(d)["sent"] == 5
    assert fake_twilio.sent_count() == 5


@pytest.mark.parametrize("dncr", [True, False], ids=["dncr-on", "dncr-off"])
def test_do_not_contact(db: Any, make: Any, fake_twilio: Any, dncr: bool) -> None:
    """DNCR on: listed numbers end BLOCKED and are not sent; off: they are sent."""
    from webapp.models import DoNotContact

    d = dialer_for(make, twilio_provider(make, fake_twilio), dncr=dncr)
    listed, free, other_dialer = "+59899100001", "+59899100002", "+59899100003"
    db.session.add_all([DoNotContact(phone=listed, dialer_id=d.id, source="upload"),
                        DoNotContact(phone=other_dialer, dialer_id=dialer_for(make, make.provider()).id,
                                     source="upload")])
    db.session.commit()
    ids = queue(db, d, [listed, free, other_dialer])
    run(d)
    state = rows(db, d.id)
    if dncr:
        assert [state[i].state for i in ids] == [3, 2, 2]
        assert sorted(m["to"] for m in fake_twilio.sent()) == [free, other_dialer]
    else:
        assert [state[i].state for i in ids] == [2, 2, 2]
        assert sorted(m["to"] for m in fake_twilio.sent()) == [listed, free, other_dialer]


def test_stop_and_start(app: Any, db: Any, make: Any, fake_twilio: Any) -> None:
    """Stopped: nothing sent. Start is refused while disabled; once started it sends and says so live."""
    from webapp.models import AuditEntry
    from webapp.services.dialer import actions

    supervisor = make.user("sup", role="supervisor")
    d = dialer_for(make, twilio_provider(make, fake_twilio), running=False, enabled=False)
    queue(db, d, numbers(3))
    assert run(d)["stopped"] == "disabled"
    with pytest.raises(actions.DialerError) as refused:
        actions.start(d, supervisor.id)
    with app.test_request_context(), force_locale("en"):
        assert str(refused.value) == "Enable the dialer before starting it."
    with app.test_request_context(), force_locale("es"):
        assert str(refused.value) == "Habilite el marcador antes de ponerlo en marcha."
    d.enabled = True
    db.session.commit()
    assert run(d)["stopped"] == "stopped"
    assert fake_twilio.sent_count() == 0
    listener = listen_live(app, f"dialer:{d.id}", f"dialers:{d.security_group_id}")
    actions.start(d, supervisor.id)
    db.session.commit()
    assert d.running is True
    assert run(d)["sent"] == 3
    actions.stop(d, supervisor.id)
    db.session.commit()
    events = live_events(listener)
    assert (f"dialer:{d.id}", "dialer.state", {"dialer_id": d.id}) in events
    assert (f"dialers:{d.security_group_id}", "dialer.state", {"dialer_id": d.id}) in events
    assert (f"dialer:{d.id}", "dialer.counts", {"dialer_id": d.id}) in events
    assert [e[1] for e in events if e[0].startswith("dialers:")] == ["dialer.state", "dialer.state"]
    actions = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.target_id == d.id)
                                 .order_by(AuditEntry.id)).all()
    assert actions == ["dialer.start", "dialer.stop"]
    queue(db, d, numbers(2, start=50))
    assert run(d)["stopped"] == "stopped"
    assert fake_twilio.sent_count() == 3


def test_delete_cancels_everything_not_processed(db: Any, make: Any) -> None:
    """S4 Delete: NONE, TO PROCESS, BLOCKED, INVALID, FAILED → CANCELLED; in flight, sent, delivered stay."""
    from webapp.models import SpoolMessage
    from webapp.services import time as clock
    from webapp.services.dialer import actions

    d = dialer_for(make, make.provider())
    ids = {s: queue(db, d, [f"+5989920000{s}"], state=s)[0] for s in range(8)}
    flying, = queue(db, d, ["+59899200009"])
    db.session.execute(sa.update(SpoolMessage).where(SpoolMessage.id == flying).values(in_flight_at=clock.now()))
    db.session.commit()
    assert actions.cancel_pending(d) == 5
    db.session.commit()
    state = rows(db, d.id)
    assert {s: state[i].state for s, i in ids.items()} == {0: 6, 1: 6, 2: 2, 3: 6, 4: 6, 5: 6, 6: 6, 7: 7}
    assert state[flying].state == 1 and state[flying].in_flight_at is not None
    assert actions.cancel_pending(d) == 0


def test_opted_out_is_blocked_and_listed(db: Any, make: Any, fake_twilio: Any) -> None:
    """Twilio 21610: BLOCKED, and the number joins the do-not-contact list (source provider)."""
    from webapp.models import DoNotContact

    d = dialer_for(make, twilio_provider(make, fake_twilio), dncr=False)
    opted, ok = queue(db, d, ["+15005550004", "+59899100002"])
    run(d)
    state = rows(db, d.id)
    assert (state[opted].state, state[ok].state) == (3, 2)
    assert "21610" in state[opted].last_error
    listed = db.session.execute(sa.select(DoNotContact.phone, DoNotContact.source)).all()
    assert [tuple(r) for r in listed] == [("+15005550004", "provider")]


def test_permanent_refusal_fails(db: Any, make: Any, fake_twilio: Any) -> None:
    """Twilio 21211 (invalid To): FAILED with the code, tried once."""
    d = dialer_for(make, twilio_provider(make, fake_twilio))
    bad, = queue(db, d, ["+15005550001"])
    run(d)
    row = rows(db, d.id)[bad]
    assert (row.state, row.attempts, row.in_flight_at, row.lease_owner) == (5, 1, None, None)
    assert row.last_error.startswith("21211")
    assert len(fake_twilio.api_requests("Messages.json", "POST")) == 1


def test_temporary_failure_is_retried_later_then_sent(app: Any, db: Any, make: Any, fake_twilio: Any,
                                                      quick: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """5xx beyond the adapter's own retries: back to TO PROCESS, held until its retry time, then sent once."""
    from webapp.services import time as clock

    d = dialer_for(make, twilio_provider(make, fake_twilio))
    msg, = queue(db, d, ["+59899100001"])
    fake_twilio.fail_next(3, "500")
    report = run(d)
    assert report["retry"] == 1 and report["sent"] == 0
    row = rows(db, d.id)[msg]
    assert (row.state, row.attempts, row.in_flight_at, row.lease_owner) == (1, 1, None, None)
    assert row.last_error.startswith("20500")
    assert row.lease_until > clock.now()
    assert run(d)["claimed"] == 0  # still waiting for its retry time
    assert len(fake_twilio.api_requests("Messages.json", "POST")) == 3
    later = clock.now() + timedelta(hours=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert run(d)["sent"] == 1
    row = rows(db, d.id)[msg]
    assert (row.state, row.attempts) == (2, 2)
    assert fake_twilio.sent_count() == 1
    assert len(fake_twilio.api_requests("Messages.json", "POST")) == 4


def test_temporary_failures_end_failed_after_max_attempts(app: Any, db: Any, make: Any, quick: None,
                                                          fake_twilio: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """After DIALER_MAX_ATTEMPTS tries the message is FAILED, not retried forever."""
    from webapp.services import time as clock

    monkeypatch.setitem(app.config, "DIALER_MAX_ATTEMPTS", 2)
    monkeypatch.setitem(app.config, "DIALER_SEND_ATTEMPTS", 1)
    d = dialer_for(make, twilio_provider(make, fake_twilio))
    msg, = queue(db, d, ["+59899100001"])
    fake_twilio.set_mode("500")
    run(d)
    later = clock.now() + timedelta(hours=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    run(d)
    row = rows(db, d.id)[msg]
    assert (row.state, row.attempts) == (5, 2)
    assert len(fake_twilio.api_requests("Messages.json", "POST")) == 2


# -- delivery receipts ----------------------------------------------------------------
def test_delivery_callbacks_only_move_forward(db: Any, make: Any, fake_twilio: Any) -> None:
    """Out of order: delivered stays delivered; failed stays failed; unknown sids are not ours."""
    from webapp.providers.base import StatusUpdate
    from webapp.services.dialer.delivery import apply_delivery

    provider = twilio_provider(make, fake_twilio)
    d = dialer_for(make, provider)
    a, b = queue(db, d, numbers(2))
    run(d)
    state = rows(db, d.id)
    sid_a, sid_b = state[a].provider_message_id, state[b].provider_message_id
    for status in ("delivered", "sent", "failed", "undelivered", "delivered"):
        assert apply_delivery(provider.id, StatusUpdate(status, sid_a)) is True
        db.session.commit()
        assert rows(db, d.id)[a].state == 7
    for status in ("undelivered", "delivered", "sent"):
        assert apply_delivery(provider.id, StatusUpdate(status, sid_b, error_code="30003")) is True
        db.session.commit()
        assert rows(db, d.id)[b].state == 5
    assert rows(db, d.id)[b].last_error == "undelivered 30003"
    assert rows(db, d.id)[a].delivered_at is not None
    assert apply_delivery(provider.id, StatusUpdate("delivered", "SMnotours")) is False
    assert apply_delivery(make.provider().id, StatusUpdate("delivered", sid_a)) is False


def test_sandbox_reports_what_it_sent_delivered(db: Any, make: Any) -> None:
    """`make run`'s dialers: the simulated handsets report the sandbox's sends delivered, and only those."""
    from webapp.models import SpoolMessage, SpoolState, utcnow
    from webapp.services.dialer.delivery import sandbox_delivery_reports

    d = dialer_for(make, make.provider("sandbox", sender="+59829000000", max_per_second=0))
    ok_a, ok_b, refused = queue(db, d, ["+59899100001", "+59899100002", "+59899100000"])
    [never_sent] = queue(db, d, ["+59899100003"], state=SpoolState.SENT)  # not the sandbox's: no record
    db.session.execute(sa.update(SpoolMessage).where(SpoolMessage.id == never_sent)
                       .values(sent_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    run(d)
    assert {i: r.state for i, r in rows(db, d.id).items()} == {
        ok_a: SpoolState.SENT, ok_b: SpoolState.SENT, refused: SpoolState.FAILED, never_sent: SpoolState.SENT}
    assert sandbox_delivery_reports(after_seconds=60) == 0  # too recent: a real gateway takes a moment
    assert sandbox_delivery_reports(after_seconds=0) == 2
    db.session.commit()
    state = rows(db, d.id)
    assert {i: r.state for i, r in state.items()} == {
        ok_a: SpoolState.DELIVERED, ok_b: SpoolState.DELIVERED, refused: SpoolState.FAILED,
        never_sent: SpoolState.SENT}
    assert state[ok_a].delivered_at is not None
    assert sandbox_delivery_reports(after_seconds=0) == 0  # delivered stays delivered; nothing twice


def test_dinstar_results_then_delivery_reports(db: Any, make: Any, fake_dinstar: Any) -> None:
    """Dinstar: the result (user_id = spool id) gives "port:ref_id", the key its delivery report carries."""
    from webapp.providers.base import StatusUpdate
    from webapp.services.dialer.delivery import apply_delivery

    provider = dinstar_provider(make, fake_dinstar)
    d = dialer_for(make, provider, dial_string="(0.3)", ports=[0, 1, 2, 3])
    msg, = queue(db, d, ["+59899100001"])
    run(d)
    assert apply_delivery(provider.id, StatusUpdate("sent", "0:1", ref=msg)) is True
    db.session.commit()
    assert (rows(db, d.id)[msg].state, rows(db, d.id)[msg].provider_message_id) == (2, "0:1")
    assert apply_delivery(provider.id, StatusUpdate("delivered", "0:1")) is True
    db.session.commit()
    assert rows(db, d.id)[msg].state == 7
    assert apply_delivery(make.provider().id, StatusUpdate("failed", None, ref=msg)) is False


# -- reconciliation -----------------------------------------------------------------------
def _in_flight(db: Any, msg: int, seconds_ago: float = 120) -> datetime:
    from webapp.models import SpoolMessage
    from webapp.services import time as clock

    then = clock.now() - timedelta(seconds=seconds_ago)
    db.session.execute(sa.update(SpoolMessage).where(SpoolMessage.id == msg).values(
        in_flight_at=then, lease_owner="crashed-worker", lease_until=then + timedelta(seconds=5), attempts=1))
    db.session.commit()
    return then


def test_reconcile_found_is_sent_without_resending(db: Any, make: Any, fake_twilio: Any) -> None:
    """The request went out but its answer was lost: the gateway's log has it, so it is SENT, not resent."""
    from webapp.services.dialer import reconcile

    d = dialer_for(make, twilio_provider(make, fake_twilio))
    msg, = queue(db, d, ["+59899100001"], body="Tu turno es mañana")
    then = _in_flight(db, msg)
    sid = fake_twilio.add_message("+59899100001", "Tu turno es mañana", SENDER,
                                  (then + timedelta(seconds=1)).replace(tzinfo=UTC))
    assert run(d)["claimed"] == 0  # in flight: no worker may claim it
    assert reconcile.reconcile_expired() == {"released": 0, "found": 1, "not_found": 0, "unknown": 0, "later": 0}
    row = rows(db, d.id)[msg]
    assert (row.state, row.provider_message_id, row.in_flight_at, row.needs_review) == (2, sid, None, False)
    run(d)
    assert len(fake_twilio.sends_for("+59899100001")) == 1


def test_reconcile_not_found_is_sent_once(db: Any, make: Any, fake_twilio: Any) -> None:
    """The gateway never got it: back to the pool, and sent exactly once."""
    from webapp.services.dialer import reconcile

    d = dialer_for(make, twilio_provider(make, fake_twilio))
    msg, = queue(db, d, ["+59899100001"])
    _in_flight(db, msg)
    assert reconcile.reconcile_expired()["not_found"] == 1
    row = rows(db, d.id)[msg]
    assert (row.state, row.in_flight_at, row.lease_owner) == (1, None, None)
    run(d)
    assert reconcile.reconcile_expired() == {"released": 0, "found": 0, "not_found": 0, "unknown": 0, "later": 0}
    run(d)
    assert len(fake_twilio.sends_for("+59899100001")) == 1
    assert rows(db, d.id)[msg].state == 2


def test_reconcile_asks_again_later_while_the_gateway_rate_limits_us(db: Any, make: Any, fake_twilio: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A message a crash left in flight while Twilio answers 429 (Retry-After: 5) to the lookup itself: not
    left to a supervisor, asked again after the wait (NOT_FOUND, then sent once). While the provider's rate
    limit holds us back, reconcile does not even ask."""
    import time

    from webapp.services import time as clock
    from webapp.services.dialer import gateway, reconcile

    d = dialer_for(make, twilio_provider(make, fake_twilio))
    msg, = queue(db, d, ["+59899100001"])
    _in_flight(db, msg)
    fake_twilio.retry_after = "5"
    fake_twilio.set_mode("429")
    out = reconcile.reconcile_expired()
    assert (out["later"], out["unknown"], out["not_found"]) == (1, 0, 0)
    row = rows(db, d.id)[msg]
    assert (row.state, row.needs_review, row.in_flight_at is not None) == (1, False, True)
    assert row.lease_until > clock.now()
    assert reconcile.reconcile_expired()["later"] == 0  # not asked again before the wait is over
    fake_twilio.set_mode(None)
    later = clock.now() + timedelta(seconds=6)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert reconcile.reconcile_expired()["not_found"] == 1
    run(d)
    assert len(fake_twilio.sends_for("+59899100001")) == 1

    other, = queue(db, d, ["+59899100002"])
    _in_flight(db, other)
    gateway.gateway_limits().refused(d.provider_id, retry_after=30, sent_at=time.time())
    asked = len(fake_twilio.api_requests(method="GET"))
    assert reconcile.reconcile_expired()["later"] == 1
    assert len(fake_twilio.api_requests(method="GET")) == asked  # a provider holding us back is not asked
    assert rows(db, d.id)[other].needs_review is False


def test_reconcile_unknown_waits_for_a_supervisor(db: Any, make: Any, fake_twilio: Any,
                                                  quick: None) -> None:
    """The gateway cannot tell: needs_review, never resent by itself; a supervisor's resend sends it once."""
    from webapp.models import AuditEntry
    from webapp.services.dialer import actions, counts, reconcile

    supervisor = make.user("sup", role="supervisor")
    d = dialer_for(make, twilio_provider(make, fake_twilio))
    msg, other = queue(db, d, numbers(2))
    _in_flight(db, msg)
    fake_twilio.set_mode("500")
    assert reconcile.reconcile_expired()["unknown"] == 1
    fake_twilio.set_mode(None)
    assert reconcile.reconcile_expired()["unknown"] == 0  # decided once, not asked again
    run(d)
    assert [m["to"] for m in fake_twilio.sent()] == [numbers(2)[1]]
    row = rows(db, d.id)[msg]
    assert (row.state, row.needs_review) == (1, True)
    c = counts.counts(d.id)
    assert (c.needs_review, c.in_flight, c.processed, c.not_processed) == (1, 0, 1, 1)
    assert actions.cancel_pending(d) == 0  # in flight: Delete leaves it for the decision
    with pytest.raises(actions.DialerError):
        actions.resolve_review(other, "resend", supervisor.id)
    actions.resolve_review(msg, "resend", supervisor.id)
    db.session.commit()
    run(d)
    assert len(fake_twilio.sends_for(numbers(2)[0])) == 1
    assert rows(db, d.id)[msg].state == 2
    assert db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.target_id == d.id)
                              .order_by(AuditEntry.id)).all() == ["dialer.cancel_pending", "dialer.review_resend"]


def test_review_cancel(db: Any, make: Any, fake_twilio: Any, quick: None) -> None:
    """A supervisor's cancel ends the message CANCELLED, never sent."""
    from webapp.services.dialer import actions, reconcile

    d = dialer_for(make, twilio_provider(make, fake_twilio))
    msg, = queue(db, d, ["+59899100001"])
    _in_flight(db, msg)
    fake_twilio.set_mode("500")
    reconcile.reconcile_expired()
    fake_twilio.set_mode(None)
    actions.resolve_review(msg, "cancel", None)
    db.session.commit()
    run(d)
    assert fake_twilio.sent_count() == 0
    assert (rows(db, d.id)[msg].state, rows(db, d.id)[msg].needs_review) == (6, False)


# -- S4 single message, counts, status ----------------------------------------------------------
def test_single_message_goes_next(app: Any, db: Any, make: Any, ordered: None, fake_twilio: Any,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A single message is normalised to E.164 and sent before the queued bulk; a bad number queues nothing."""
    from webapp.services.dialer import actions

    monkeypatch.setitem(app.config, "DEFAULT_REGION", "UY")
    d = dialer_for(make, twilio_provider(make, fake_twilio))
    queue(db, d, numbers(3), priority=9999)
    with pytest.raises(actions.DialerError) as bad:
        actions.queue_single(d, "12", "Hola")
    with app.test_request_context(), force_locale("es"):
        assert str(bad.value) == "12 no es un número de teléfono válido."
    with pytest.raises(actions.DialerError):
        actions.queue_single(d, "098 344 384", "   ")
    single = actions.queue_single(d, "098 344 384", "Hola Ana")
    db.session.commit()
    assert (single.destination, single.priority) == ("+59898344384", 10000)
    run(d)
    assert [m["to"] for m in fake_twilio.sent()] == ["+59898344384", *numbers(3)]


def test_counts_and_status(db: Any, make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One figure per dashboard box: processed = sent + delivered + failed; other = invalid."""
    from webapp.models import ScheduleEntry
    from webapp.services import time as clock
    from webapp.services.dialer import counts

    d = dialer_for(make, make.provider())
    for state, n in ((0, 1), (1, 4), (2, 3), (3, 2), (4, 5), (5, 1), (6, 2), (7, 6)):
        queue(db, d, numbers(n), state=state)
    c = counts.counts(d.id)
    assert (c.processed, c.not_processed, c.other, c.blocked) == (10, 5, 5, 2)
    assert (c.sent, c.delivered, c.failed, c.cancelled, c.in_flight, c.needs_review, c.total) == \
        (3, 6, 1, 2, 0, 0, 24)
    d.schedule.append(ScheduleEntry(days=0b0011111, start_time=dtime(9, 0), end_time=dtime(18, 0)))
    db.session.commit()
    monkeypatch.setattr(clock, "center_now", lambda: datetime(2026, 5, 17, 10, 0))  # Sunday
    s = counts.status(d)
    assert (s.active, s.in_schedule, s.counts) == (True, False, c)
    monkeypatch.setattr(clock, "center_now", lambda: datetime(2026, 5, 18, 10, 0))
    assert counts.status(d).in_schedule is True


def test_clock_enqueues_free_slots_once(app: Any, db: Any, make: Any, fake_twilio: Any) -> None:
    """The periodic task enqueues one job per free slot, collapses duplicates, and the jobs drain the dialer."""
    from tests.helpers import run_jobs
    from workers.dialer import schedule_dialers, slot_key

    app.config["DIALER_WORKERS_PER_DIALER"] = 2
    d = dialer_for(make, twilio_provider(make, fake_twilio))
    idle = dialer_for(make, twilio_provider(make, fake_twilio), running=False)
    queue(db, d, numbers(30))
    queue(db, idle, numbers(3, start=100))
    assert schedule_dialers() == {d.id: [0, 1]}
    assert schedule_dialers() == {d.id: []}  # already queued
    app.extensions["conversa_redis"].set(slot_key(d.id, 0), "someone", ex=5)
    assert run_jobs(app) == 2
    assert fake_twilio.sent_count() == 30
    assert schedule_dialers() == {}


def test_unpaced_concurrent_sends_each_once(app: Any, db: Any, make: Any, fake_twilio: Any) -> None:
    """A far gateway (every answer takes 40 ms): after the first group the job keeps many requests in
    flight (its window grows past the 4 it starts with), and 230 messages are still each sent once, all
    SENT with their own sid."""
    fake_twilio.latency = 0.04
    d = dialer_for(make, twilio_provider(make, fake_twilio))
    ids = queue(db, d, numbers(230))
    report = run(d)
    assert report["sent"] == 230 and report["claimed"] >= 230  # the first claim's rest goes back after the probe
    assert report["concurrency"] > 4 and fake_twilio.max_in_flight > 4
    r = app.extensions["conversa_redis"]  # the dashboard's rate counts every SENT, once
    assert sum(int(r.get(k)) for k in r.scan_iter(f"conversa:dialer:{d.id}:sent:*")) == 230
    assert sorted(m["to"] for m in fake_twilio.sent()) == numbers(230)
    state = rows(db, d.id)
    assert {state[i].state for i in ids} == {2}
    assert len({state[i].provider_message_id for i in ids}) == 230


def test_sender_overlaps_requests_only_while_they_mostly_wait(app: Any, db: Any, make: Any,
                                                              fake_twilio: Any) -> None:
    """tune(): one at a time while a request costs about as much CPU as it waits (loopback), up to
    DIALER_SEND_CONCURRENCY once each mostly waits for the gateway, and back (still_far, asked by the
    pipeline) when it stops waiting."""
    from webapp.services.dialer import gateway
    from webapp.services.dialer.sender import Sender

    d = dialer_for(make, twilio_provider(make, fake_twilio))
    sender = Sender(d, "t", gateway.make_adapter(d.provider), app.extensions["conversa_redis"])
    try:
        assert (sender.max_concurrency, sender.concurrency) == (64, 1)
        sender.tune(50, wall=0.10, cpu=0.08)  # 2 ms a request, 1.6 of them CPU: stay
        assert sender.concurrency == 1 and sender.executor is None
        sender.tune(50, wall=2.5, cpu=0.1)  # 50 ms a request, 2 of them CPU: overlap
        # one shared session, its pool sized to the threads
        assert sender.concurrency == 64 and sender.executor is not None and sender.adapter.pool_size == 64
        sender.tune(50, wall=0.7, cpu=0.1)  # many at once, each mostly waiting: keep
        assert sender.concurrency == 64
        assert sender.still_far(waited=2.5, cpu=0.1, answers=50)  # 50 ms each, 2 of them CPU
        assert not sender.still_far(waited=0.1, cpu=0.08, answers=50)  # 2 ms each: the CPU is the limit
    finally:
        sender.close()


# -- rate limits (429 and the like) ---------------------------------------------------------------
@pytest.fixture
def short_jobs(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job's time budget shorter than any rate-limit wait: the job leaves the wait to a later job."""
    monkeypatch.setitem(app.config, "DIALER_JOB_SECONDS", 0.5)


def test_429_spends_no_attempt_and_holds_every_worker_back(app: Any, db: Any, make: Any, fake_twilio: Any,
                                                          short_jobs: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twilio 20429 with Retry-After: 1, on a dialer that allows one attempt per message: the message goes
    back TO PROCESS with its attempt given back and a not-before time, the rest of the claim is given back,
    another worker sends nothing meanwhile; after the wait all three go out, each once, none FAILED."""
    from webapp.services import time as clock
    from webapp.services.dialer import counts, gateway

    monkeypatch.setitem(app.config, "DIALER_MAX_ATTEMPTS", 1)
    d = dialer_for(make, twilio_provider(make, fake_twilio))
    first, *rest = queue(db, d, numbers(3))
    fake_twilio.fail_next(1, "429")
    report = run(d)
    assert (report["rate_limited"], report["failed"], report["sent"], report["stopped"]) == (1, 0, 0, "rate_limited")
    state = rows(db, d.id)
    assert (state[first].state, state[first].attempts, state[first].in_flight_at, state[first].lease_owner) == \
        (1, 0, None, None)
    assert state[first].last_error.startswith("rate limited: 20429")
    assert state[first].lease_until > clock.now()  # not before the wait is over
    assert [(state[i].state, state[i].attempts, state[i].lease_owner) for i in rest] == [(1, 0, None)] * 2
    assert gateway.provider_hold(d.provider_id) > 0.5  # at least Retry-After, for every worker
    assert run(d, slot=1)["stopped"] == "rate_limited"  # another worker holds back too
    assert len(fake_twilio.api_requests("Messages.json", "POST")) == 1
    limit = counts.status(d).limit
    assert limit is not None and limit.hits == 1
    drain_until_done(db, d)
    assert sorted(m["to"] for m in fake_twilio.sent()) == numbers(3)
    assert {(r.state, r.attempts) for r in rows(db, d.id).values()} == {(2, 1)}


def test_pair_rate_limit_holds_back_only_that_recipient(db: Any, make: Any, fake_whatsapp: Any) -> None:
    """Meta 131056 (too many to one customer): that message waits about 6 s without spending an attempt;
    the others go out in the same run and the provider is not held back."""
    from tests.fakes.whatsapp_cloud import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
    from webapp.services import time as clock
    from webapp.services.dialer import counts, gateway

    provider = make.provider("whatsapp_cloud", channel="whatsapp", base_url=fake_whatsapp.url, sender="+59829000000",
                             max_per_second=0, options={"phone_number_id": PHONE_NUMBER_ID},
                             credentials={"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET,
                                          "verify_token": VERIFY_TOKEN})
    d = dialer_for(make, provider)
    limited, *others = queue(db, d, numbers(3))
    fake_whatsapp.pair_limited.add(numbers(1)[0].lstrip("+"))
    report = run(d)
    assert (report["sent"], report["rate_limited"], report["failed"]) == (2, 1, 0)
    state = rows(db, d.id)
    assert (state[limited].state, state[limited].attempts) == (1, 0)
    assert state[limited].lease_until > clock.now() + timedelta(seconds=4)
    assert state[limited].last_error.startswith("rate limited: 131056")
    assert [state[i].state for i in others] == [2, 2]
    assert gateway.provider_hold(provider.id) == 0 and counts.status(d).limit is None


def test_clock_starts_no_job_while_the_provider_holds_us_back(app: Any, db: Any, make: Any,
                                                              fake_twilio: Any) -> None:
    """While a provider's rate limit holds everyone back the clock enqueues nothing for its dialers (no
    job spinning on a wait); when the wait is about over it enqueues them again."""
    import time

    from tests.helpers import wait_until
    from webapp.services.dialer import gateway
    from workers.dialer import HELD_BACK_SECONDS, schedule_dialers

    d = dialer_for(make, twilio_provider(make, fake_twilio))
    other = dialer_for(make, twilio_provider(make, fake_twilio))
    queue(db, d, numbers(2))
    queue(db, other, numbers(2, start=10))
    gateway.gateway_limits().refused(d.provider_id, retry_after=HELD_BACK_SECONDS + 1.5, sent_at=time.time())
    assert schedule_dialers() == {other.id: [0, 1]}
    wait_until(lambda: gateway.provider_hold(d.provider_id) <= HELD_BACK_SECONDS, 30, "the wait to near its end")
    assert schedule_dialers() == {d.id: [0, 1], other.id: []}


@pytest.mark.slow
def test_429_among_overlapped_requests_then_recovery(app: Any, db: Any, make: Any, fake_twilio: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A far gateway (40 ms answers, so the job overlaps requests) says 429 to a few of them mid-bulk:
    the job waits the limit out, goes on one at a time, speeds back up, and 150 messages still go out
    exactly once, none FAILED, no attempt spent on a 429."""
    monkeypatch.setitem(app.config, "DIALER_RATE_LIMIT_QUIET", 0)
    fake_twilio.latency = 0.04
    d = dialer_for(make, twilio_provider(make, fake_twilio))
    ids = queue(db, d, numbers(150))
    fake_twilio.fail_next(3, "429", after=75)
    reports = drain_until_done(db, d)
    assert sum(r["rate_limited"] for r in reports) >= 1 and sum(r["failed"] for r in reports) == 0
    assert max(r["concurrency"] for r in reports) > 1
    assert len(fake_twilio.answered(429)) == 3
    assert sorted(m["to"] for m in fake_twilio.sent()) == numbers(150)
    state = rows(db, d.id)
    assert {(state[i].state, state[i].attempts) for i in ids} == {(2, 1)}


def test_429_to_a_dinstar_batch(app: Any, db: Any, make: Any, fake_dinstar: Any,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch request answered 429: every message of it back without spending an attempt, one refusal
    for the limit (not one per message); after the wait all ten go out once."""
    monkeypatch.setitem(app.config, "DIALER_RATE_LIMIT_QUIET", 0)
    d = dialer_for(make, dinstar_provider(make, fake_dinstar), dial_string="(0.1)", ports=[0, 1])
    ids = queue(db, d, numbers(10))
    fake_dinstar.fail_next(1, "429", path="send_sms")
    reports = drain_until_done(db, d)
    assert reports[0]["rate_limited"] == 5 and sum(r["failed"] for r in reports) == 0  # port 0's request
    assert sorted(r["user_id"] for r in fake_dinstar.sent()) == ids
    state = rows(db, d.id)
    assert {(state[i].state, state[i].attempts) for i in ids} == {(2, 1)}
