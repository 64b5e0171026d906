"""D3: the dialer engine. Drains a dialer's outbound spool exactly once, paced, across any number of workers.

How a message goes out, and why nothing can send it twice:

1. **Claim** (`claim_batch`): one atomic statement takes up to 50 TO PROCESS rows nobody holds
   (`lease_until` empty or past) in priority-then-entry order and stamps them with the worker's
   `lease_owner` and a `lease_until`. PostgreSQL picks with `FOR UPDATE SKIP LOCKED`; SQLite
   serialises writers, and the same single `UPDATE … WHERE id IN (SELECT … LIMIT n)` is atomic there.
2. **In flight**: before any request, a small group of claimed rows is marked in flight in ONE commit
   (`in_flight_at`, `attempts + 1`, a longer lease), guarded by `lease_owner = me AND state = 1 AND
   in_flight_at IS NULL`; a row the guard misses is someone else's and is skipped.
3. **Send**: each message waits for its pacing slot (Redis, shared by all workers), then goes out on the
   next port in turn; one adapter (one pooled HTTP session) serves the whole job.
4. **Record**: the group's results are written in ONE commit (SENT / BLOCKED / FAILED / back to the pool).

Grouping (2 and 4) keeps commits at two per group instead of two per message. What a crash can do: a
worker killed between 2 and 4 leaves its group in flight; once the in-flight lease expires,
`reconcile_expired` asks the provider about each one (`adapter.lookup`): FOUND → SENT, NOT_FOUND → sent
again, UNKNOWN → a supervisor decides. So a group is only as big as the provider can reconcile: up to
50 (or the gateway's batch) when the adapter can look messages up, one message when it cannot.
The in-flight lease covers the time a live worker may still be sending: it starts no request later
than `DIALER_LEASE_SECONDS` after the mark, and each request (with the adapter's own retries) ends
within the send budget; so reconcile never looks up a message whose request may still be on its way.

Ports (`dialer.ports`, from the dial string) are taken in turn across all workers from a Redis counter
(`INCR conversa:dialer:<id>:port` mod the number of ports).

Rate limits are not failures. A 429 (Twilio 20429, Meta 130429, …) means the gateway did not process the
request: the message goes back to TO PROCESS with its attempt given back and a not-before time, and the
provider's shared limit in Redis (`pacing.GatewayLimits`) stops every worker on that provider for at least
Retry-After (longer as refusals repeat), then paces them all, one message at a time, speeding up again as
requests go through. A job waits a limit out with nothing claimed and only within its time budget; past
it, the job ends and the clock starts the next one when the wait is over, so no thread blocks and no lease
outlives its expiry. The dashboard says so while it lasts (`status().limit`). A per-recipient limit (Meta
131056, Twilio 14107) holds back that one message only. Only real errors end a message FAILED: a refusal
that is not a rate limit, or DIALER_MAX_ATTEMPTS temporary failures (5xx, timeouts).
"""
from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _

from ..extensions import db
from ..live.events import publish, publish_now
from ..models import Dialer, Provider, ScheduleEntry, SpoolMessage, SpoolState, User
from ..providers import get_adapter
from ..providers.base import (
    LookupOutcome,
    OutboundMessage,
    Outcome,
    ProviderAdapter,
    SendResult,
    StatusUpdate,
)
from . import dnc
from . import time as clock
from .pacing import GatewayLimit, GatewayLimits, Pacer, dialer_key, provider_key
from .schedules import in_schedule

log = logging.getLogger(__name__)

T = SpoolMessage.__table__
S = SpoolState
GROUP_MAX = 50  # messages marked in flight per commit when the provider can reconcile them
GROUP_WINDOW = 0.25  # seconds of paced sending a group covers
# Unpaced sending overlaps requests only when the gateway is far: when one request's wall time is over
# WAIT_UP times the CPU it costs here (a remote API: ~100 ms of waiting for ~2 ms of work). On loopback or
# a LAN gateway the CPU is the limit, and threads only add GIL hand-offs (measured with two workers on two
# cores: 0.84x two plain loops with two threads each, 1.06x one at a time). WAIT_DOWN is the way back.
WAIT_UP = 4.0
WAIT_DOWN = 2.0
COUNTS_THROTTLE_MS = 300


class DialerError(Exception):
    """A dialer action refused, with the reason in words for the user (lazy: translated when shown)."""

    def __init__(self, message: Any):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


@dataclass(frozen=True)
class DialerCounts:
    """S4 dashboard figures. processed = handled by the dialer (sent, delivered, failed);
    not_processed = NONE + TO PROCESS (in flight included); other = invalid numbers."""

    processed: int = 0
    not_processed: int = 0
    other: int = 0
    blocked: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    cancelled: int = 0
    in_flight: int = 0
    needs_review: int = 0

    @property
    def total(self) -> int:
        return self.processed + self.not_processed + self.other + self.blocked + self.cancelled


@dataclass(frozen=True)
class DialerStatus:
    dialer_id: int
    enabled: bool
    running: bool
    active: bool  # enabled and running
    in_schedule: bool
    counts: DialerCounts
    limit: GatewayLimit | None = None  # the provider is rate limiting us (shared by its dialers)


@dataclass
class DrainReport:
    """What one `drain` did, and why it stopped."""

    claimed: int = 0
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    retry: int = 0
    rate_limited: int = 0  # answers "too many requests": back to the pool, no attempt spent
    review: int = 0
    skipped: int = 0
    stopped: str = ""
    by_outcome: dict[str, int] = field(default_factory=dict)
    concurrency: int = 1  # the most requests the job had in flight at once


# -- configuration --------------------------------------------------------------
def _cfg(name: str, default: Any) -> Any:
    """App config first, then the environment (worker processes), then the default."""
    if name in current_app.config:
        return current_app.config[name]
    return type(default)(os.environ.get(name, default)) if default is not None else os.environ.get(name)


def configured_lease() -> float:
    return float(_cfg("DIALER_LEASE_SECONDS", 60))


def _send_settings() -> dict[str, Any]:
    timeout = float(_cfg("PROVIDER_TIMEOUT", 10.0))
    # A 429 comes straight back (retry_rate_limited=False): the engine slows every worker down at once.
    return {"timeout": timeout, "connect_timeout": min(timeout, 2.0),
            "max_attempts": int(_cfg("DIALER_SEND_ATTEMPTS", 3)),
            "backoff": float(_cfg("PROVIDER_BACKOFF", 0.5)),
            "max_retry_wait": float(_cfg("DIALER_MAX_RETRY_WAIT", 2.0)), "retry_rate_limited": False}


def send_budget() -> float:
    """Longest a single send (the adapter's retries included) can take: requests + waits between them."""
    s = _send_settings()
    n = int(s["max_attempts"])
    wait = max(s["max_retry_wait"], s["backoff"] * 2 ** max(0, n - 2) * 1.2)
    return n * (s["connect_timeout"] + s["timeout"]) + (n - 1) * wait + 1.0


def inflight_seconds() -> float:
    """The lease of an in-flight row: the window a live worker may start requests in, plus one send."""
    return configured_lease() + send_budget()


def _redis() -> Any:
    return current_app.extensions["conversa_redis"]


def gateway_limits() -> GatewayLimits:
    """The providers' shared rate limits, with the configured backoff (DIALER_RATE_LIMIT_*)."""
    return GatewayLimits(_redis(), backoff=float(_cfg("DIALER_RATE_LIMIT_BACKOFF", 1.0)),
                         max_backoff=float(_cfg("DIALER_RATE_LIMIT_MAX_WAIT", 300.0)),
                         quiet=float(_cfg("DIALER_RATE_LIMIT_QUIET", 30.0)))


def provider_limit(provider_id: int) -> GatewayLimit | None:
    """The provider's rate limit while it lasts; None when free (or Redis cannot say: a courtesy)."""
    try:
        return gateway_limits().state(provider_id)
    except Exception as exc:  # noqa: BLE001 - the dashboard still shows everything else
        log.debug("rate limit of provider %s unavailable: %s", provider_id, exc)
        return None


def provider_hold(provider_id: int) -> float:
    """Seconds before any worker may send through this provider again (its rate limit's wait)."""
    return gateway_limits().hold(provider_id)


def make_adapter(provider: Provider) -> ProviderAdapter:
    """One adapter (one pooled session) for a job; the sandbox gets the app's Redis so lookup works."""
    return get_adapter(provider.to_config(), redis=_redis(), **_send_settings())


def _can_reconcile(adapter: ProviderAdapter) -> bool:
    return type(adapter).lookup is not ProviderAdapter.lookup


# -- do-not-contact ------------------------------------------------------------------
def _blocked_among(phones: list[str], dialer_id: int) -> set[str]:
    """Spool destinations are stored in E.164 already: no re-normalising on the hot path."""
    return dnc.listed_among(set(phones), dialer_id=dialer_id)


def _add_dnc(phone: str, source: str) -> None:
    dnc.add(phone, source=source)


# -- live counters ------------------------------------------------------------------
def publish_counts(dialer_id: int, *, force: bool = False, now: bool = False) -> None:
    """Queue `dialer.counts` for after the commit, at most every ~300 ms per dialer unless forced.

    `now=True` sends at once (the data is already committed). Redis being down only skips the event.
    """
    try:
        if not force and not _redis().set(f"conversa:dialer:{dialer_id}:counts-sent", b"1", nx=True,
                                          px=COUNTS_THROTTLE_MS):
            return
    except Exception as exc:  # noqa: BLE001 - counters are a courtesy; polling catches up
        log.debug("counts throttle unavailable: %s", exc)
        return
    if now:
        publish_now(f"dialer:{dialer_id}", "dialer.counts", dialer_id=dialer_id)
    else:
        publish(f"dialer:{dialer_id}", "dialer.counts", dialer_id=dialer_id)


def _publish_state(dialer: Dialer) -> None:
    publish(f"dialer:{dialer.id}", "dialer.state", dialer_id=dialer.id)
    publish(f"dialers:{dialer.security_group_id}", "dialer.state", dialer_id=dialer.id)


def _audit(user_id: int | None, action: str, dialer: Dialer, **detail: Any) -> None:
    try:
        from . import audit
    except ImportError:
        return
    actor = db.session.get(User, user_id) if user_id else None
    audit.record(actor, action, "dialer", dialer.id, name=dialer.name, **detail)


# -- claim ------------------------------------------------------------------------------
def _claimable(dialer_id: int, now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(T.c.dialer_id == dialer_id, T.c.state == S.TO_PROCESS, T.c.in_flight_at.is_(None),
                   T.c.needs_review.is_(False), sa.or_(T.c.lease_until.is_(None), T.c.lease_until < now))


def _claim_rows(dialer_id: int, owner: str, limit: int, lease: float,
                in_flight_seconds: float | None = None) -> list[Any]:
    """The claim. With `in_flight_seconds`, the claimed rows are also marked in flight in the same
    statement (unpaced sending, where the whole claim is one group): one commit instead of two."""
    now = clock.now()
    pick = (sa.select(T.c.id).where(_claimable(dialer_id, now))
            .order_by(T.c.priority.desc(), T.c.id).limit(limit))
    if db.engine.dialect.name == "postgresql":
        # Lock the picks first (skipping rows another claimant holds), then stamp them, in one
        # transaction. (As a subquery of the UPDATE, PostgreSQL may re-run the LIMIT and take more.)
        ids = list(db.session.scalars(pick.with_for_update(skip_locked=True)))
        if not ids:
            db.session.commit()
            return []
        target: Any = T.c.id.in_(ids)
    else:
        target = T.c.id.in_(pick.scalar_subquery())  # one statement: SQLite runs one writer at a time
    values: dict[str, Any] = {"lease_owner": owner, "lease_until": now + timedelta(seconds=lease)}
    attempts: Any = T.c.attempts
    if in_flight_seconds is not None:
        values.update(in_flight_at=now, attempts=T.c.attempts + 1,
                      lease_until=now + timedelta(seconds=in_flight_seconds))
        attempts = (T.c.attempts - 1).label("attempts")  # RETURNING sees the new row: report the old count
    stmt = (T.update().where(target, _claimable(dialer_id, now)).values(**values)
            .returning(T.c.id, T.c.priority, T.c.destination, T.c.body, attempts, T.c.in_flight_at))
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
    return [r.id for r in _claim_rows(dialer_id, owner, limit, lease)]


def release_claims(owner: str) -> int:
    """Give back every claimed, not-in-flight row of `owner` at once (a job ending normally); commits."""
    result = db.session.execute(T.update().where(
        T.c.lease_owner == owner, T.c.state == S.TO_PROCESS, T.c.in_flight_at.is_(None))
        .values(lease_owner=None, lease_until=None))
    db.session.commit()
    return result.rowcount or 0


def has_claimable(dialer_id: int) -> bool:
    """Whether the dialer has a TO PROCESS message that a worker could claim now."""
    return db.session.scalar(sa.select(sa.exists().where(_claimable(dialer_id, clock.now())))) or False


# -- sending -------------------------------------------------------------------------------
class _Sender:
    """One job's sending machinery: the dialer, its adapter, pacing and port turn."""

    def __init__(self, dialer: Dialer, owner: str, adapter: ProviderAdapter, redis: Any):
        self.dialer_id = dialer.id
        self.owner = owner
        self.adapter = adapter
        self.redis = redis
        self.pacer = Pacer(redis)
        self.ports = list(dialer.ports or [])
        self.interval = max(0, dialer.interval_ms or 0) / 1000.0
        mps = float(dialer.provider.max_per_second or 0)
        self.provider_id = dialer.provider_id
        self.provider_interval = 1.0 / mps if mps > 0 else 0.0
        self.dncr = dialer.dncr
        self.batch = adapter.batch_size > 1 and self.interval == 0 and self.provider_interval == 0
        self.lease = configured_lease()
        self.inflight = inflight_seconds()
        self.reserved: float | None = None  # a pacing slot taken ahead (time.time())
        self.max_attempts = int(_cfg("DIALER_MAX_ATTEMPTS", 5))
        pace = max(self.interval, self.provider_interval)
        self.claim_size = int(_cfg("DIALER_BATCH", 50))
        if self.batch:
            self.group = adapter.batch_size
        elif not _can_reconcile(adapter):
            self.group = 1
        elif pace > 0:
            self.group = max(1, min(GROUP_MAX, int(GROUP_WINDOW / pace)))
        else:
            self.group = GROUP_MAX
        # Unpaced and reconcilable: the claim itself marks the rows in flight (one group per claim).
        self.mark_on_claim = pace == 0 and _can_reconcile(adapter) and self.group >= self.claim_size
        # ...and, when the gateway is far, a few requests go out at once (order within a group is then
        # not kept): see tune(). DIALER_SEND_CONCURRENCY caps it (1: always one at a time).
        self.max_concurrency = int(_cfg("DIALER_SEND_CONCURRENCY", 4)) if self.mark_on_claim and not self.batch else 1
        self.concurrency = 1
        self.adapters: queue.Queue[ProviderAdapter] = queue.Queue()
        self.executor: ThreadPoolExecutor | None = None
        self._provider = dialer.provider
        # The provider's shared rate limit (see the module docstring): while it lasts, one at a time.
        self.limits = gateway_limits()
        self.limited = False
        self.free_mode = (self.batch, self.group, self.mark_on_claim, self.claim_size)
        self.retry_base = float(_cfg("DIALER_RETRY_SECONDS", 5.0))
        self.lock = threading.Lock()
        self.paused_by_limit = False  # a group stopped on a rate limit: wait it out, then go on
        self.limit_news = False  # the limit started or ended: the dashboards should hear of it

    def watch_limit(self) -> float:
        """Follow the provider's shared rate limit: while it lasts, claim and send one message at a time,
        each after its turn at the limit's pace (limit_turn). Returns the seconds nobody may send yet."""
        limit = self.limits.state(self.provider_id)
        if (limit is not None) != self.limited:
            self.limited = limit is not None
            self.batch, self.group, self.mark_on_claim, self.claim_size = \
                (False, 1, False, 1) if self.limited else self.free_mode
            self.concurrency = 1
        return limit.retry_in() if limit is not None else 0.0

    def limit_turn(self, deadline: float, stop_reason: Callable[[], str]) -> str:
        """While limited, before claiming: wait for this worker's slot at the limit's pace, shared by every
        worker, holding nothing. Returns why to stop ("" to go on). When another worker was refused while
        this one waited (the gateway is still closed), its turn is void: it waits for a new one, so that a
        closed gateway gets one probe after each wait, not one per worker."""
        while True:
            wait = self.limits.reserve(self.provider_id, deadline - time.monotonic())
            if wait is None:
                return "rate_limited"  # the turn is beyond this job's time: nothing reserved, a later job goes
            reason = _sit_out(wait, deadline, stop_reason) if wait > 0 else ""
            if reason or self.limits.hold(self.provider_id) <= 0:
                return reason

    def observe(self, result: SendResult, sent_at: float) -> float | None:
        """Tell the shared limit what the gateway answered to a request made at `sent_at` (time.time()).
        For a rate-limited answer, returns how long that message waits before it may go again."""
        if result.outcome is Outcome.RATE_LIMITED and result.per_recipient:
            return _retry_delay(result, 1, self.retry_base)  # too many to this number: only it waits
        try:
            if result.outcome is Outcome.RATE_LIMITED:
                wait, started = self.limits.refused(self.provider_id, result.retry_after, sent_at)
                with self.lock:
                    self.paused_by_limit = True
                    self.limit_news = self.limit_news or started
                (log.warning if started else log.info)(
                    "dialer %s: provider %s rate limits us (%s); nobody sends for %.1f s", self.dialer_id,
                    self.provider_id, result.error_code, wait)
                return wait
            if result.outcome is Outcome.SENT and self.limited and \
                    self.limits.accepted(self.provider_id, sent_at, self.provider_interval) == 2:
                with self.lock:
                    self.limit_news = True
                log.warning("dialer %s: provider %s no longer rate limits us", self.dialer_id, self.provider_id)
        except Exception as exc:  # noqa: BLE001 - Redis gone: this message still waits, the rest learn alone
            log.warning("dialer %s: rate limit not shared: %s", self.dialer_id, exc)
            if result.outcome is Outcome.RATE_LIMITED:
                with self.lock:
                    self.paused_by_limit = True
                return _retry_delay(result, 1, self.retry_base)
        return None

    def observe_batch(self, results: list[SendResult], sent_at: float) -> list[float | None]:
        """observe() for a batch request: one refusal or acceptance for the request, not one per message."""
        first: dict[bool, float | None] = {}
        waits: list[float | None] = []
        for result in results:
            key = result.outcome is Outcome.RATE_LIMITED and not result.per_recipient
            if result.outcome is Outcome.RATE_LIMITED and result.per_recipient:
                waits.append(self.observe(result, sent_at))
            elif result.outcome in (Outcome.RATE_LIMITED, Outcome.SENT):
                if key not in first:
                    first[key] = self.observe(result, sent_at)
                waits.append(first[key])
            else:
                waits.append(None)
        return waits

    def tune(self, sent: int, wall: float, cpu: float) -> None:
        """After a group: overlap requests when each one mostly waits for the gateway, stop when not.
        `wall` and `cpu` (this process's CPU time, every thread's) are what the group's `sent` took."""
        if self.max_concurrency <= 1 or sent < 5 or cpu <= 0 or self.limited:
            return
        waits = (wall * self.concurrency) / cpu  # one request's wall time over its CPU cost
        if self.concurrency == 1 and waits > WAIT_UP:
            if self.executor is None:
                self.adapters.put(self.adapter)
                for _i in range(self.max_concurrency - 1):
                    self.adapters.put(make_adapter(self._provider))
                self.executor = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix=f"dialer-{self.dialer_id}")
            self.concurrency = self.max_concurrency
        elif self.concurrency > 1 and waits < WAIT_DOWN:
            self.concurrency = 1

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
        while not self.adapters.empty():
            adapter = self.adapters.get_nowait()
            if adapter is not self.adapter:
                adapter.close()
        self.adapter.close()

    # pacing: False when the slot is further away than the job may wait
    def _slot_wait(self, key: str, interval: float, deadline: float) -> bool:
        raw = self.redis.get(key)
        if raw is not None and float(raw) / 1000.0 - time.time() > deadline - time.monotonic():
            return False
        self.pacer.wait(key, interval)
        return True

    def reserve_ahead(self) -> None:
        """Take the next slot now, before the database work between groups, so that work overlaps the
        wait instead of pushing every later slot back."""
        if self.reserved is not None or (self.interval <= 0 and self.provider_interval <= 0):
            return
        at = time.time()
        if self.interval > 0:
            at = max(at, time.time() + self.pacer.reserve(dialer_key(self.dialer_id), self.interval))
        if self.provider_interval > 0:
            at = max(at, time.time() + self.pacer.reserve(provider_key(self.provider_id), self.provider_interval))
        self.reserved = at

    def pace(self, deadline: float, n: int = 1) -> bool:
        for _i in range(n):
            if self.reserved is not None:
                delay, self.reserved = self.reserved - time.time(), None
                if delay > deadline - time.monotonic():
                    return False
                if delay > 0:
                    time.sleep(delay)
            else:
                if self.interval > 0 and not self._slot_wait(dialer_key(self.dialer_id), self.interval, deadline):
                    return False
                if self.provider_interval > 0 and not self._slot_wait(provider_key(self.provider_id),
                                                                      self.provider_interval, deadline):
                    return False
        return True

    def next_ports(self, n: int) -> list[int | None]:
        if not self.ports:
            return [None] * n
        last = int(self.redis.incrby(f"conversa:dialer:{self.dialer_id}:port", n))
        return [self.ports[(last - n + i) % len(self.ports)] for i in range(n)]


def _dialer_can_send(dialer_id: int, schedule: list[ScheduleEntry] | None = None) -> str:
    """'' when the dialer may send now, else the reason it may not. `schedule`: entries already loaded."""
    d = Dialer.__table__
    row = db.session.execute(sa.select(d.c.enabled, d.c.running).where(d.c.id == dialer_id)).first()
    if row is None:
        return "deleted"
    if not row.enabled:
        return "disabled"
    if not row.running:
        return "stopped"
    if schedule is None:
        schedule = _schedule(dialer_id)
    if not in_schedule(schedule, clock.center_now()):
        return "out_of_schedule"
    return ""


def _schedule(dialer_id: int) -> list[ScheduleEntry]:
    entries = list(db.session.scalars(sa.select(ScheduleEntry).where(ScheduleEntry.dialer_id == dialer_id)))
    for entry in entries:
        db.session.expunge(entry)
    return entries


def _mark_group(sender: _Sender, rows: list[Any], report: DrainReport,
                renew: bool = True) -> tuple[list[Any], datetime]:
    """DNC check, then mark the rest in flight; one commit. Also renews the owner's other claims."""
    now = clock.now()
    ids = [r.id for r in rows]
    blocked_ids: list[int] = []
    if sender.dncr:
        blocked = _blocked_among([r.destination for r in rows], sender.dialer_id)
        blocked_ids = [r.id for r in rows if r.destination in blocked]
    if blocked_ids:
        result = db.session.execute(T.update().where(
            T.c.id.in_(blocked_ids), T.c.lease_owner == sender.owner, T.c.state == S.TO_PROCESS,
            T.c.in_flight_at.is_(None)).values(state=S.BLOCKED, lease_owner=None, lease_until=None,
                                               last_error="do-not-contact"))
        report.blocked += result.rowcount or 0
    todo = [i for i in ids if i not in set(blocked_ids)]
    marked: set[int] = set()
    if todo:
        marked = set(db.session.scalars(T.update().where(
            T.c.id.in_(todo), T.c.lease_owner == sender.owner, T.c.state == S.TO_PROCESS,
            T.c.in_flight_at.is_(None)).values(
                in_flight_at=now, attempts=T.c.attempts + 1,
                lease_until=now + timedelta(seconds=sender.inflight)).returning(T.c.id)))
    if renew:  # the rest of this worker's claims, so a long paced batch keeps them
        db.session.execute(T.update().where(
            T.c.lease_owner == sender.owner, T.c.state == S.TO_PROCESS, T.c.in_flight_at.is_(None))
            .values(lease_until=now + timedelta(seconds=sender.lease)))
    db.session.commit()
    report.skipped += len(todo) - len(marked)
    return [r for r in rows if r.id in marked], now


def _retry_delay(result: SendResult, attempts: int, base: float) -> float:
    if result.retry_after is not None:
        return max(1.0, result.retry_after)
    return min(300.0, base * 2 ** max(0, attempts - 1))


def _result_values(sender: _Sender, row: Any, port: int | None, result: SendResult, marked_at: datetime,
                   now: datetime, report: DrainReport, wait: float | None = None) -> dict[str, Any]:
    """The row's new columns for one send result (bind names prefixed b_). `wait`: what observe() said a
    rate-limited message waits."""
    attempts = row.attempts + 1
    v: dict[str, Any] = {"b_id": row.id, "b_state": S.TO_PROCESS, "b_pmid": None, "b_sent_at": None,
                         "b_error": None, "b_lease_owner": None, "b_lease_until": None, "b_in_flight": None,
                         "b_port": port, "b_attempts": attempts}
    error = f"{result.error_code or ''} {result.error_message or ''}".strip()[:500] or None
    report.by_outcome[result.outcome.value] = report.by_outcome.get(result.outcome.value, 0) + 1
    if result.outcome is Outcome.SENT:
        v.update(b_state=S.SENT, b_pmid=result.provider_message_id, b_sent_at=now)
        report.sent += 1
    elif result.outcome is Outcome.OPTED_OUT:
        v.update(b_state=S.BLOCKED, b_error=error)
        _add_dnc(row.destination, "provider")
        report.blocked += 1
    elif result.outcome is Outcome.PERMANENT:
        v.update(b_state=S.FAILED, b_error=error)
        report.failed += 1
    elif result.ambiguous:
        # It may have gone out and the provider could not tell: stays in flight, lease expired, so
        # reconcile_expired asks again and, if it still cannot tell, a supervisor decides.
        v.update(b_in_flight=marked_at, b_error=error, b_lease_until=now)
        report.review += 1
    elif result.outcome is Outcome.RATE_LIMITED:
        # The gateway did not process it: back to the pool, its attempt given back, not before the wait.
        if wait is None:
            wait = _retry_delay(result, 1, sender.retry_base)
        v.update(b_attempts=row.attempts, b_error=f"rate limited: {error or result.outcome.value}"[:500],
                 b_lease_until=now + timedelta(seconds=wait))
        report.rate_limited += 1
    elif attempts >= sender.max_attempts:
        v.update(b_state=S.FAILED, b_error=error)
        report.failed += 1
    else:  # temporary: back to the pool, not before the wait is over
        v.update(b_error=error,
                 b_lease_until=now + timedelta(seconds=_retry_delay(result, attempts, sender.retry_base)))
        report.retry += 1
    return v


_RECORD = (T.update().where(T.c.id == sa.bindparam("b_id"), T.c.lease_owner == sa.bindparam("b_owner"),
                            T.c.state == S.TO_PROCESS, T.c.in_flight_at.is_not(None))
           .values(state=sa.bindparam("b_state"), provider_message_id=sa.bindparam("b_pmid"),
                   sent_at=sa.bindparam("b_sent_at"), last_error=sa.bindparam("b_error"),
                   lease_owner=sa.bindparam("b_lease_owner"), lease_until=sa.bindparam("b_lease_until"),
                   in_flight_at=sa.bindparam("b_in_flight"), port=sa.bindparam("b_port"),
                   attempts=sa.bindparam("b_attempts")))


def _record(sender: _Sender, values: list[dict[str, Any]], unsent: list[int]) -> None:
    """Write the group's results, and put back the rows never requested; one commit."""
    for v in values:
        v["b_owner"] = sender.owner
    if values:
        db.session.execute(_RECORD, values)
    if unsent:
        db.session.execute(T.update().where(
            T.c.id.in_(unsent), T.c.lease_owner == sender.owner, T.c.state == S.TO_PROCESS)
            .values(in_flight_at=None, attempts=T.c.attempts - 1, lease_owner=None, lease_until=None))
    publish_counts(sender.dialer_id)
    db.session.commit()


def _struggling(result: SendResult) -> bool:
    """The gateway failed for now or limits its pace: the rest of the group goes back, to go out later.
    (A recipient's own rate limit only holds back that message.)"""
    if result.outcome is Outcome.RATE_LIMITED:
        return not result.per_recipient
    return result.outcome is Outcome.TEMPORARY and not result.ambiguous


def _send_group(sender: _Sender, rows: list[Any], marked_at: datetime, deadline: float,
                report: DrainReport, settled: list[dict[str, Any]] | None = None) -> bool:
    """Send the marked rows; always records what was requested (and `settled`, rows already decided).
    False when the job should stop."""
    values: list[dict[str, Any]] = list(settled or [])
    requested: set[int] = set()
    keep_going = True
    window_end = marked_at + timedelta(seconds=sender.lease)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        if sender.batch:
            if clock.now() <= window_end and sender.pace(deadline, len(rows)):
                ports = sender.next_ports(len(rows))
                messages = [OutboundMessage(ref=r.id, to=r.destination, body=r.body, port=p)
                            for r, p in zip(rows, ports, strict=True)]
                requested.update(r.id for r in rows)
                sent_at = time.time()
                results = sender.adapter.send_batch(messages)
                waits = sender.observe_batch(results, sent_at)
                now = clock.now()
                values = [_result_values(sender, r, p, res, marked_at, now, report, wait)
                          for r, p, res, wait in zip(rows, ports, results, waits, strict=True)]
            else:
                keep_going = False
        elif sender.concurrency > 1:
            keep_going = _send_concurrently(sender, rows, marked_at, window_end, deadline, requested, values, report)
        else:
            for row in rows:
                # Never start a request after the in-flight window: reconcile relies on it.
                if clock.now() > window_end or time.monotonic() > deadline:
                    keep_going = False
                    break
                if not sender.pace(deadline):
                    report.stopped = "budget"  # the next slot is beyond this job's time
                    keep_going = False
                    break
                port = sender.next_ports(1)[0]
                requested.add(row.id)
                sent_at = time.time()
                result = sender.adapter.send(OutboundMessage(ref=row.id, to=row.destination, body=row.body,
                                                             port=port))
                wait = sender.observe(result, sent_at)
                values.append(_result_values(sender, row, port, result, marked_at, clock.now(), report, wait))
                if _struggling(result):
                    keep_going = False  # give the rest back, try later
                    break
            else:
                sender.reserve_ahead()
        sender.tune(len(requested), time.perf_counter() - wall, time.process_time() - cpu)  # no-op for batches
    finally:
        # Whatever happened (Redis gone, a timeout signal), record what went out and free the rest.
        done = {v["b_id"] for v in values}
        unknown = requested - done  # requested but no answer recorded: leave in flight for reconcile
        unsent = [r.id for r in rows if r.id not in requested and r.id not in done]
        try:
            _record(sender, values, unsent)
        except Exception:
            db.session.rollback()
            log.exception("dialer %s: could not record %d results", sender.dialer_id, len(values))
            raise
        if unknown:
            log.warning("dialer %s: %d requests without an answer stay in flight", sender.dialer_id, len(unknown))
    return keep_going


def _send_concurrently(sender: _Sender, rows: list[Any], marked_at: datetime, window_end: datetime,
                       deadline: float, requested: set[int], values: list[dict[str, Any]],
                       report: DrainReport) -> bool:
    """Unpaced: a few requests at once, each thread with its own adapter (own pooled session).

    A row counts as requested the moment a thread commits to sending it, under the lock that also
    stops the group, so a row is either requested (stays in flight until answered or reconciled) or
    never sent (given back): never both.
    """
    lock = threading.Lock()
    stopped = False

    def one(row: Any) -> tuple[Any, SendResult, float | None] | None:
        nonlocal stopped
        with lock:
            if stopped or clock.now() > window_end or time.monotonic() > deadline:
                return None
            requested.add(row.id)
        adapter = sender.adapters.get()
        try:
            sent_at = time.time()
            result = adapter.send(OutboundMessage(ref=row.id, to=row.destination, body=row.body))
        finally:
            sender.adapters.put(adapter)
        wait = sender.observe(result, sent_at)
        if _struggling(result):
            with lock:
                stopped = True  # the rest go back, later
        return row, result, wait

    report.concurrency = max(report.concurrency, sender.concurrency)
    futures = [sender.executor.submit(one, row) for row in rows]
    try:
        for future in futures:
            out = future.result()
            if out is not None:
                values.append(_result_values(sender, out[0], None, out[1], marked_at, clock.now(), report, out[2]))
    except BaseException:
        with lock:
            stopped = True
        for future in futures:
            future.cancel()
        raise
    return not stopped


def _claim_and_send(sender: _Sender, deadline: float, report: DrainReport) -> None:
    """Unpaced: claim a batch already marked in flight, settle the do-not-contact ones, send the rest."""
    rows = _claim_rows(sender.dialer_id, sender.owner, sender.claim_size, sender.lease, sender.inflight)
    report.claimed += len(rows)
    if not rows:
        report.stopped = "empty"
        return
    settled: list[dict[str, Any]] = []
    if sender.dncr:
        blocked = _blocked_among([r.destination for r in rows], sender.dialer_id)
        for row in (r for r in rows if r.destination in blocked):
            settled.append({"b_id": row.id, "b_state": S.BLOCKED, "b_pmid": None, "b_sent_at": None,
                            "b_error": "do-not-contact", "b_lease_owner": None, "b_lease_until": None,
                            "b_in_flight": None, "b_port": None, "b_attempts": row.attempts})
        report.blocked += len(settled)
        db.session.commit()
    skip = {v["b_id"] for v in settled}
    if not _send_group(sender, [r for r in rows if r.id not in skip], rows[0].in_flight_at, deadline, report,
                       settled) and not sender.paused_by_limit:
        report.stopped = report.stopped or ("budget" if time.monotonic() > deadline else "paused")


def _claim_and_send_groups(sender: _Sender, deadline: float, report: DrainReport,
                           stop_reason: Callable[[], str]) -> None:
    """Paced (or not reconcilable, or rate limited): claim a batch, then mark and send it group by group."""
    if sender.limited:
        report.stopped = sender.limit_turn(deadline, stop_reason)
        if report.stopped:
            return
    rows = _claim_rows(sender.dialer_id, sender.owner, sender.claim_size, sender.lease)
    report.claimed += len(rows)
    if not rows:
        report.stopped = "empty"
        return
    for start in range(0, len(rows), sender.group):
        if start:
            report.stopped = stop_reason()
            if report.stopped:
                return
        last = start + sender.group >= len(rows)
        group, marked_at = _mark_group(sender, rows[start:start + sender.group], report, renew=not last)
        if group and not _send_group(sender, group, marked_at, deadline, report):
            if not sender.paused_by_limit:
                report.stopped = report.stopped or ("budget" if time.monotonic() > deadline else "paused")
            return


def _sit_out(seconds: float, deadline: float, stop_reason: Callable[[], str]) -> str:
    """Wait out a provider's rate limit with nothing claimed, checking for Stop every second. Returns why to
    stop ("" to go on); "rate_limited" at once when the wait outlasts the job's budget: the clock starts
    another job when the wait is over (workers/dialer.py), so no worker blocks and no lease runs out."""
    end = time.monotonic() + seconds
    if end > deadline:
        return "rate_limited"
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        reason = stop_reason()
        if reason:
            return reason
    return ""


def _announce_limit(sender: _Sender) -> None:
    """When the provider's rate limit started or ended, every dialer on it redraws its dashboard state."""
    with sender.lock:
        news, sender.limit_news = sender.limit_news, False
    if not news:
        return
    ids = db.session.scalars(sa.select(Dialer.id).where(Dialer.provider_id == sender.provider_id)).all()
    db.session.commit()
    for dialer_id in ids:
        publish_now(f"dialer:{dialer_id}", "dialer.state", dialer_id=dialer_id)


def drain(dialer_id: int, owner: str, *, budget_seconds: float = 30.0,
          keep_alive: Callable[[], bool] | None = None) -> DrainReport:
    """Claim and send until the dialer has nothing to send, leaves its schedule, is stopped or disabled,
    `keep_alive()` says no, or the time budget passes. Unsent claims go back to the pool at the end."""
    report = DrainReport()
    deadline = time.monotonic() + budget_seconds
    dialer = db.session.get(Dialer, dialer_id)
    if dialer is None:
        report.stopped = "deleted"
        return report
    adapter = make_adapter(dialer.provider)
    sender = _Sender(dialer, owner, adapter, _redis())
    db.session.commit()  # end the read transaction; nothing is held while sending
    schedule = _schedule(dialer_id)
    schedule_at = time.monotonic()

    def stop_reason(schedule: Any) -> str:
        """Why to stop before the next claim or group ("" to go on): stopped/disabled/out of
        schedule, the job's time budget spent, or the job's slot lost."""
        reason = _dialer_can_send(dialer_id, schedule)
        if reason:
            return reason
        if time.monotonic() > deadline:
            return "budget"
        if keep_alive is not None and not keep_alive():
            return "slot_lost"
        return ""

    try:
        while not report.stopped:
            if time.monotonic() - schedule_at > 10:  # schedules change rarely: reread now and then
                schedule, schedule_at = _schedule(dialer_id), time.monotonic()
            report.stopped = stop_reason(schedule)
            if report.stopped:
                break
            hold = sender.watch_limit()
            if hold > 0:  # the gateway limits us: wait it out holding nothing, or leave it to a later job
                report.stopped = _sit_out(hold, deadline, functools.partial(stop_reason, schedule))
                continue
            if sender.mark_on_claim:
                _claim_and_send(sender, deadline, report)
            else:
                _claim_and_send_groups(sender, deadline, report, functools.partial(stop_reason, schedule))
            if sender.paused_by_limit:
                sender.paused_by_limit = False
                release_claims(owner)
            _announce_limit(sender)
    finally:
        sender.close()
        try:
            _announce_limit(sender)
        except Exception:  # noqa: BLE001 - the notice's own polling catches up
            db.session.rollback()
            log.warning("dialer %s: rate limit news not published", dialer_id)
        try:
            release_claims(owner)
        except Exception:  # noqa: BLE001 - the leases expire by themselves
            db.session.rollback()
            log.exception("dialer %s: could not release claims of %s", dialer_id, owner)
        publish_counts(dialer_id, force=True, now=True)
    return report


# -- reconciliation ------------------------------------------------------------------------
def reconcile_expired(now: datetime | None = None) -> dict[str, int]:
    """Settle rows whose lease expired: claims not in flight go back to the pool; in-flight ones are
    looked up at the provider: FOUND → SENT, NOT_FOUND → back to the pool, UNKNOWN → needs_review
    (never resent without a supervisor). A provider that rate limits us is not asked now: its rows stay in
    flight and are asked again after the wait ("later"), as are those whose lookup itself was rate limited.
    Commits; returns the counts."""
    now = now or clock.now()
    out = {"released": 0, "found": 0, "not_found": 0, "unknown": 0, "later": 0}
    released = db.session.execute(T.update().where(
        T.c.state == S.TO_PROCESS, T.c.in_flight_at.is_(None), T.c.lease_owner.is_not(None),
        T.c.lease_until < now).values(lease_owner=None, lease_until=None))
    out["released"] = released.rowcount or 0
    db.session.commit()
    rows = list(db.session.execute(
        sa.select(T.c.id, T.c.dialer_id, T.c.destination, T.c.body, T.c.port, T.c.in_flight_at)
        .where(T.c.state == S.TO_PROCESS, T.c.in_flight_at.is_not(None), T.c.needs_review.is_(False),
               sa.or_(T.c.lease_until.is_(None), T.c.lease_until < now))
        .order_by(T.c.id).limit(500)))
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
            guard = T.update().where(T.c.id == row.id, T.c.state == S.TO_PROCESS,
                                     T.c.in_flight_at == row.in_flight_at, T.c.needs_review.is_(False))
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
                    state=S.SENT, provider_message_id=found.provider_message_id, sent_at=row.in_flight_at,
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


def resolve_review(message_id: int, action: str, user_id: int | None) -> SpoolMessage:
    """A supervisor's decision on a message the provider could not account for: "resend" puts it back
    in the pool, "cancel" cancels it. The caller commits."""
    message = db.session.get(SpoolMessage, message_id)
    if message is None or not message.needs_review or message.state != S.TO_PROCESS:
        raise DialerError(_("This message is not waiting for a decision."))
    if action == "resend":
        message.state = S.TO_PROCESS
    elif action == "cancel":
        message.state = S.CANCELLED
    else:
        raise DialerError(_("Choose resend or cancel."))
    message.needs_review = False
    message.in_flight_at = None
    message.lease_owner = None
    message.lease_until = None
    dialer = db.session.get(Dialer, message.dialer_id)
    _audit(user_id, f"dialer.review_{action}", dialer, message_id=message.id)
    publish_counts(message.dialer_id, force=True)
    return message


# -- S4 actions ----------------------------------------------------------------------------
def start(dialer: Dialer, user_id: int | None = None) -> Dialer:
    """Start sending. Refused (DialerError) unless the dialer is enabled. The caller commits."""
    if not dialer.enabled:
        raise DialerError(_("Enable the dialer before starting it."))
    return _set_running(dialer, True, user_id)


def stop(dialer: Dialer, user_id: int | None = None) -> Dialer:
    """Stop sending; messages already in flight finish, nothing new goes out. The caller commits."""
    return _set_running(dialer, False, user_id)


def _set_running(dialer: Dialer, running: bool, user_id: int | None) -> Dialer:
    changed = dialer.running != running
    dialer.running = running
    dialer.state_changed_at = clock.now()
    if changed:
        _audit(user_id, "dialer.start" if running else "dialer.stop", dialer)
    _publish_state(dialer)
    return dialer


def cancel_pending(dialer: Dialer, user_id: int | None = None) -> int:
    """S4 Delete: every not-yet-processed message (NONE, TO PROCESS, BLOCKED, INVALID, FAILED), not in
    flight, becomes CANCELLED. Returns how many. The caller commits."""
    result = db.session.execute(T.update().where(
        T.c.dialer_id == dialer.id, T.c.state.in_(sorted(S.CANCELLABLE)), T.c.in_flight_at.is_(None))
        .values(state=S.CANCELLED, lease_owner=None, lease_until=None, needs_review=False))
    count = result.rowcount or 0
    _audit(user_id, "dialer.cancel_pending", dialer, count=count)
    publish_counts(dialer.id, force=True)
    return count


def _normalise(phone: str) -> str | None:
    region = _cfg("DEFAULT_REGION", "UY")
    try:
        from .phones import to_e164
    except ImportError:
        import phonenumbers

        try:
            parsed = phonenumbers.parse(phone, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(parsed):
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return to_e164(phone.strip(), region)


def queue_single(dialer: Dialer, phone: str, text: str, user_id: int | None = None) -> SpoolMessage:
    """S4 single message: queued ahead of everything else on the dialer (highest priority + 1).

    A bad number or an empty text raises DialerError (a form error) and queues nothing. The caller commits.
    """
    number = _normalise(phone or "")
    if number is None:
        raise DialerError(_("%(phone)s is not a valid phone number.", phone=(phone or "").strip() or "''"))
    if not (text or "").strip():
        raise DialerError(_("Write the text of the message."))
    top = db.session.scalar(sa.select(sa.func.max(SpoolMessage.priority)).where(
        SpoolMessage.dialer_id == dialer.id, SpoolMessage.state == S.TO_PROCESS)) or 0
    message = SpoolMessage(dialer_id=dialer.id, destination=number, body=text.strip(), priority=top + 1,
                           state=S.TO_PROCESS, attempts=0, needs_review=False)
    db.session.add(message)
    _audit(user_id, "dialer.single_message", dialer, destination=number)
    publish_counts(dialer.id, force=True)
    return message


def counts(dialer_id: int) -> DialerCounts:
    """The dashboard figures of one dialer, from one GROUP BY query."""
    in_flight = sa.case((T.c.in_flight_at.is_not(None), 1), else_=0)
    rows = db.session.execute(
        sa.select(T.c.state, in_flight.label("in_flight"), T.c.needs_review, sa.func.count())
        .where(T.c.dialer_id == dialer_id).group_by(T.c.state, in_flight, T.c.needs_review))
    by_state: dict[int, int] = {}
    flying = review = 0
    for state, is_flying, needs_review, n in rows:
        by_state[state] = by_state.get(state, 0) + n
        if state == S.TO_PROCESS and needs_review:
            review += n
        elif state == S.TO_PROCESS and is_flying:
            flying += n
    g = by_state.get
    return DialerCounts(
        processed=g(S.SENT, 0) + g(S.DELIVERED, 0) + g(S.FAILED, 0),
        not_processed=g(S.NONE, 0) + g(S.TO_PROCESS, 0), other=g(S.INVALID, 0), blocked=g(S.BLOCKED, 0),
        sent=g(S.SENT, 0), delivered=g(S.DELIVERED, 0), failed=g(S.FAILED, 0), cancelled=g(S.CANCELLED, 0),
        in_flight=flying, needs_review=review)


def status(dialer: Dialer) -> DialerStatus:
    """S4 state: active (enabled and running), in schedule now, the counts, and the provider's rate limit."""
    return DialerStatus(dialer_id=dialer.id, enabled=dialer.enabled, running=dialer.running,
                        active=dialer.active, in_schedule=in_schedule(dialer.schedule, clock.center_now()),
                        counts=counts(dialer.id), limit=provider_limit(dialer.provider_id))


# -- delivery receipts ----------------------------------------------------------------------
_DELIVERED = frozenset({"delivered", "read"})
_FAILED = frozenset({"failed", "undelivered"})


def apply_delivery(provider_id: int, update: StatusUpdate) -> bool:
    """Apply a delivery callback (or a Dinstar result) to a spool message of this provider's dialers.

    Found by provider_message_id, or by `ref` (our spool id, echoed by Dinstar). Only moves forward:
    SENT → DELIVERED or FAILED; an in-flight message that the gateway reports sent/delivered is settled.
    DELIVERED and FAILED never change again. Idempotent. Returns True when a spool message matched
    (changed or not), so the caller knows the update was the dialer's. The caller commits.
    """
    of_provider = sa.select(Dialer.id).where(Dialer.provider_id == provider_id).scalar_subquery()
    message = None
    if update.ref is not None:
        message = db.session.scalar(sa.select(SpoolMessage).where(
            SpoolMessage.id == update.ref, SpoolMessage.dialer_id.in_(of_provider)))
    if message is None and update.provider_message_id:
        message = db.session.scalar(sa.select(SpoolMessage).where(
            SpoolMessage.provider_message_id == update.provider_message_id,
            SpoolMessage.dialer_id.in_(of_provider)).order_by(SpoolMessage.id.desc()).limit(1))
    if message is None:
        return False
    status = update.status
    now = clock.now()
    if message.state == S.TO_PROCESS and message.in_flight_at is not None and status in ("sent", *_DELIVERED):
        # The gateway has it: the request went out even if its answer was never recorded.
        message.state = S.SENT
        message.sent_at = message.in_flight_at
        message.in_flight_at = None
        message.lease_owner = None
        message.lease_until = None
        message.needs_review = False
    if update.ref is not None and update.provider_message_id and message.provider_message_id != \
            update.provider_message_id and message.state in (S.SENT, S.DELIVERED, S.FAILED):
        # Dinstar: results carry "port:ref_id", the only key its delivery reports carry.
        message.provider_message_id = update.provider_message_id
    if message.state == S.SENT and status in _DELIVERED:
        message.state = S.DELIVERED
        message.delivered_at = now
    elif message.state == S.SENT and status in _FAILED:
        message.state = S.FAILED
        message.last_error = f"{status} {update.error_code or ''} {update.error_message or ''}".strip()[:500]
    publish_counts(message.dialer_id)
    return True


SANDBOX_DELIVERY_BATCH = 500


def sandbox_delivery_reports(after_seconds: float = 2.0) -> int:
    """`make run`'s simulated handsets: what a dialer sent through a sandbox provider at least
    `after_seconds` ago is reported delivered, as a real gateway's status callback would (the sandbox
    has nobody to call the webhook). Only messages the sandbox recorded are reported. The caller commits.
    Returns how many spool messages moved."""
    cutoff = clock.now() - timedelta(seconds=after_seconds)
    providers = db.session.scalars(sa.select(Provider).where(
        Provider.type == "sandbox", Provider.id.in_(sa.select(Dialer.provider_id)))).all()
    moved = 0
    for provider in providers:
        ids = db.session.scalars(
            sa.select(SpoolMessage.id).join(Dialer, Dialer.id == SpoolMessage.dialer_id)
            .where(Dialer.provider_id == provider.id, SpoolMessage.state == SpoolState.SENT,
                   SpoolMessage.sent_at <= cutoff)
            .order_by(SpoolMessage.id).limit(SANDBOX_DELIVERY_BATCH)).all()
        if not ids:
            continue
        with make_adapter(provider) as adapter:
            for update in adapter.poll_status(list(ids)):
                moved += apply_delivery(provider.id, update)
    return moved
