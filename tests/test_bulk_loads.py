"""F1 bulk loads in the background: one run per attempt, recovery of a load whose worker was lost, and a
real worker killed mid-load (nothing half-loaded; the next worker loads it exactly once)."""
from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers import kill_hard, login, process_env, start_worker, stop_worker, wait_until
from webapp.models import LoadState, SpoolMessage, SpoolUpload, StagedUpload, StagedUploadChunk, utcnow
from webapp.services import bulk_loads


def rows_file(dialer: str, rows: int) -> bytes:
    return "".join(f"{dialer};09{n % 10_000_000:07d};Hola {n};1;\n" for n in range(1, rows + 1)).encode()


def staged(db: Any, dialer_id: int, content: bytes, *, attempts: int = 1, age: float = 0,
           rows_total: int | None = None) -> str:
    """A staged upload already claimed by a confirm (state queued), as the confirm leaves it."""
    token = secrets.token_urlsafe(24)
    db.session.add(StagedUpload(token=token, dialer_id=dialer_id, filename="DISCTEST.csv", size=len(content),
                                state=LoadState.QUEUED, attempts=attempts, rows_total=rows_total, locale="es",
                                claimed_at=utcnow() - timedelta(seconds=age)))
    db.session.flush()
    for seq, start in enumerate(range(0, len(content), bulk_loads.CHUNK)):
        db.session.add(StagedUploadChunk(token=token, seq=seq, data=content[start:start + bulk_loads.CHUNK]))
    db.session.commit()
    return token


def spool_count(db: Any) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(SpoolMessage))


def upload_row(db: Any, token: str) -> StagedUpload:
    db.session.expire_all()
    return db.session.get(StagedUpload, token)


@pytest.fixture
def dialer(make: Any) -> Any:
    group = make.group("norte")
    make.user("sup", role="supervisor", groups=[group])
    return make.dialer(group, name="campsms")


def test_a_run_of_an_older_attempt_loads_nothing(db: Any, dialer: Any) -> None:
    """A run queued before its load was given to a newer attempt is a no-op; the current one loads."""
    token = staged(db, dialer.id, rows_file("campsms", 30), attempts=2)
    assert bulk_loads.run(token, 1) == {"skipped": LoadState.QUEUED}
    assert spool_count(db) == 0
    report = bulk_loads.run(token, 2)
    assert report["loaded"] == 30 and spool_count(db) == 30
    assert bulk_loads.run(token, 2) == {"skipped": LoadState.DONE}  # run again: still 30
    assert spool_count(db) == 30
    row = upload_row(db, token)
    assert (row.state, row.result["loaded"]) == (LoadState.DONE, 30)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StagedUploadChunk)) == 0


def test_recovery_requeues_a_lost_load_and_fails_it_after_the_last_attempt(app: Any, db: Any, dialer: Any,
                                                                           client: Any) -> None:
    """A queued load with no job waiting and no heartbeat lost its worker: queued again under the next
    attempt; after BULK_LOAD_ATTEMPTS it is failed, its bytes dropped, and the dashboard says so."""
    queue = app.extensions["conversa_queues"]["housekeeping"]
    token = staged(db, dialer.id, rows_file("campsms", 5), age=600, rows_total=5)
    waiting = staged(db, dialer.id, rows_file("campsms", 5), age=600)
    bulk_loads.enqueue(waiting, 1)  # its job still waits for a worker: left alone
    fresh = staged(db, dialer.id, rows_file("campsms", 5), age=0)  # just claimed: left alone
    assert bulk_loads.recover_lost() == {"requeued": 1, "failed": 0}
    row = upload_row(db, token)
    assert (row.state, row.attempts, row.result) == (LoadState.QUEUED, 2, {"lost": 1})
    assert queue.fetch_job(bulk_loads.job_id(token, 2)) is not None
    assert (upload_row(db, waiting).attempts, upload_row(db, fresh).attempts) == (1, 1)

    login(client, "sup")
    block = client.get(f"/dialers/{dialer.id}/loads").data.decode()
    assert "se detuvo durante la carga; no se cargó nada. Vuelve a empezar (intento 2 de 3)" in block

    most = app.config["BULK_LOAD_ATTEMPTS"]
    for _attempt in range(2, most + 1):  # each new run's worker is lost too
        queue.empty()
        db.session.execute(sa.update(StagedUpload).where(StagedUpload.token == token)
                           .values(claimed_at=utcnow() - timedelta(seconds=600)))
        db.session.commit()
        bulk_loads.recover_lost()
    row = upload_row(db, token)
    assert (row.state, row.attempts, row.result) == (LoadState.FAILED, most, {"lost": most})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StagedUploadChunk).where(
        StagedUploadChunk.token == token)) == 0
    assert spool_count(db) == 0
    block = " ".join(client.get(f"/dialers/{dialer.id}/loads").data.decode().split())
    assert f"La carga falló: su proceso se perdió {most} veces. No se cargó nada" in block


def test_a_load_with_a_live_heartbeat_is_not_recovered(app: Any, db: Any, dialer: Any) -> None:
    """A run that is alive (its heartbeat in Redis) keeps its load, however long it has been going."""
    token = staged(db, dialer.id, rows_file("campsms", 5), age=600)
    app.extensions["conversa_redis"].hset(bulk_loads.progress_key(token), mapping={"attempt": 1, "rows": 0})
    assert bulk_loads.recover_lost() == {"requeued": 0, "failed": 0}
    assert upload_row(db, token).attempts == 1


@pytest.mark.per_database
@pytest.mark.slow
def test_a_worker_killed_mid_load_leaves_nothing_and_the_load_is_recovered(app: Any, db: Any, dialer: Any,
                                                                          client: Any, tmp_path: Path) -> None:
    """SIGKILL a real worker in the middle of a 300,000-row load: nothing of it is in the spool, the load is
    still queued and shows as interrupted; recovery queues it again and a new worker loads it exactly once."""
    total = 300_000
    token = staged(db, dialer.id, rows_file("campsms", total), rows_total=total)
    bulk_loads.enqueue(token, 1)
    env = {**process_env(app), "BULK_LOAD_STALL_SECONDS": "5", "LOG_LEVEL": "WARNING"}
    worker = start_worker({**env}, tmp_path / "worker1.log")
    try:
        def rows_so_far() -> int:
            live = bulk_loads.progress(token)
            return int(live["rows"]) if live else 0

        wait_until(lambda: rows_so_far() >= 10_000, 120, "the load to get going")
        assert rows_so_far() < total
        kill_hard(worker)
    finally:
        stop_worker(worker)
    assert spool_count(db) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpoolUpload)) == 0
    row = upload_row(db, token)
    assert (row.state, row.attempts) == (LoadState.QUEUED, 1)

    app.config["BULK_LOAD_STALL_SECONDS"] = 5
    try:
        wait_until(lambda: bulk_loads.recover_lost()["requeued"] == 1, 60, "recovery to queue the load again")
    finally:
        app.config["BULK_LOAD_STALL_SECONDS"] = 30
    login(client, "sup")
    assert "intento 2 de 3" in client.get(f"/dialers/{dialer.id}/loads").data.decode()

    def finished() -> bool:
        return upload_row(db, token).state != LoadState.QUEUED  # reading while the load writes

    worker = start_worker(env, tmp_path / "worker2.log")
    try:
        wait_until(finished, 180, "the second run to finish")
    finally:
        stop_worker(worker)
    row = upload_row(db, token)
    assert (row.state, row.attempts, row.result["loaded"]) == (LoadState.DONE, 2, total)
    assert spool_count(db) == total
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpoolUpload)) == 1
    block = " ".join(client.get(f"/dialers/{dialer.id}/loads").data.decode().split())
    assert re.search(rf'data-state="done" data-rows="{total}" data-total="{total}"', block)
    assert f"Cargados {total} mensajes" in block


def test_a_job_just_started_is_not_taken_for_lost_before_its_first_heartbeat(app: Any, db: Any, dialer: Any) -> None:
    """Between a worker taking the job and the job's first heartbeat the load has no heartbeat; recovery
    leaves it alone until BULK_LOAD_STALL_SECONDS after the job started, then takes its worker for dead."""
    from rq.job import JobStatus

    token = staged(db, dialer.id, rows_file("campsms", 5), age=600)
    bulk_loads.enqueue(token, 1)
    job = app.extensions["conversa_queues"]["housekeeping"].fetch_job(bulk_loads.job_id(token, 1))
    job.set_status(JobStatus.STARTED)  # as the worker marks it when it takes the job
    job.started_at = datetime.now(UTC)
    job.save()
    assert bulk_loads.recover_lost() == {"requeued": 0, "failed": 0}
    job.started_at = datetime.now(UTC) - timedelta(seconds=600)  # started long ago, never a heartbeat
    job.save()
    assert bulk_loads.recover_lost() == {"requeued": 1, "failed": 0}
    assert upload_row(db, token).attempts == 2
