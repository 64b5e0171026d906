"""Rows whose lease expired: claims go back to the pool; messages left in flight are looked up at the
provider, never sent again blind (the package docstring says why)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from ...extensions import db
from ...models import Dialer, SpoolMessage, SpoolState
from ...providers.base import LookupOutcome, OutboundMessage, ProviderAdapter
from .. import time as clock
from .counts import publish_counts
from .gateway import make_adapter, provider_hold

log = logging.getLogger(__name__)

spool = SpoolMessage.__table__


def reconcile_expired(now: datetime | None = None) -> dict[str, int]:
    """Settle rows whose lease expired: claims not in flight go back to the pool; in-flight ones are
    looked up at the provider: FOUND → SENT, NOT_FOUND → back to the pool, UNKNOWN → needs_review
    (never resent without a supervisor). A provider that rate limits us is not asked now: its rows stay in
    flight and are asked again after the wait ("later"), as are those whose lookup itself was rate limited.
    Commits; returns the counts."""
    now = now or clock.now()
    out = {"released": 0, "found": 0, "not_found": 0, "unknown": 0, "later": 0}
    released = db.session.execute(spool.update().where(
        spool.c.state == SpoolState.TO_PROCESS, spool.c.in_flight_at.is_(None), spool.c.lease_owner.is_not(None),
        spool.c.lease_until < now).values(lease_owner=None, lease_until=None))
    out["released"] = released.rowcount or 0
    db.session.commit()
    rows = list(db.session.execute(
        sa.select(spool.c.id, spool.c.dialer_id, spool.c.destination, spool.c.body, spool.c.port, spool.c.in_flight_at)
        .where(spool.c.state == SpoolState.TO_PROCESS, spool.c.in_flight_at.is_not(None), spool.c.needs_review.is_(False),
               sa.or_(spool.c.lease_until.is_(None), spool.c.lease_until < now))
        .order_by(spool.c.id).limit(500)))
    db.session.commit()
    adapters: dict[int, ProviderAdapter] = {}
    held: dict[int, float] = {}  # dialer id -> seconds its provider's rate limit holds us back
    touched: set[int] = set()
    try:
        for row in rows:
            if row.dialer_id not in adapters:
                dialer = db.session.get(Dialer, row.dialer_id)
                adapters[row.dialer_id] = make_adapter(dialer.provider)
                held[row.dialer_id] = provider_hold(dialer.provider_id)
                db.session.commit()
            guard = spool.update().where(spool.c.id == row.id, spool.c.state == SpoolState.TO_PROCESS,
                                     spool.c.in_flight_at == row.in_flight_at, spool.c.needs_review.is_(False))
            if held[row.dialer_id] > 0:
                db.session.execute(guard.values(lease_until=now + timedelta(seconds=held[row.dialer_id])))
                db.session.commit()
                out["later"] += 1
                continue
            try:
                found = adapters[row.dialer_id].lookup(
                    OutboundMessage(ref=row.id, to=row.destination, body=row.body, port=row.port),
                    since=row.in_flight_at)
            except Exception:  # noqa: BLE001 - a failed lookup is "cannot tell", never a resend
                log.exception("lookup of spool %s failed", row.id)
                found = None
            if found is not None and found.outcome is LookupOutcome.UNKNOWN and found.retry_after is not None:
                # The question itself was rate limited: still in flight, asked again after the wait.
                db.session.execute(guard.values(lease_until=now + timedelta(seconds=max(1.0, found.retry_after))))
                db.session.commit()
                out["later"] += 1
                continue
            if found is not None and found.outcome is LookupOutcome.FOUND:
                result = db.session.execute(guard.values(
                    state=SpoolState.SENT, provider_message_id=found.provider_message_id, sent_at=row.in_flight_at,
                    in_flight_at=None, lease_owner=None, lease_until=None, last_error=None))
                key = "found"
            elif found is not None and found.outcome is LookupOutcome.NOT_FOUND:
                result = db.session.execute(guard.values(in_flight_at=None, lease_owner=None, lease_until=None))
                key = "not_found"
            else:
                result = db.session.execute(guard.values(needs_review=True, lease_owner=None, lease_until=None))
                key = "unknown"
            if result.rowcount:
                out[key] += 1
                touched.add(row.dialer_id)
                publish_counts(row.dialer_id)
            db.session.commit()
    finally:
        for adapter in adapters.values():
            adapter.close()
    for dialer_id in touched:
        publish_counts(dialer_id, force=True, now=True)
    return out
