"""Dispatch to a gateway far away (issue 14, part 1): the Twilio fake answers every request after a latency.

For each latency (0, 50, 150, 300 ms) and in the same run: a plain pool of 64 threads sharing one
`requests.Session` (its connection pool sized to 64) posting the messages, one dialer worker (the
`run_dialer` job in its own process, as a worker runs it) and two workers on one dialer. Rates are
measured the same way for all: first to last request arrival at the fake. Targets at 150 ms: one worker
≥ 0.8 × the pool, two workers ≥ 1.6 × the pool; zero duplicates and none missing at every latency.

The machine may be shared: the load average at the start of each latency is reported with its figures.

`python -m tests.bench.bench_distant_gateway` prints the JSON; `run()` returns it (tests/bench/__main__.py).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from tests.bench.bench_dispatch import Stack, _rate
from tests.bench.bench_dispatch import _child as dispatch_child

LATENCIES_MS = (0, 50, 150, 300)
POOL_THREADS = 64
TARGET_1 = 0.8  # one worker vs the pool, at 150 ms
TARGET_2 = 1.6  # two workers vs the pool, at 150 ms
TARGET_LATENCY_MS = 150


def _messages(latency_ms: int) -> int:
    """Enough messages for a few seconds of sending at each latency, without making the run long."""
    return 3000 if latency_ms <= 50 else 2000


class DistantStack(Stack):
    """bench_dispatch's stack; children run from this module (they also know the thread pool)."""

    CHILD_MODULE = "tests.bench.bench_distant_gateway"
    CHILD_SECONDS = 900

    def set_latency(self, seconds: float) -> None:
        requests.post(f"{self.fake_url}/_fake/mode", json={"latency": seconds}, timeout=10).raise_for_status()


def _pool_child(go: Path, fake_url: str, count: int) -> None:
    """The plain reference: POOL_THREADS threads, one Session whose connection pool holds them all."""
    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN

    ready = Path(f"{go}.ready.{os.getpid()}")
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=POOL_THREADS)
    session.mount("http://", adapter)
    session.auth = (ACCOUNT_SID, AUTH_TOKEN)
    url = f"{fake_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    lock = threading.Lock()
    todo = iter(range(count))
    ok = [0]

    def work() -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            r = session.post(url, data={"To": f"+5989666{i:04d}", "From": "+15005550006",
                                        "Body": f"Hola, mensaje {i} (pool)"}, timeout=30)
            r.json()
            with lock:
                ok[0] += r.status_code == 201

    ready.touch()
    while not go.exists():
        time.sleep(0.005)
    started = time.monotonic()
    threads = [threading.Thread(target=work) for _i in range(POOL_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"ok": ok[0], "seconds": time.monotonic() - started}))


def _workers(stack: DistantStack, name: str, messages: int, n: int) -> dict[str, Any]:
    stack.reset_fake()
    d = stack.dialer(name)
    numbers = stack.queue(d, messages, name)
    reports = stack.run_children([["worker", str(d), str(slot)] for slot in range(n)])
    sent, span = stack.arrival_span()
    sends = Counter(m["to"] for m in stack.fake_sends())
    return {"sent": sent, "seconds": round(span, 3), "msgs_per_s": _rate(sent, span),
            "duplicates": sum(c - 1 for c in sends.values() if c > 1),
            "missing": len(set(numbers) - set(sends)), "states": stack.states(d),
            "jobs": [{k: r.get(k) for k in ("claimed", "sent", "stopped", "concurrency")} for r in reports]}


def _latency(stack: DistantStack, latency_ms: int) -> dict[str, Any]:
    messages = _messages(latency_ms)
    load = [round(x, 2) for x in os.getloadavg()]
    stack.reset_fake()
    stack.set_latency(latency_ms / 1000.0)
    stack.run_children([["pool", stack.fake_url, str(messages)]])
    sent, span = stack.arrival_span()
    out: dict[str, Any] = {"messages": messages, "load_average": load,
                           "pool": {"threads": POOL_THREADS, "sent": sent, "seconds": round(span, 3),
                                    "msgs_per_s": _rate(sent, span)}}
    out["worker_1"] = _workers(stack, f"far{latency_ms}a", messages, 1)
    out["workers_2"] = _workers(stack, f"far{latency_ms}b", messages, 2)
    pool = out["pool"]["msgs_per_s"] or 1.0
    out["ratio_1"] = round(out["worker_1"]["msgs_per_s"] / pool, 3)
    out["ratio_2"] = round(out["workers_2"]["msgs_per_s"] / pool, 3)
    return out


def run(latencies: tuple[int, ...] = LATENCIES_MS) -> dict[str, Any]:
    with DistantStack() as stack:
        load = [round(x, 2) for x in os.getloadavg()]
        results = {f"{ms}ms": _latency(stack, ms) for ms in latencies}
    duplicates = sum(r[k]["duplicates"] for r in results.values() for k in ("worker_1", "workers_2"))
    missing = sum(r[k]["missing"] for r in results.values() for k in ("worker_1", "workers_2"))
    at = results.get(f"{TARGET_LATENCY_MS}ms")
    met = at is not None and at["ratio_1"] >= TARGET_1 and at["ratio_2"] >= TARGET_2
    return {"database": stack.database, "load_average_start": load,
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "summary": {k: {"pool": r["pool"]["msgs_per_s"], "worker_1": r["worker_1"]["msgs_per_s"],
                            "workers_2": r["workers_2"]["msgs_per_s"], "ratio_1": r["ratio_1"],
                            "ratio_2": r["ratio_2"], "load_average": r["load_average"]}
                        for k, r in results.items()},
            "targets": {"at_ms": TARGET_LATENCY_MS, "ratio_1": TARGET_1, "ratio_2": TARGET_2},
            "duplicates": duplicates, "missing": missing,
            "targets_met": bool(met and duplicates == 0 and missing == 0), "latencies": results}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        go, kind, args = Path(sys.argv[2]), sys.argv[3], sys.argv[4:]
        if kind == "pool":
            _pool_child(go, args[0], int(args[1]))
        else:
            dispatch_child(go, kind, args)
        return
    latencies = tuple(int(a) for a in sys.argv[1:]) or LATENCIES_MS
    print(json.dumps(run(latencies), indent=2))


if __name__ == "__main__":
    main()
