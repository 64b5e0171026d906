"""Unpaced sending to a distant gateway: many requests in flight, claimed as slots free up.

Used once `Sender.tune` found that each request mostly waits for the gateway (a remote API). The main
thread claims small chunks already marked in flight (`claim_rows` with an in-flight lease, one commit),
hands their rows to the job's thread pool, and records each chunk in one commit once all its requests are
answered; it claims the next chunk as soon as the window (`window.Window`, adapting to the gateway's
latency and 429s) has room, so the gateway always has about a window's worth of requests to answer. Only
the main thread touches the database; the threads send through one shared adapter (one pooled session
sized to the pool) and tell the shared rate limit (Redis) what the gateway answered.

Exactly once, as in the package docstring: every row is marked in flight before it can go; a row counts
as requested the moment a thread commits to sending it (under the lock that also halts the job), so it is
either requested (recorded when answered; left in flight for reconcile when not) or never sent (given back
with its attempt). A kill -9 leaves at most the window's chunks in flight, each one reconciled.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ...providers.base import OutboundMessage, Outcome, SendResult
from .. import time as clock
from .sender import Sender

log = logging.getLogger(__name__)

CHECK_EVERY = 0.5  # seconds between looks at Stop / schedule / slot while the window stays full
TUNE_EVERY = 256  # answers between looks at whether requests still mostly wait (Sender.still_far)


@dataclass
class _Chunk:
    rows: list[Any]
    marked_at: datetime
    values: list[dict[str, Any]]  # settled ones first (do-not-contact), then each answer
    requested: set[int] = field(default_factory=set)
    pending: int = 0


def send_windowed(sender: Sender, deadline: float, report: Any, stop_reason: Callable[[], str]) -> None:
    """Claim and send until empty, stopped, out of time, or the gateway struggles; sets report.stopped."""
    from .sending import _claim_marked, _record, _result_values, _struggling

    window = sender.window
    lock = threading.Lock()
    turn = threading.Condition(lock)
    active = [0]  # requests on their way now
    halted = [False]  # no request starts any more
    struggled = [False]  # ...because the gateway failed for now or limits our pace
    window_span = timedelta(seconds=sender.lease)

    def one(row: Any, chunk: _Chunk) -> tuple[Any, SendResult, float | None] | None:
        with turn:  # a request starts only while the window has room (the claimed-ahead backlog waits)
            while active[0] >= window.size() and not halted[0]:
                turn.wait(0.05)
            if halted[0] or clock.now() > chunk.marked_at + window_span or time.monotonic() > deadline:
                return None
            chunk.requested.add(row.id)
            active[0] += 1
        sent_at = time.time()
        started = time.monotonic()
        try:
            result = sender.adapter.send(OutboundMessage(ref=row.id, to=row.destination, body=row.body))
        finally:
            with turn:
                active[0] -= 1
                turn.notify()
        refused = result.outcome is Outcome.RATE_LIMITED and not result.per_recipient
        took = time.monotonic() - started
        window.answered(took, refused)
        with lock:
            fastest[0] = min(fastest[0], took)
        wait_for = sender.observe(result, sent_at)
        if _struggling(result):
            with lock:
                halted[0] = struggled[0] = True  # the rest go back, later
        return row, result, wait_for

    fastest = [float("inf")]  # the fastest answer since the last look (threads' GIL waits inflate the rest)

    futures: dict[Future[Any], _Chunk] = {}
    answered: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()  # each future, once done
    open_chunks: list[_Chunk] = []
    stopping = ""
    checked = time.monotonic()
    answers, cpu_at = 0, time.process_time()

    def settle(chunk: _Chunk) -> None:
        done = {v["b_id"] for v in chunk.values}
        unsent = [r.id for r in chunk.rows if r.id not in chunk.requested and r.id not in done]
        _record(sender, chunk.values, unsent)
        open_chunks.remove(chunk)

    try:
        while True:
            size = window.size()
            # Claimed ahead by half a window, so the threads never wait for this thread's commits.
            free = size + size // 2 - len(futures)
            if not stopping and not halted[0] and free >= max(1, size // 4):
                now = time.monotonic()
                if now > deadline:
                    stopping = "budget"
                elif now - checked > CHECK_EVERY:
                    stopping, checked = stop_reason(), now
                if not stopping:
                    rows, settled = _claim_marked(sender, min(free, sender.claim_size), report)
                    if not rows:
                        stopping = "empty"
                    else:
                        skip = {v["b_id"] for v in settled}
                        chunk = _Chunk(rows, rows[0].in_flight_at, settled)
                        open_chunks.append(chunk)
                        for row in rows:
                            if row.id not in skip:
                                chunk.pending += 1
                                future = sender.executor.submit(one, row, chunk)
                                futures[future] = chunk
                                future.add_done_callback(answered.put)
                        report.concurrency = max(report.concurrency, len(futures))
                        if not chunk.pending:
                            settle(chunk)
                        continue  # top up again before waiting
            if not futures:
                break
            try:
                finished = [answered.get(timeout=CHECK_EVERY)]
            except queue.Empty:
                continue
            while not answered.empty():
                finished.append(answered.get_nowait())
            answers += len(finished)
            if answers >= TUNE_EVERY:
                with lock:
                    far = sender.still_far(fastest[0] * answers, time.process_time() - cpu_at, answers)
                    fastest[0] = float("inf")
                answers, cpu_at = 0, time.process_time()
                if not far and not stopping:
                    sender.concurrency, stopping = 1, "near"  # the CPU is the limit: one at a time again
            for future in finished:
                chunk = futures.pop(future)
                chunk.pending -= 1
                out = future.result()
                if out is not None:
                    chunk.values.append(_result_values(sender, out[0], None, out[1], chunk.marked_at,
                                                       clock.now(), report, out[2]))
                if not chunk.pending:
                    settle(chunk)
    finally:
        # Whatever happened (Redis gone, a timeout signal): nothing new starts, what was answered is
        # recorded, what was never started goes back; requests still unanswered stay in flight.
        with lock:
            halted[0] = True
        for future in futures:
            future.cancel()
        for chunk in list(open_chunks):
            settle(chunk)
    if struggled[0] and stopping == "" and not sender.paused_by_limit:
        stopping = "budget" if time.monotonic() > deadline else "paused"
    if stopping == "near" or (stopping == "empty" and sender.paused_by_limit):
        stopping = ""  # the drain loop goes on
    report.stopped = report.stopped or stopping
    log.info("dialer %s: window %d after %d cuts (fastest answer %.3f s)", sender.dialer_id, window.size(),
             window.cuts, window.fastest or 0.0)
