"""Sustained 429: a 30-message bulk while the Twilio fake (its own process) answers every send 429 with
Retry-After: 5 for 60 s and then recovers; two real workers (`python -m workers`, clock included).

Reported: FAILED, duplicates, how many 429s the workers drew, and the seconds from Start until every
message is settled (no TO PROCESS left); beside it the same bulk with no rate limit (the reference), and
the load average. Targets: 0 FAILED, 0 duplicates, every message sent.

`python -m tests.bench.bench_rate_limit` prints the JSON; `run()` returns it (tests/bench/__main__.py).
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

import requests

from tests.bench.bench_dispatch import Stack
from tests.helpers import start_worker, stop_worker

MESSAGES = 30
RETRY_AFTER = "5"
LIMIT_SECONDS = 60.0
SETTLE_TIMEOUT = 600.0


def _set_running(stack: Stack, dialer_id: int, running: bool) -> None:
    from webapp.extensions import db
    from webapp.models import Dialer

    with stack.app.app_context():
        db.session.get(Dialer, dialer_id).running = running
        db.session.commit()
        db.session.remove()


def _settle(stack: Stack, dialer_id: int) -> float:
    """Start the dialer; seconds until no message is TO PROCESS (or the timeout)."""
    _set_running(stack, dialer_id, True)
    started = time.monotonic()
    while stack.states(dialer_id).get(1, 0) and time.monotonic() - started < SETTLE_TIMEOUT:
        time.sleep(0.2)
    return time.monotonic() - started


def _measure(stack: Stack, tag: str, limited: bool) -> dict[str, Any]:
    stack.reset_fake()
    dialer_id = stack.dialer(tag)
    _set_running(stack, dialer_id, False)  # queued first, started by _settle
    numbers = stack.queue(dialer_id, MESSAGES, tag)
    if limited:
        requests.post(f"{stack.fake_url}/_fake/mode", json={"mode": "429", "seconds": LIMIT_SECONDS,
                                                            "retry_after": RETRY_AFTER}, timeout=10).raise_for_status()
    seconds = _settle(stack, dialer_id)
    states = stack.states(dialer_id)
    sends = Counter(m["to"] for m in stack.fake_sends())
    answers = Counter(r.get("status") for r in requests.get(f"{stack.fake_url}/_fake/requests", timeout=60).json()
                      if r["method"] == "POST" and r["path"].endswith("/Messages.json"))
    return {"sent": states.get(2, 0), "failed": states.get(5, 0), "still_to_process": states.get(1, 0),
            "duplicates": sum(c - 1 for c in sends.values() if c > 1),
            "missing": len(set(numbers) - set(sends)), "answered_429": answers.get(429, 0),
            "seconds": round(seconds, 2)}


def run() -> dict[str, Any]:
    """The limited bulk, then the same bulk unlimited, with two workers on one stack."""
    with Stack() as stack:
        env = dict(stack.env, DIALER_WORKERS_PER_DIALER="2", FLASK_APP="wsgi:app")
        workers = [start_worker(env, stack.tmp / f"worker{i}.log") for i in (1, 2)]
        try:
            from rq import Worker

            deadline = time.monotonic() + 60
            while len(Worker.all(connection=stack.app.extensions["conversa_redis"])) < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError("workers did not start")
                time.sleep(0.1)
            limited = _measure(stack, "limited", limited=True)
            reference = _measure(stack, "reference", limited=False)
        finally:
            for proc in workers:
                stop_worker(proc)
        return {"messages": MESSAGES, "retry_after": float(RETRY_AFTER), "limit_seconds": LIMIT_SECONDS,
                "database": stack.database, "limited": limited, "reference": reference,
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "targets_met": limited["failed"] == 0 and limited["duplicates"] == 0 and limited["missing"] == 0
                and limited["sent"] == MESSAGES}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
