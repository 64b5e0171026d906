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
import selectors
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.bench.bench_dispatch import ROOT, Stack, stop
from tests.helpers import free_port

PHASES = (200, 1000)
EVENTS = 20
TARGET_MS = 100
BARE_CHANNEL = "bench-bare-relay"


def seed(stack: Stack, supervisors: int) -> dict[str, Any]:
    from webapp.auth.routes import SESSION_TOKEN
    from webapp.extensions import db
    from webapp.models import BreakType, SecurityGroup, User
    from webapp.services import accounts

    with stack.app.app_context():
        group = SecurityGroup(name="fanout")
        lunch = BreakType(name="Almuerzo", icon="🍽")
        agent = User(username="agent", name="Agente", role="agent", password_hash="!", state="free")
        sups = [User(username=f"sup{n:04d}", name=f"Sup {n}", role="supervisor", password_hash="!")
                for n in range(supervisors)]
        for user in [agent, *sups]:
            user.security_groups.append(group)
        db.session.add_all([group, lunch, agent, *sups])
        db.session.flush()
        tokens = [accounts.start_session(u) for u in sups]
        db.session.commit()
        serializer = stack.app.session_interface.get_signing_serializer(stack.app)
        # A signed session like the one sign-in leaves (Flask-Login reads _user_id "<id>:<session_version>";
        # the token names the server-side session).
        cookies = [serializer.dumps({"_user_id": f"{u.id}:{u.session_version}", "_fresh": True,
                                     SESSION_TOKEN: token}) for u, token in zip(sups, tokens, strict=True)]
        return {"group_id": group.id, "agent_id": agent.id, "break_id": lunch.id, "cookies": cookies}


class Listeners(threading.Thread):
    """Every supervisor socket, read by one selector thread: when each agent-row fragment arrives.

    A thread per socket in this process would measure the client (200 Python threads fighting for the
    GIL add tens of ms of their own); one thread on epoll reads every socket as soon as bytes land.
    Server frames are unmasked and uncompressed (no extension is negotiated), so counting the marker in
    the byte stream counts the fragments."""

    def __init__(self, marker: str):
        super().__init__(daemon=True)
        self.marker = marker.encode()
        self.selector = selectors.DefaultSelector()
        self.arrivals: dict[int, list[float]] = {}
        self._tails: dict[int, bytes] = {}
        self._conns: list[Any] = []
        self._done = threading.Event()

    def connect(self, url: str, cookie: str) -> None:
        import websocket

        ws = websocket.create_connection(url, cookie=f"session={cookie}", timeout=60)
        first = ws.recv()
        assert 'data-live="on"' in first, first[:200]
        ws.sock.setblocking(False)
        self._conns.append(ws)
        fd = ws.sock.fileno()
        self.arrivals[fd], self._tails[fd] = [], b""
        self.selector.register(ws.sock, selectors.EVENT_READ, fd)

    def run(self) -> None:
        keep = len(self.marker) - 1
        while not self._done.is_set():
            for key, _ in self.selector.select(timeout=0.1):
                try:
                    data = key.fileobj.recv(262144)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                now = time.perf_counter()
                if not data:
                    self.selector.unregister(key.fileobj)
                    continue
                fd = key.data
                buf = self._tails[fd] + data
                self.arrivals[fd].extend([now] * buf.count(self.marker))
                self._tails[fd] = buf[-keep:] if keep else b""

    def counts(self) -> list[int]:
        return [len(a) for a in self.arrivals.values()]

    def close(self) -> None:
        self._done.set()
        self.join(5)
        for ws in self._conns:
            try:
                ws.sock.setblocking(True)
                ws.close()
            except Exception:  # noqa: BLE001 - the server may have gone first
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


def _measure(url: str, cookies: list[str], marker: str, sockets: int,
             trigger: Callable[[int], float]) -> dict[str, Any]:
    """Connect `sockets` sockets, fire EVENTS events one after another (trigger(k) returns when it was
    committed or published), and time each fragment's arrival on each socket."""
    listeners = Listeners(marker)
    connect_started = time.perf_counter()
    for n in range(sockets):
        listeners.connect(url, cookies[n % len(cookies)])
    connect_seconds = time.perf_counter() - connect_started
    listeners.start()
    time.sleep(0.5)
    sent: list[float] = []
    for k in range(EVENTS):
        sent.append(trigger(k))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(c < k + 1 for c in listeners.counts()):
            time.sleep(0.005)
        time.sleep(0.05)
    # Late is not lost: give stragglers up to a minute before counting what never came.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(c < EVENTS for c in listeners.counts()):
        time.sleep(0.05)
    latencies = [arrival - sent[k] for arrivals in listeners.arrivals.values()
                 for k, arrival in enumerate(arrivals[:EVENTS])]
    counts = listeners.counts()
    listeners.close()
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


def _phase(stack: Stack, port: int, ids: dict[str, Any], sockets: int) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{port}/ws?topics=group:{ids['group_id']}"
    marker = f'id="agent-{ids["agent_id"]}-row"'
    return _measure(url, ids["cookies"], marker, sockets,
                    lambda k: _change(stack, ids["agent_id"], ids["break_id"], on=k % 2 == 0))


def _bare_phase(stack: Stack, port: int, sockets: int, fragment: str) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(stack.redis_url)

    def publish(_k: int) -> float:
        started = time.perf_counter()
        client.publish(BARE_CHANNEL, fragment)
        return started

    try:
        return _measure(f"ws://127.0.0.1:{port}/ws", ["-"], 'id="agent-0-row"', sockets, publish)
    finally:
        client.close()


def _gunicorn(stack: Stack, app: str, threads: int, cwd: Path, name: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = open(os.path.join(stack.tmp, f"{name}.log"), "wb")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads", str(threads),
         "-b", f"127.0.0.1:{port}", "--timeout", "120", "--log-level", "warning", app],
        cwd=cwd, env=dict(stack.env, LOG_LEVEL="WARNING", BARE_RELAY_CHANNEL=BARE_CHANNEL), stdout=log, stderr=log,
        start_new_session=True)  # its own process group: stop() ends the master and its worker
    log.close()
    stack.procs.append(proc)
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc, port
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"gunicorn {app} did not start")
        time.sleep(0.2)


def _rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return round(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20, 1)


def _fragment(stack: Stack, ids: dict[str, Any]) -> str:
    """The agent row the app sends, with the bare relay's marker, so both carry the same bytes."""
    from webapp.supervisor.live import agent_row_html

    with stack.app.test_request_context():
        html = agent_row_html([ids["agent_id"]])
    return html.replace(f'id="agent-{ids["agent_id"]}-row"', 'id="agent-0-row"')


def run() -> dict[str, Any]:
    threads = max(PHASES) + 100
    with Stack() as stack:
        ids = seed(stack, supervisors=200)
        out: dict[str, Any] = {"database": stack.database, "gunicorn": f"gthread, 1 worker, --threads {threads}",
                               "client": "one epoll thread reading every socket", "target_p95_ms": TARGET_MS}
        bare, bare_port = _gunicorn(stack, "bare_relay:app", threads, Path(__file__).parent, "bare")
        out["bare_relay_200"] = _bare_phase(stack, bare_port, PHASES[0], _fragment(stack, ids))
        stop(bare)
        proc, port = _gunicorn(stack, "wsgi:app", threads, ROOT, "app")
        for sockets in PHASES:
            out[f"sockets_{sockets}"] = _phase(stack, port, ids, sockets)
            out[f"sockets_{sockets}"]["rss_mb_after"] = _rss_mb(proc.pid)
        out["p95_within_target_200"] = out["sockets_200"]["p95_ms"] <= TARGET_MS
        out["none_dropped_1000"] = out["sockets_1000"]["received_total"] == out["sockets_1000"]["expected_total"]
        return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
