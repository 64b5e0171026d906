"""A real worker process left idle past every Redis timeout it has still picks a job up at once, and its
log shows no Redis connection error (issue 10, point 3: an idle worker used to log "could not connect to
Redis instance: Timeout reading from socket" against a healthy Redis and back off for up to a minute)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import process_env, redis_errors, start_worker, stop_worker, wait_until

# RQ blocks on the queue for WORKER_TTL - 15 s, then heartbeats and blocks again: 3 s a round here.
WORKER_TTL = 18
# Past the web client's 5 s read timeout twice over (it retries once), and past the 13 s read timeout
# RQ gives its own connection for a 3 s dequeue.
IDLE_SECONDS = 16
DEQUEUE_ROUNDS = 3


def heartbeats(redis: Any) -> set[tuple[str, str]]:
    """(worker, last heartbeat) of every registered RQ worker, read without building an RQ Worker (which
    would change this client's socket timeout)."""
    beats = set()
    for key in redis.smembers("rq:workers"):
        beat = redis.hget(key, "last_heartbeat")
        if beat:
            beats.add((key.decode(), beat.decode()))
    return beats


def test_rq_reads_outlast_its_dequeue_and_jobs_keep_the_short_client(app: Any) -> None:
    """The worker's RQ client waits longer on a read than RQ blocks on the queue; the app's client, which
    jobs and the clock use, keeps its short read timeout (RQ raises the timeout of the client it is given)."""
    from rq import SimpleWorker

    from config import TestConfig
    from webapp import create_app
    from workers.__main__ import rq_connection

    class Cfg(TestConfig):
        SQLALCHEMY_DATABASE_URI = app.config["SQLALCHEMY_DATABASE_URI"]
        REDIS_URL = app.config["REDIS_URL"]

    fresh = create_app(Cfg)  # the session's app client may have been handed to an in-process RQ worker
    for ttl in (WORKER_TTL, fresh.config["WORKER_TTL"]):
        worker = SimpleWorker([fresh.config["RQ_QUEUE"]], connection=rq_connection(fresh, ttl), worker_ttl=ttl)
        assert worker.connection.connection_pool.connection_kwargs["socket_timeout"] > worker.dequeue_timeout
        assert worker.connection.ping()
    assert fresh.extensions["conversa_redis"].connection_pool.connection_kwargs["socket_timeout"] == 5


@pytest.mark.slow
def test_an_idle_worker_picks_up_a_job_at_once(app: Any, make: Any, db: Any, tmp_path: Path,
                                               record_property: Any) -> None:
    from rq.job import Job

    from webapp.models import Message

    provider = make.provider("twilio", sender="+59829001500",
                             credentials={"account_sid": "AC" + "3" * 32, "auth_token": "idle-token"})
    group = make.group()
    make.campaign(group, provider, did="+59829001500", strategy="linear_nopause")
    redis = app.extensions["conversa_redis"]
    log_path = tmp_path / "worker.log"
    env = process_env(app) | {"WORKER_TTL": str(WORKER_TTL), "LOG_LEVEL": "INFO"}
    worker = start_worker(env, log_path)
    try:
        wait_until(lambda: heartbeats(redis), 60, "the worker to register in Redis")
        idle_since = time.monotonic()
        seen: set[tuple[str, str]] = set()

        def idle_long_enough() -> bool:
            assert worker.poll() is None, log_path.read_text()
            seen.update(heartbeats(redis))
            # Several dequeue rounds done (each ends in a heartbeat), and every read timeout passed.
            return len(seen) > DEQUEUE_ROUNDS and time.monotonic() - idle_since > IDLE_SECONDS

        wait_until(idle_long_enough, 120, "the worker to stay idle past its timeouts", step=0.2)
        item = {"provider_message_id": "SM" + "f" * 32, "from_number": "+59899123999", "to": "+59829001500",
                "body": "Hola, ¿hay alguien?"}
        # As the webhook does, except that the job's record stays so its start time can be read.
        inbound = app.extensions["conversa_queues"]["inbound"]
        job = inbound.enqueue("workers.inbound.process_inbound", provider.id, [item], result_ttl=60)

        def stored() -> bool:
            db.session.rollback()
            return db.session.query(Message).filter_by(body=item["body"]).count() == 1

        # A generous bound for a slow machine, not a timing assertion.
        wait_until(stored, 60, "the idle worker to store the inbound message", step=0.02)
        job = Job.fetch(job.id, connection=redis)
        pickup = (job.started_at - job.enqueued_at).total_seconds()
        record_property("pickup", {"idle_seconds": round(time.monotonic() - idle_since, 1),
                                   "heartbeats": len(seen) - 1, "pickup_ms": round(pickup * 1000, 1)})
    finally:
        stop_worker(worker)
    log = log_path.read_text()
    assert worker.returncode == 0, log
    assert not redis_errors(log), log


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:  # gone meanwhile
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_a_worker_killed_hard_takes_its_scheduler_with_it(app: Any, db: Any, tmp_path: Path) -> None:
    """RQ's scheduler runs in a process the worker forks. A kill -9 of the worker used to leave it running
    for good, holding the database connection it inherited (on PostgreSQL a killed load's transaction
    then kept its locks, and the next TRUNCATE waited forever)."""
    from tests.helpers import kill_hard

    log_path = tmp_path / "worker.log"
    worker = start_worker(process_env(app), log_path)
    try:
        wait_until(lambda: children(worker.pid), 60, "the worker to fork its scheduler")
        scheduler = children(worker.pid)
        kill_hard(worker)
        wait_until(lambda: not any(alive(pid) for pid in scheduler), 30, "the scheduler to end with its worker")
    finally:
        stop_worker(worker)
        for pid in children(worker.pid):
            os.kill(pid, 9)
