"""`python -m workers`: one RQ worker process (jobs run in-process, no fork) plus the shared clock.

Run as many as you like, on as many machines as you like: jobs are taken from
Redis, periodic tasks run once per interval across all of them, and spool claims
are atomic in the database. When Redis goes away the process waits and resumes.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
import threading
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker

from .appctx import get_app
from .periodic import start_clock

log = logging.getLogger("workers")

# Modules whose import registers jobs and periodic tasks.
TASK_MODULES = ("workers.dialer", "workers.inbound", "workers.maintenance", "workers.bulk")


def load_task_modules() -> list[str]:
    loaded = []
    for name in TASK_MODULES:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-clock", action="store_true", help="take jobs only; run no periodic tasks")
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty (tests)")
    args = parser.parse_args()
    app = get_app()
    loaded = load_task_modules()
    log.info("task modules: %s", ", ".join(loaded))
    stop = threading.Event()
    if not args.no_clock:
        start_clock(app, stop)

    def handle_term(signum, frame):  # noqa: ANN001
        stop.set()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handle_term)
    queue = app.extensions["conversa_queue"]
    delay = 0.5
    while not stop.is_set():
        try:
            worker = SimpleWorker([queue], connection=queue.connection)
            with app.app_context():
                worker.work(burst=args.burst, with_scheduler=True, logging_level="WARNING")
            break  # work() returns when asked to stop (SIGINT/SIGTERM) or, in burst mode, when done
        except (RedisConnectionError, RedisTimeoutError, ConnectionError) as exc:
            log.warning("worker lost Redis (%s); retrying in %.1fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    stop.set()


if __name__ == "__main__":
    main()
