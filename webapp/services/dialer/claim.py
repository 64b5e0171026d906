"""The claim: a worker takes TO PROCESS rows nobody holds, atomically, and gives back what it did not send."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import SpoolMessage, SpoolState
from .. import time as clock
from .gateway import configured_lease

spool = SpoolMessage.__table__  # Core statements: the hot path does without the ORM's unit of work


def claimable(dialer_id: int, now: datetime) -> sa.ColumnElement[bool]:
    """The dialer's rows a worker may claim now: TO PROCESS, not in flight, no decision pending, free."""
    return sa.and_(spool.c.dialer_id == dialer_id, spool.c.state == SpoolState.TO_PROCESS,
                   spool.c.in_flight_at.is_(None), spool.c.needs_review.is_(False),
                   sa.or_(spool.c.lease_until.is_(None), spool.c.lease_until < now))


def claim_rows(dialer_id: int, owner: str, limit: int, lease: float,
               in_flight_seconds: float | None = None) -> list[Any]:
    """The claim. With `in_flight_seconds`, the claimed rows are also marked in flight in the same
    statement (unpaced sending, where the whole claim is one group): one commit instead of two."""
    now = clock.now()
    pick = (sa.select(spool.c.id).where(claimable(dialer_id, now))
            .order_by(spool.c.priority.desc(), spool.c.id).limit(limit))
    if db.engine.dialect.name == "postgresql":
        # Lock the picks first (skipping rows another claimant holds), then stamp them, in one
        # transaction. (As a subquery of the UPDATE, PostgreSQL may re-run the LIMIT and take more.)
        ids = list(db.session.scalars(pick.with_for_update(skip_locked=True)))
        if not ids:
            db.session.commit()
            return []
        target: Any = spool.c.id.in_(ids)
    else:
        target = spool.c.id.in_(pick.scalar_subquery())  # one statement: SQLite runs one writer at a time
    values: dict[str, Any] = {"lease_owner": owner, "lease_until": now + timedelta(seconds=lease)}
    attempts: Any = spool.c.attempts
    if in_flight_seconds is not None:
        values.update(in_flight_at=now, attempts=spool.c.attempts + 1,
                      lease_until=now + timedelta(seconds=in_flight_seconds))
        attempts = (spool.c.attempts - 1).label("attempts")  # RETURNING sees the new row: report the old count
    stmt = (spool.update().where(target, claimable(dialer_id, now)).values(**values)
            .returning(spool.c.id, spool.c.priority, spool.c.destination, spool.c.body, attempts,
                       spool.c.in_flight_at))
    try:
        rows = list(db.session.execute(stmt))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    rows.sort(key=lambda r: (-r.priority, r.id))
    return rows


def claim_batch(dialer_id: int, owner: str, limit: int = 50, lease_seconds: float | None = None) -> list[int]:
    """Atomically take up to `limit` TO PROCESS messages of the dialer that nobody holds, in order
    priority DESC then id ASC; sets lease_owner/lease_until and commits. Returns their ids in that order."""
    lease = lease_seconds if lease_seconds is not None else configured_lease()
    return [r.id for r in claim_rows(dialer_id, owner, limit, lease)]


def release_claims(owner: str) -> int:
    """Give back every claimed, not-in-flight row of `owner` at once (a job ending normally); commits."""
    result = db.session.execute(spool.update().where(
        spool.c.lease_owner == owner, spool.c.state == SpoolState.TO_PROCESS, spool.c.in_flight_at.is_(None))
        .values(lease_owner=None, lease_until=None))
    db.session.commit()
    return result.rowcount or 0


def has_claimable(dialer_id: int) -> bool:
    """Whether the dialer has a TO PROCESS message that a worker could claim now."""
    return db.session.scalar(sa.select(sa.exists().where(claimable(dialer_id, clock.now())))) or False
