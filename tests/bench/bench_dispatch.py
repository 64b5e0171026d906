"""Dispatch throughput: 5,000 messages, no pacing, to the Twilio fake in its own process.

One dialer worker (the `run_dialer` job in its own process, as a worker runs it) beside a plain
`requests.Session` loop posting the same 5,000 to the same fake; then two workers on one dialer
beside two plain loops side by side. Rates are measured the same way for all: first to last request
arrival at the fake. Targets: worker ≥ 0.8 × plain loop, for one and for two; zero duplicates.

`python -m tests.bench.bench_dispatch` prints the JSON; `run()` returns it (tests/bench/__main__.py).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from tests.helpers import start_redis, stop_worker

ROOT = Path(__file__).resolve().parent.parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MESSAGES = 5000
TARGET = 0.8


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a child and, when it leads a process group of its own (start_new_session=True, as gunicorn is
    started), everything in that group: a gunicorn master killed alone leaves its worker running."""
    group = proc.pid if proc.poll() is None and os.getpgid(proc.pid) == proc.pid else None
    stop_worker(proc)
    if group is not None:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Stack:
    """A private Redis, a fresh database (PostgreSQL when reachable, else SQLite) and the Twilio fake."""

    CHILD_MODULE = "tests.bench.bench_dispatch"  # what the children run (a subclass names its own)
    CHILD_SECONDS = 600

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="conversa-bench-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pg_admin: sa.Engine | None = None
        self.pg_name = ""

    def __enter__(self) -> Stack:
        self.app = None
        try:
            return self._setup()
        except BaseException:
            self.__exit__()  # a stack that fails half-way leaves no server running
            raise

    def _setup(self) -> Stack:
        self.redis_url = self._start_redis()
        self.database_url, self.database = self._database()
        self.fake_url = self._start_fake()
        self.env = dict(os.environ, DATABASE_URL=self.database_url, REDIS_URL=self.redis_url,
                        SECRET_KEY="bench-secret", RQ_QUEUE="conversa-bench", PYTHONPATH=str(ROOT),
                        LOG_LEVEL="WARNING", DIALER_JOB_SECONDS="300", DIALER_LEASE_SECONDS="30",
                        SANDBOX_CUSTOMERS="0")
        os.environ.update({k: self.env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "RQ_QUEUE")})
        sys.path.insert(0, str(ROOT))
        from flask_migrate import upgrade

        from webapp import create_app

        # config.Config read the environment when first imported: a second stack in the same run
        # (`make bench` runs them all in one process) names its own database and Redis explicitly.
        self.app = create_app({"SQLALCHEMY_DATABASE_URI": self.database_url, "REDIS_URL": self.redis_url,
                               "SECRET_KEY": self.env["SECRET_KEY"], "RQ_QUEUE": self.env["RQ_QUEUE"]})
        with self.app.app_context():
            upgrade()
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        if self.app is not None:
            from webapp.extensions import db

            with self.app.app_context():
                db.engine.dispose()
        if self.pg_admin is not None:
            with self.pg_admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'))
            self.pg_admin.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _start_redis(self) -> str:
        proc, url = start_redis(self.tmp)
        self.procs.append(proc)
        return url

    def _database(self) -> tuple[str, str]:
        try:
            admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                self.pg_name = f"conversa_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
                conn.execute(sa.text(f'CREATE DATABASE "{self.pg_name}"'))
            self.pg_admin = admin
            return PG_URL.rsplit("/", 1)[0] + f"/{self.pg_name}", "postgresql"
        except Exception:  # noqa: BLE001 - no PostgreSQL here: SQLite it is
            return f"sqlite:///{self.tmp / 'bench.db'}", "sqlite"

    def _start_fake(self) -> str:
        proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.twilio", "--port", "0"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        self.procs.append(proc)
        assert proc.stdout is not None
        return proc.stdout.readline().decode().strip()

    # -- the fake, from outside ------------------------------------------------------
    def reset_fake(self) -> None:
        requests.post(f"{self.fake_url}/_fake/reset", timeout=10).raise_for_status()

    def fake_sends(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.fake_url}/_fake/sent", timeout=60).json()

    def arrival_span(self) -> tuple[int, float]:
        reqs = [r for r in requests.get(f"{self.fake_url}/_fake/requests", timeout=60).json()
                if r["method"] == "POST" and r["path"].endswith("/Messages.json")]
        times = sorted(r["at"] for r in reqs)
        return len(times), (times[-1] - times[0]) if len(times) > 1 else 0.0

    # -- the product side ----------------------------------------------------------------
    def dialer(self, name: str, interval_ms: int = 0) -> int:
        from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN
        from webapp.extensions import db
        from webapp.models import Dialer, Provider, SecurityGroup

        with self.app.app_context():
            group = SecurityGroup(name=f"bench-{name}")
            provider = Provider(name=f"bench-{name}", type="twilio", sender="+15005550006", base_url=self.fake_url,
                                max_per_second=0, options={})
            provider.credentials = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
            db.session.add_all([group, provider])
            db.session.flush()
            dialer = Dialer(name=f"bench-{name}", security_group_id=group.id, provider_id=provider.id,
                            interval_ms=interval_ms, enabled=True, running=True, dncr=True)
            db.session.add(dialer)
            db.session.commit()
            return dialer.id

    def queue(self, dialer_id: int, n: int, tag: str) -> list[str]:
        from webapp.extensions import db
        from webapp.models import SpoolMessage

        numbers = [f"+5989{len(tag) * 1000 + 1000:04d}{i:04d}" for i in range(n)]
        with self.app.app_context():
            db.session.execute(sa.insert(SpoolMessage), [
                {"dialer_id": dialer_id, "destination": num, "body": f"Hola, mensaje {i} ({tag})", "priority": 0,
                 "state": 1, "attempts": 0, "needs_review": False} for i, num in enumerate(numbers)])
            db.session.commit()
        return numbers

    def states(self, dialer_id: int) -> dict[int, int]:
        from webapp.extensions import db
        from webapp.models import SpoolMessage

        t = SpoolMessage.__table__
        with self.app.app_context():
            rows = db.session.execute(sa.select(t.c.state, sa.func.count()).where(t.c.dialer_id == dialer_id)
                                      .group_by(t.c.state)).all()
            db.session.remove()
        return {int(s): int(n) for s, n in rows}

    def run_children(self, argvs: list[list[str]]) -> list[dict[str, Any]]:
        """Start the children together (each waits for a go file), wait for all, return their JSON."""
        go = self.tmp / f"go-{uuid.uuid4().hex[:6]}"
        procs = [subprocess.Popen([sys.executable, "-m", self.CHILD_MODULE, "--child", str(go), *argv],
                                  cwd=ROOT, env=self.env, stdout=subprocess.PIPE) for argv in argvs]
        ready = [self.tmp / f"{go.name}.ready.{p.pid}" for p in procs]
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("bench children did not get ready")
            time.sleep(0.02)
        go.touch()
        out = []
        for proc in procs:
            stdout, _ = proc.communicate(self.CHILD_SECONDS)
            out.append(json.loads(stdout.decode().strip().splitlines()[-1]))
        return out


# -- children --------------------------------------------------------------------------
def _child(go: Path, kind: str, args: list[str]) -> None:
    ready = Path(f"{go}.ready.{os.getpid()}")
    if kind == "plain":
        from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN

        fake_url, first, count = args[0], int(args[1]), int(args[2])
        session = requests.Session()
        url = f"{fake_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        session.auth = (ACCOUNT_SID, AUTH_TOKEN)
        session.post(f"{fake_url}/_fake/requests_warmup", timeout=10)  # open the connection (404 is fine)
        ready.touch()
        while not go.exists():
            time.sleep(0.005)
        started = time.monotonic()
        ok = 0
        for i in range(first, first + count):
            r = session.post(url, data={"To": f"+5989777{i:04d}", "From": "+15005550006",
                                        "Body": f"Hola, mensaje {i} (plain)"}, timeout=10)
            ok += r.status_code == 201
            r.json()
        print(json.dumps({"ok": ok, "seconds": time.monotonic() - started}))
        return
    from workers.appctx import get_app
    from workers.dialer import run_dialer

    app = get_app()
    with app.app_context():
        from webapp.extensions import db

        db.session.execute(sa.text("SELECT 1"))  # connect before the start line
        db.session.remove()
        ready.touch()
        while not go.exists():
            time.sleep(0.005)
        started = time.monotonic()
        report = run_dialer(int(args[0]), int(args[1]))
    print(json.dumps({**report, "seconds": time.monotonic() - started}))


# -- the benchmark ------------------------------------------------------------------------
def _rate(n: int, span: float) -> float:
    return round((n - 1) / span, 1) if span > 0 else 0.0


def _round(stack: Stack, messages: int, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stack.reset_fake()
    stack.run_children([["plain", stack.fake_url, "0", str(messages)]])
    sent, span = stack.arrival_span()
    out["plain_1"] = {"sent": sent, "seconds": round(span, 3), "msgs_per_s": _rate(sent, span)}

    stack.reset_fake()
    d1 = stack.dialer(f"one{n}")
    numbers = stack.queue(d1, messages, f"one{n}")
    reports = stack.run_children([["worker", str(d1), "0"]])
    sent, span = stack.arrival_span()
    sends = Counter(m["to"] for m in stack.fake_sends())
    out["worker_1"] = {"sent": sent, "seconds": round(span, 3), "msgs_per_s": _rate(sent, span),
                       "duplicates": sum(c - 1 for c in sends.values() if c > 1),
                       "missing": len(set(numbers) - set(sends)), "states": stack.states(d1),
                       "job": {k: reports[0][k] for k in ("claimed", "sent", "stopped", "concurrency")}}

    stack.reset_fake()
    half = messages // 2
    stack.run_children([["plain", stack.fake_url, "0", str(half)],
                        ["plain", stack.fake_url, str(half), str(messages - half)]])
    sent, span = stack.arrival_span()
    out["plain_2"] = {"sent": sent, "seconds": round(span, 3), "msgs_per_s": _rate(sent, span)}

    stack.reset_fake()
    d2 = stack.dialer(f"two{n}")
    numbers = stack.queue(d2, messages, f"two{n}")
    reports = stack.run_children([["worker", str(d2), "0"], ["worker", str(d2), "1"]])
    sent, span = stack.arrival_span()
    sends = Counter(m["to"] for m in stack.fake_sends())
    out["workers_2"] = {"sent": sent, "seconds": round(span, 3), "msgs_per_s": _rate(sent, span),
                        "duplicates": sum(c - 1 for c in sends.values() if c > 1),
                        "missing": len(set(numbers) - set(sends)), "states": stack.states(d2),
                        "jobs": [{"claimed": r["claimed"], "sent": r["sent"], "concurrency": r["concurrency"]} for r in reports]}
    out["ratio_1"] = round(out["worker_1"]["msgs_per_s"] / out["plain_1"]["msgs_per_s"], 3)
    out["ratio_2"] = round(out["workers_2"]["msgs_per_s"] / out["plain_2"]["msgs_per_s"], 3)
    return out


def run(messages: int = MESSAGES, rounds: int = 3) -> dict[str, Any]:
    """Measure plain loops and dialer workers against the same fake, interleaved, `rounds` times
    (the machine is shared: the best of each is the figure, every round is reported)."""
    with Stack() as stack:
        samples = [_round(stack, messages, n) for n in range(rounds)]
    best = {k: max(r[k]["msgs_per_s"] for r in samples) for k in ("plain_1", "worker_1", "plain_2", "workers_2")}
    duplicates = sum(r[k]["duplicates"] for r in samples for k in ("worker_1", "workers_2"))
    missing = sum(r[k]["missing"] for r in samples for k in ("worker_1", "workers_2"))
    ratio_1 = best["worker_1"] / best["plain_1"]
    ratio_2 = best["workers_2"] / best["plain_2"]
    return {"messages": messages, "database": stack.database, "rounds": rounds, "best_msgs_per_s": best,
            "ratio_1": round(ratio_1, 3), "ratio_2": round(ratio_2, 3),
            "median_round_ratio_1": sorted(r["ratio_1"] for r in samples)[rounds // 2],
            "median_round_ratio_2": sorted(r["ratio_2"] for r in samples)[rounds // 2],
            "duplicates": duplicates, "missing": missing,
            "targets_met": bool(ratio_1 >= TARGET and ratio_2 >= TARGET and duplicates == 0 and missing == 0),
            "samples": samples}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(Path(sys.argv[2]), sys.argv[3], sys.argv[4:])
        return
    print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main()
