"""Helpers for the dialer's process tests: real `python -m workers` processes, waiting on the database."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent

# Short leases so a killed worker's rows come back within seconds; one request per send attempt.
FAST_ENGINE = {"DIALER_LEASE_SECONDS": "2", "PROVIDER_TIMEOUT": "1", "DIALER_SEND_ATTEMPTS": "1",
               "DIALER_WORKERS_PER_DIALER": "2", "LOG_LEVEL": "WARNING"}


# What a process logs when it lost Redis: RQ, the worker's loop, the clock, redis-py's own errors.
REDIS_ERRORS = re.compile(r"could not connect to Redis|Timeout reading from socket|Redis connection timeout"
                          r"|lost Redis|pubsub thread exiting|Connection refused|Error \d+ connecting"
                          r"|clock: |ConnectionError", re.IGNORECASE)


def redis_errors(log: str) -> list[str]:
    """The lines of a process log that say Redis was lost."""
    return [line for line in log.splitlines() if REDIS_ERRORS.search(line)]


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """A real worker process (RQ SimpleWorker + clock) with its output in `log_path`."""
    with log_path.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def kill_hard(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    """Poll until true; a generous bound so a stuck system fails instead of hanging."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def spool_states(app: Any, dialer_id: int) -> Counter[int]:
    from webapp.extensions import db
    from webapp.models import SpoolMessage

    with app.app_context():
        t = SpoolMessage.__table__
        rows = db.session.execute(sa.select(t.c.state, sa.func.count()).where(t.c.dialer_id == dialer_id)
                                  .group_by(t.c.state)).all()
        db.session.remove()
    return Counter({state: n for state, n in rows})


def queue_bulk(app: Any, dialer_id: int, n: int, prefix: str = "+5989930") -> list[str]:
    from webapp.extensions import db
    from webapp.models import SpoolMessage

    numbers = [f"{prefix}{i:04d}" for i in range(n)]
    with app.app_context():
        db.session.execute(sa.insert(SpoolMessage), [
            {"dialer_id": dialer_id, "destination": num, "body": f"Mensaje {i}", "priority": 0, "state": 1,
             "attempts": 0, "needs_review": False} for i, num in enumerate(numbers)])
        db.session.commit()
        db.session.remove()
    return numbers


def sends_per_destination(fake: Any) -> Counter[str]:
    return Counter(m["to"] for m in fake.sent())
