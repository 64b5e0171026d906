"""The dialer's tests: spool rows queued and counted in the test database, runs of the engine in this process,
what reached a gateway fake, and the live events it published."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

import sqlalchemy as sa

from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.helpers.waiting import wait_until

SENDER = "+15005550006"


def spool_states(app: Any, dialer_id: int) -> Counter[int]:
    from webapp.extensions import db
    from webapp.models import SpoolMessage

    with app.app_context():
        t = SpoolMessage.__table__
        rows = db.session.execute(sa.select(t.c.state, sa.func.count()).where(t.c.dialer_id == dialer_id)
                                  .group_by(t.c.state)).all()
        db.session.remove()
    return Counter({state: n for state, n in rows})


def queue_bulk(app: Any, dialer_id: int, n: int, prefix: str = "+5989930") -> list[str]:
    from webapp.extensions import db
    from webapp.models import SpoolMessage

    numbers = [f"{prefix}{i:04d}" for i in range(n)]
    with app.app_context():
        db.session.execute(sa.insert(SpoolMessage), [
            {"dialer_id": dialer_id, "destination": num, "body": f"Mensaje {i}", "priority": 0, "state": 1,
             "attempts": 0, "needs_review": False} for i, num in enumerate(numbers)])
        db.session.commit()
        db.session.remove()
    return numbers


def sends_per_destination(fake: Any) -> Counter[str]:
    return Counter(m["to"] for m in fake.sent())


def twilio_provider(make: Any, fake: Any) -> Any:
    return make.provider("twilio", credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
                         base_url=fake.url, sender=SENDER, max_per_second=0)


def queue(db: Any, dialer: Any, numbers: list[str], priority: int = 0, body: str = "Hola", **kw: Any) -> list[int]:
    from webapp.models import SpoolMessage, SpoolState

    rows = [SpoolMessage(dialer_id=dialer.id, destination=n, body=body, priority=priority,
                         state=kw.get("state", SpoolState.TO_PROCESS), attempts=0, needs_review=False)
            for n in numbers]
    db.session.add_all(rows)
    db.session.commit()
    return [r.id for r in rows]


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"+5989910{i:04d}" for i in range(start, start + n)]


def rows(db: Any, dialer_id: int) -> dict[int, Any]:
    from webapp.models import SpoolMessage

    t = SpoolMessage.__table__
    db.session.commit()
    return {r.id: r for r in db.session.execute(sa.select(t).where(t.c.dialer_id == dialer_id).order_by(t.c.id))}


def run(dialer: Any, slot: int = 0) -> dict[str, Any]:
    from workers.dialer import run_dialer

    return run_dialer(dialer.id, slot)


def listen_live(app: Any, *topics: str) -> Any:
    pubsub = app.extensions["conversa_redis"].pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*[f"conversa:live:{t}" for t in topics])
    return pubsub


def live_events(pubsub: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """Everything published so far (already in the socket buffer: publishes happened before this)."""
    out = []
    misses = 0
    while misses < 3:
        msg = pubsub.get_message(timeout=0.2)
        if msg is None:
            misses += 1
            continue
        ev = json.loads(msg["data"])
        out.append((ev["topic"], ev["kind"], ev["data"]))
    pubsub.close()
    return out


def drain_until_done(db: Any, dialer: Any, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Run jobs as the clock would (only when the provider is not holding us back) until nothing is left
    to send; each wait is for something observable, with a generous bound."""
    from webapp.models import SpoolState
    from webapp.services.dialer import claim, gateway

    reports: list[dict[str, Any]] = []

    def pending() -> bool:
        return any(r.state == SpoolState.TO_PROCESS for r in rows(db, dialer.id).values())

    while pending():
        wait_until(lambda: gateway.provider_hold(dialer.provider_id) == 0
                   and claim.has_claimable(dialer.id), timeout, "the rate limit's wait to pass")
        reports.append(run(dialer))
        assert len(reports) < 200, "the dialer never finished"
    return reports
