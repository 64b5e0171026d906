"""S4 dashboard figures: one GROUP BY per dialer, the dialer's state, and the throttled live event."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import sqlalchemy as sa

from ...extensions import db
from ...live.events import publish, publish_now
from ...models import Dialer, SpoolMessage, SpoolState
from .. import time as clock
from ..pacing import GatewayLimit
from ..schedules import in_schedule
from .gateway import provider_limit, redis

log = logging.getLogger(__name__)

spool = SpoolMessage.__table__
COUNTS_THROTTLE_MS = 300
RATE_SECONDS = 10  # the dashboard's rate: messages sent over the last this many whole seconds


@dataclass(frozen=True)
class DialerCounts:
    """S4 dashboard figures. processed = handled by the dialer (sent, delivered, failed);
    not_processed = NONE + TO PROCESS (in flight included); other = invalid numbers; read and replied
    (W5) = delivered messages the customer read, sent ones they answered."""

    processed: int = 0
    not_processed: int = 0
    other: int = 0
    blocked: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0
    failed: int = 0
    cancelled: int = 0
    in_flight: int = 0
    needs_review: int = 0
    rate: float = 0.0  # messages per second sent lately, by every worker (send_rate)

    @property
    def total(self) -> int:
        return self.processed + self.not_processed + self.other + self.blocked + self.cancelled

    @property
    def cancellable(self) -> int:
        """What Delete (actions.cancel_pending) would cancel now: messages in flight or waiting for
        review are left alone."""
        waiting = max(0, self.not_processed - self.in_flight - self.needs_review)
        return waiting + self.other + self.blocked + self.failed


@dataclass(frozen=True)
class DialerStatus:
    dialer_id: int
    enabled: bool
    running: bool
    active: bool  # enabled and running
    in_schedule: bool
    counts: DialerCounts
    limit: GatewayLimit | None = None  # the provider is rate limiting us (shared by its dialers)


def counts(dialer_id: int) -> DialerCounts:
    """The dashboard figures of one dialer, from one GROUP BY query."""
    in_flight = sa.case((spool.c.in_flight_at.is_not(None), 1), else_=0)
    rows = db.session.execute(
        sa.select(spool.c.state, in_flight.label("in_flight"), spool.c.needs_review, sa.func.count(),
                  sa.func.count(spool.c.read_at), sa.func.count(spool.c.replied_at))
        .where(spool.c.dialer_id == dialer_id).group_by(spool.c.state, in_flight, spool.c.needs_review))
    by_state: dict[int, int] = {}
    flying = review = read = replied = 0
    for state, is_flying, needs_review, n, n_read, n_replied in rows:
        by_state[state] = by_state.get(state, 0) + n
        read, replied = read + n_read, replied + n_replied
        if state == SpoolState.TO_PROCESS and needs_review:
            review += n
        elif state == SpoolState.TO_PROCESS and is_flying:
            flying += n
    of = by_state.get
    return DialerCounts(
        processed=of(SpoolState.SENT, 0) + of(SpoolState.DELIVERED, 0) + of(SpoolState.FAILED, 0),
        not_processed=of(SpoolState.NONE, 0) + of(SpoolState.TO_PROCESS, 0), other=of(SpoolState.INVALID, 0),
        blocked=of(SpoolState.BLOCKED, 0), sent=of(SpoolState.SENT, 0), delivered=of(SpoolState.DELIVERED, 0),
        failed=of(SpoolState.FAILED, 0), cancelled=of(SpoolState.CANCELLED, 0), in_flight=flying,
        needs_review=review, read=read, replied=replied, rate=send_rate(dialer_id))


def _sent_key(dialer_id: int, second: int) -> str:
    return f"conversa:dialer:{dialer_id}:sent:{second}"


def note_sent(dialer_id: int, n: int) -> None:
    """Count `n` messages sent now, in Redis (shared by every worker): one counter per second."""
    if n <= 0:
        return
    try:
        key = _sent_key(dialer_id, int(time.time()))
        pipe = redis().pipeline(transaction=False)
        pipe.incrby(key, n)
        pipe.expire(key, RATE_SECONDS * 3)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - the rate is a courtesy
        log.debug("send rate not counted: %s", exc)


def send_rate(dialer_id: int) -> float:
    """Messages per second the dialer sent over the last RATE_SECONDS whole seconds (0 when Redis cannot say)."""
    now = int(time.time())
    try:
        values = redis().mget([_sent_key(dialer_id, s) for s in range(now - RATE_SECONDS, now)])
    except Exception as exc:  # noqa: BLE001 - the dashboard still shows everything else
        log.debug("send rate unavailable: %s", exc)
        return 0.0
    return round(sum(int(v or 0) for v in values) / RATE_SECONDS, 1)


def status(dialer: Dialer) -> DialerStatus:
    """S4 state: active (enabled and running), in schedule now, the counts, and the provider's rate limit."""
    return DialerStatus(dialer_id=dialer.id, enabled=dialer.enabled, running=dialer.running,
                        active=dialer.active, in_schedule=in_schedule(dialer.schedule, clock.center_now()),
                        counts=counts(dialer.id), limit=provider_limit(dialer.provider_id))


def publish_counts(dialer_id: int, *, force: bool = False, now: bool = False) -> None:
    """Queue `dialer.counts` for after the commit, at most every ~300 ms per dialer unless forced.

    `now=True` sends at once (the data is already committed). Redis being down only skips the event.
    """
    try:
        if not force and not redis().set(f"conversa:dialer:{dialer_id}:counts-sent", b"1", nx=True,
                                         px=COUNTS_THROTTLE_MS):
            return
    except Exception as exc:  # noqa: BLE001 - counters are a courtesy; polling catches up
        log.debug("counts throttle unavailable: %s", exc)
        return
    if now:
        publish_now(f"dialer:{dialer_id}", "dialer.counts", dialer_id=dialer_id)
    else:
        publish(f"dialer:{dialer_id}", "dialer.counts", dialer_id=dialer_id)
