"""S1 live fan-out: an agent's state change reaching every supervisor's monitor as a rendered fragment.

One gunicorn gthread worker (one process; each socket holds a thread, so --threads is sockets + 100 for
plain requests) serves websocket-client connections that carry supervisors' session cookies and follow
group:<gid>. Phase 1: 200 sockets, 20 state changes (break on / off through services.agents, committed, so
published after commit like production): latency from the commit to each socket's receipt of the
`agent-<id>-row` fragment, p50/p95 (target p95 ≤ 100 ms on loopback). Phase 2: 1,000 sockets held by the same
process, 20 more changes: every socket must receive every event (counts; none dropped), p50/p95, and the
process's RSS.

`python -m tests.bench.bench_fanout` prints the JSON; `run()` returns it.
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import requests

from tests.bench.bench_dispatch import ROOT, Stack

PHASES = (200, 1000)
EVENTS = 20
TARGET_MS = 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(stack: Stack, supervisors: int) -> dict[str, Any]:
    from webapp.extensions import db
    from webapp.models import BreakType, SecurityGroup, User

    with stack.app.app_context():
        group = SecurityGroup(name="fanout")
        lunch = BreakType(name="Almuerzo", icon="🍽")
        agent = User(username="agent", name="Agente", role="agent", password_hash="!", state="free")
        sups = [User(username=f"sup{n:04d}", name=f"Sup {n}", role="supervisor", password_hash="!")
                for n in range(supervisors)]
        for user in [agent, *sups]:
            user.security_groups.append(group)
        db.session.add_all([group, lunch, agent, *sups])
        db.session.commit()
        serializer = stack.app.session_interface.get_signing_serializer(stack.app)
        # A signed session like the one sign-in leaves (Flask-Login reads _user_id "<id>:<session_version>").
        cookies = [serializer.dumps({"_user_id": f"{u.id}:{u.session_version}", "_fresh": True}) for u in sups]
        return {"group_id": group.id, "agent_id": agent.id, "break_id": lunch.id, "cookies": cookies}


class Listener(threading.Thread):
    """One supervisor socket: records when each agent-row fragment arrives."""

    def __init__(self, url: str, cookie: str, marker: str):
        super().__init__(daemon=True)
        import websocket

        self.ws = websocket.create_connection(url, cookie=f"session={cookie}", timeout=60)
        first = self.ws.recv()
        assert 'data-live="on"' in first, first[:200]
        self.marker = marker
        self.arrivals: list[float] = []

    def run(self) -> None:
        try:
            while True:
                message = self.ws.recv()
                if self.marker in message:
                    self.arrivals.append(time.perf_counter())
        except Exception:  # noqa: BLE001 - the socket closed at the end of the run
            return

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001
            pass


def _change(stack: Stack, agent_id: int, break_id: int, on: bool) -> float:
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import agents

    with stack.app.app_context():
        agent = db.session.get(User, agent_id)
        if on:
            agents.start_break(agent, break_id)
        else:
            agents.end_break(agent)
        started = time.perf_counter()
        db.session.commit()  # the events go to Redis right after this
        return started


def _phase(stack: Stack, port: int, ids: dict[str, Any], sockets: int) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{port}/ws?topics=group:{ids['group_id']}"
    marker = f'id="agent-{ids["agent_id"]}-row"'
    cookies = ids["cookies"]
    listeners = []
    connect_started = time.perf_counter()
    for n in range(sockets):
        listener = Listener(url, cookies[n % len(cookies)], marker)
        listener.start()
        listeners.append(listener)
    connect_seconds = time.perf_counter() - connect_started
    time.sleep(0.5)
    latencies: list[float] = []
    sent: list[float] = []
    for k in range(EVENTS):
        sent.append(_change(stack, ids["agent_id"], ids["break_id"], on=k % 2 == 0))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(len(x.arrivals) < k + 1 for x in listeners):
            time.sleep(0.005)
        time.sleep(0.05)
    # Late is not lost: give stragglers up to a minute before counting what never came.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(len(x.arrivals) < EVENTS for x in listeners):
        time.sleep(0.05)
    for listener in listeners:
        for k, arrival in enumerate(listener.arrivals[:EVENTS]):
            latencies.append(arrival - sent[k])
    counts = [len(x.arrivals) for x in listeners]
    for listener in listeners:
        listener.close()
    ordered = sorted(latencies) or [float("nan")]
    return {
        "sockets": sockets, "events": EVENTS, "connect_seconds": round(connect_seconds, 2),
        "received_total": sum(counts), "expected_total": sockets * EVENTS,
        "sockets_missing_events": sum(1 for c in counts if c < EVENTS),
        "sockets_with_extra": sum(1 for c in counts if c > EVENTS),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def _rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return round(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20, 1)


def run() -> dict[str, Any]:
    threads = max(PHASES) + 100
    with Stack() as stack:
        ids = seed(stack, supervisors=200)
        port = _free_port()
        log = open(os.path.join(stack.tmp, "gunicorn.log"), "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads", str(threads),
             "-b", f"127.0.0.1:{port}", "--timeout", "120", "--log-level", "warning", "wsgi:app"],
            cwd=ROOT, env=dict(stack.env, LOG_LEVEL="WARNING"), stdout=log, stderr=log)
        stack.procs.append(proc)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)
        out: dict[str, Any] = {"database": stack.database, "gunicorn": f"gthread, 1 worker, --threads {threads}",
                               "target_p95_ms": TARGET_MS}
        for sockets in PHASES:
            out[f"sockets_{sockets}"] = _phase(stack, port, ids, sockets)
            out[f"sockets_{sockets}"]["rss_mb_after"] = _rss_mb(proc.pid)
        out["p95_within_target_200"] = out["sockets_200"]["p95_ms"] <= TARGET_MS
        out["none_dropped_1000"] = out["sockets_1000"]["received_total"] == out["sockets_1000"]["expected_total"]
        log.close()
        return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
