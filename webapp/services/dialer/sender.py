"""One send job's machinery: the dialer, its adapter(s), pacing slots, port turn, the provider's shared
rate limit, and whether requests overlap (see the package docstring)."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import current_app

from ...models import Dialer
from ...providers.base import Outcome, ProviderAdapter, SendResult
from ...providers.http import HttpAdapter
from ..pacing import Pacer, dialer_key, provider_key
from .gateway import (
    can_reconcile,
    configured_lease,
    gateway_limits,
    inflight_seconds,
    retry_delay,
    sit_out,
)
from .window import Window

log = logging.getLogger(__name__)

GROUP_MAX = 50  # messages marked in flight per commit when the provider can reconcile them
GROUP_WINDOW = 0.25  # seconds of paced sending a group covers
# Unpaced sending overlaps requests only when the gateway is far: when one request's wall time is over
# WAIT_UP times the CPU it costs here (a remote API: ~100 ms of waiting for ~2 ms of work). On loopback or
# a LAN gateway the CPU is the limit, and threads only add GIL hand-offs (measured with two workers on two
# cores: 0.84x two plain loops with two threads each, 1.06x one at a time). WAIT_DOWN is the way back.
WAIT_UP = 4.0
WAIT_DOWN = 2.0
# ...and only when the fastest request takes FAR_SECONDS or more: on a loaded host a few loopback requests
# can look like waiting (the CPU is busy elsewhere), never like 20 ms each at their fastest.
FAR_SECONDS = 0.02


class Sender:
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
        config = current_app.config
        self.lease = configured_lease()
        self.inflight = inflight_seconds()
        self.reserved: float | None = None  # a pacing slot taken ahead (time.time())
        self.max_attempts = int(config["DIALER_MAX_ATTEMPTS"])
        pace = max(self.interval, self.provider_interval)
        self.claim_size = int(config["DIALER_BATCH"])
        if self.batch:
            self.group = adapter.batch_size
        elif not can_reconcile(adapter):
            self.group = 1
        elif pace > 0:
            self.group = max(1, min(GROUP_MAX, int(GROUP_WINDOW / pace)))
        else:
            self.group = GROUP_MAX
        # Unpaced and reconcilable: the claim itself marks the rows in flight (one group per claim).
        self.mark_on_claim = pace == 0 and can_reconcile(adapter) and self.group >= self.claim_size
        # ...and, when the gateway is far, many requests go out at once (pipeline.send_windowed; order is
        # then not kept): see tune(). DIALER_SEND_CONCURRENCY caps the window (1: always one at a time).
        self.max_concurrency = int(config["DIALER_SEND_CONCURRENCY"]) if self.mark_on_claim and not self.batch else 1
        self.concurrency = 1
        self.window = Window(self.max_concurrency)
        self.executor: ThreadPoolExecutor | None = None
        # The provider's shared rate limit (see the package docstring): while it lasts, one at a time.
        self.limits = gateway_limits()
        self.limited = False
        self.free_mode = (self.batch, self.group, self.mark_on_claim, self.claim_size)
        self.retry_base = float(config["DIALER_RETRY_SECONDS"])
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
            reason = sit_out(wait, deadline, stop_reason) if wait > 0 else ""
            if reason or self.limits.hold(self.provider_id) <= 0:
                return reason

    def observe(self, result: SendResult, sent_at: float) -> float | None:
        """Tell the shared limit what the gateway answered to a request made at `sent_at` (time.time()).
        For a rate-limited answer, returns how long that message waits before it may go again."""
        if result.outcome is Outcome.RATE_LIMITED and result.per_recipient:
            return retry_delay(result, 1, self.retry_base)  # too many to this number: only it waits
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
                return retry_delay(result, 1, self.retry_base)
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
        if self.max_concurrency <= 1 or sent < 3 or cpu <= 0 or self.limited:
            return
        waits = (wall * self.concurrency) / cpu  # one request's wall time over its CPU cost
        if self.concurrency == 1 and waits > WAIT_UP and wall / sent >= FAR_SECONDS:
            if self.executor is None:
                if isinstance(self.adapter, HttpAdapter) and self.adapter.pool_size < self.max_concurrency:
                    self.adapter.close()  # its next request opens a session whose pool holds every thread
                    self.adapter.pool_size = self.max_concurrency
                self.executor = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix=f"dialer-{self.dialer_id}")
            self.concurrency = self.max_concurrency

    @staticmethod
    def still_far(waited: float, cpu: float, answers: int) -> bool:
        """While overlapping (pipeline.send_windowed): whether requests still mostly wait for the gateway.
        `waited`: the wall time of `answers` requests (at the fastest's pace); `cpu`: this process's CPU
        time over them."""
        return cpu <= 0 or (waited / cpu >= WAIT_DOWN and waited / max(1, answers) >= FAR_SECONDS / 2)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
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
