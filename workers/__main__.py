"""`python -m workers`: one RQ worker process (jobs run in-process, no fork) plus the shared clock.

`--queues routing,inbound` (or WORKER_QUEUES) picks the queues it serves (webapp/queues.py); by default all
of them, routing first and housekeeping last.

Run as many as you like, on as many machines as you like: jobs are taken from
Redis, periodic tasks run once per interval across all of them, and spool claims
are atomic in the database. When Redis goes away the process waits and resumes.

RQ has a Redis client of its own (`rq_connection`): its dequeue blocks on the queue
for minutes, so its reads may take that long, while the app's shared client (jobs,
the clock) keeps the short read timeout that makes a lost Redis show at once.
"""
from __future__ import annotations

import argparse
import ctypes
import importlib
import logging
import os
import signal
import threading

import redis
from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker

from webapp import queues

from .appctx import get_app
from .periodic import start_clock

PR_SET_PDEATHSIG = 1  # prctl(2)
log = logging.getLogger("workers")

# Modules whose import registers jobs and periodic tasks.
TASK_MODULES = ("workers.dialer", "workers.inbound", "workers.maintenance", "workers.bulk", "workers.whatsapp",
                "workers.reports")


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


def rq_connection(app: Flask, worker_ttl: int) -> redis.Redis:
    """RQ's client: reads outlast its blocking dequeue. On the app's client (5 s reads), an idle worker's
    BLPOP timed out against a healthy Redis and RQ backed off for up to a minute; RQ raises the timeout
    of a client it is given only for connections made afterwards, and leaves the older ones short."""
    dequeue = max(1, worker_ttl - 15)  # RQ's Worker.dequeue_timeout for this TTL
    return redis.Redis.from_url(app.config["REDIS_URL"], socket_timeout=dequeue + 10, socket_connect_timeout=1,
                                health_check_interval=30)


def _die_with_parent() -> None:
    """In a child the worker forks (RQ's scheduler): end with the worker. A worker killed with -9 must not
    leave its scheduler running, holding open the database connection it inherited (and with it a
    transaction's locks) and scheduling jobs for a worker that is gone. Linux's PR_SET_PDEATHSIG."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the orphan ends at its next Redis or job check
        return
    if os.getppid() != parent:  # the worker died before the line above
        os._exit(0)


def main() -> None:
    os.register_at_fork(after_in_child=_die_with_parent)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-clock", action="store_true", help="take jobs only; run no periodic tasks")
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty (tests)")
    parser.add_argument("--queues", help="the queues served, comma-separated: routing, inbound, dialer, "
                        "housekeeping, or all (default: WORKER_QUEUES, else all); taken in that order")
    args = parser.parse_args()
    app = get_app()
    try:
        kinds = queues.parse(args.queues or app.config.get("WORKER_QUEUES"))
    except ValueError as exc:
        parser.error(str(exc))
    names = [queues.queue_name(app.config["RQ_QUEUE"], kind) for kind in kinds]
    loaded = load_task_modules()
    log.info("task modules: %s; queues: %s", ", ".join(loaded), ", ".join(names))
    stop = threading.Event()
    if not args.no_clock:
        start_clock(app, stop)

    def handle_stop(signum, frame):  # noqa: ANN001
        stop.set()
        raise SystemExit(0)

    def own_signals() -> None:
        # RQ installs handlers of its own while it works; between two attempts they would raise into
        # the wait below, so ours stop the process there.
        signal.signal(signal.SIGTERM, handle_stop)
        signal.signal(signal.SIGINT, handle_stop)

    own_signals()
    worker_ttl = app.config["WORKER_TTL"]
    connection = rq_connection(app, worker_ttl)
    delay = 0.5
    while not stop.is_set():
        try:
            worker = SimpleWorker(names, connection=connection, worker_ttl=worker_ttl)
            with app.app_context():
                worker.work(burst=args.burst, with_scheduler=True, logging_level="WARNING")
            break  # work() returns when asked to stop (SIGINT/SIGTERM) or, in burst mode, when done
        except (RedisConnectionError, RedisTimeoutError, ConnectionError) as exc:
            own_signals()
            log.warning("worker lost Redis (%s); retrying in %.1fs", exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
    stop.set()


if __name__ == "__main__":
    main()
