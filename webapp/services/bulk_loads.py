"""F1 bulk loads as background work: one confirm claims a staged upload, a worker job loads it, and any web
process can show where it is.

The record is the `staged_uploads` row (models.LoadState): the confirm moves it from "staged" to "queued"
with one conditional UPDATE that only one request can win (`claim`), and the job moves it to "done" (with
the summary) in the same transaction as the rows it loads, or to "refused" (with the line and field).
While the load runs its rows are not committed, so its progress (rows written so far) lives in Redis,
`conversa:bulk:<token>`, with a heartbeat that a thread of the job renews every few seconds.

A worker that dies mid-load leaves nothing half-loaded: the database rolls its transaction back and the
row is still "queued". `recover_lost()` (the worker clock) finds a queued load whose job no longer waits
in the queue (nor started within the last BULK_LOAD_STALL_SECONDS) and whose heartbeat has expired, and queues it again under the next attempt number; a run
of an older attempt loads nothing. After BULK_LOAD_ATTEMPTS lost runs the load is marked "failed", with
its reason, on the dashboard. On PostgreSQL the running load also holds its row's lock, so nothing else
can change or delete the row under it (recovery skips locked rows).
"""
from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from .. import queues
from ..extensions import db
from ..i18n import translating
from ..live.events import publish, publish_now
from ..models import LoadState, StagedUpload, StagedUploadChunk, utcnow
from . import phones
from .ingest.bulk import LoadSummary, load_bulk
from .ingest.files import FileRejected

log = logging.getLogger(__name__)

JOB = "workers.bulk.load_staged_upload"
CHUNK = 1 << 20  # bytes of a staged file per staged_upload_chunks row
PROGRESS_EVERY = 0.5  # seconds between two live progress events of one load


def stall_seconds() -> float:
    """How long a load's heartbeat outlives its job: a load silent that long has lost its worker."""
    return float(current_app.config["BULK_LOAD_STALL_SECONDS"])


def progress_key(token: str) -> str:
    return f"conversa:bulk:{token}"


def job_id(token: str, attempt: int) -> str:
    return f"bulk-load-{token}-{attempt}"


def _redis() -> Any:
    return current_app.extensions["conversa_redis"]


def _topic(dialer_id: int) -> str:
    return f"dialer:{dialer_id}"


class StagedFile(io.RawIOBase):
    """A staged upload read back piece by piece: one chunk in memory at a time, seekable. A missing piece
    is an error, never a silently shorter file."""

    def __init__(self, token: str, size: int):
        super().__init__()
        self.token, self.size, self.pos = token, size, 0
        self._seq, self._chunk = -1, b""

    @classmethod
    def reader(cls, token: str, size: int) -> io.BufferedReader:
        return io.BufferedReader(cls(token, size), buffer_size=256 * 1024)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        if self.pos >= self.size:
            return 0
        seq, offset = divmod(self.pos, CHUNK)
        if seq != self._seq:
            chunk = db.session.scalar(sa.select(StagedUploadChunk.data).where(
                StagedUploadChunk.token == self.token, StagedUploadChunk.seq == seq))
            if chunk is None:
                raise OSError(f"staged upload {self.token[:8]}: piece {seq} is missing")
            self._chunk, self._seq = chunk, seq
        piece = self._chunk[offset:offset + len(buffer)]
        buffer[:len(piece)] = piece
        self.pos += len(piece)
        return len(piece)


# -- the confirm --------------------------------------------------------------------------------------
def claim(token: str, dialer_id: int, *, user_id: int | None, locale: str | None) -> str:
    """Claim a staged upload for loading (commits): "claimed" for the one call that wins; otherwise what
    the upload is now: "queued" (already being loaded), "done"/"refused"/"failed", or "gone"."""
    won = db.session.execute(
        sa.update(StagedUpload)
        .where(StagedUpload.token == token, StagedUpload.dialer_id == dialer_id,
               StagedUpload.state == LoadState.STAGED)
        .values(state=LoadState.QUEUED, user_id=user_id, locale=locale, attempts=1, claimed_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount == 1
    if won:
        publish(_topic(dialer_id), "bulk.progress", dialer_id=dialer_id)
        db.session.commit()
        return "claimed"
    db.session.rollback()
    state = db.session.scalar(sa.select(StagedUpload.state).where(StagedUpload.token == token,
                                                                  StagedUpload.dialer_id == dialer_id))
    return state or "gone"


def enqueue(token: str, attempt: int) -> bool:
    """Queue the load's job for this attempt; False when Redis is away (recovery queues it later)."""
    timeout = int(current_app.config["BULK_LOAD_TIMEOUT"])
    try:
        queues.enqueue(
            JOB, token, attempt, job_id=job_id(token, attempt), job_timeout=timeout, result_ttl=600,
            failure_ttl=24 * 3600, description=f"bulk load {token[:8]} attempt {attempt}")
        return True
    except Exception as exc:  # noqa: BLE001 - Redis down: the row stays queued, recover_lost() retries
        log.warning("bulk load %s not queued: %s", token[:8], exc)
        return False


# -- the job ------------------------------------------------------------------------------------------
class _Heartbeat:
    """The load's progress in Redis, renewed by a thread while the job lives (it dies with the process)."""

    def __init__(self, token: str, attempt: int, dialer_id: int):
        self.redis, self.key, self.dialer_id = _redis(), progress_key(token), dialer_id
        self.ttl = max(2, int(stall_seconds()))
        self.rows = 0
        self._stop = threading.Event()
        self._published = 0.0
        self._write({"attempt": attempt, "rows": 0, "started": time.time()})
        self._thread = threading.Thread(target=self._beat, name=f"bulk-heartbeat-{token[:8]}", daemon=True)
        self._thread.start()

    def _write(self, fields: dict[str, Any]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(self.key, mapping={**fields, "at": time.time()})
            pipe.expire(self.key, self.ttl)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - Redis away: the load goes on, the bar waits
            log.warning("bulk progress not saved: %s", exc)

    def _beat(self) -> None:
        while not self._stop.wait(max(0.5, self.ttl / 3)):
            self._write({"rows": self.rows})

    def progress(self, rows: int) -> None:
        self.rows = rows
        self._write({"rows": rows})
        now = time.monotonic()
        if now - self._published >= PROGRESS_EVERY:
            self._published = now
            publish_now(_topic(self.dialer_id), "bulk.progress", dialer_id=self.dialer_id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        try:
            self.redis.delete(self.key)
        except Exception:  # noqa: BLE001 - it expires by itself
            pass


def _this_run(token: str, attempt: int) -> Any:
    return sa.and_(StagedUpload.token == token, StagedUpload.state == LoadState.QUEUED,
                   StagedUpload.attempts == attempt)


def _finish(token: str, attempt: int, state: str, result: dict[str, Any]) -> int:
    """Record the outcome of this run (in the caller's transaction) and drop the file's bytes."""
    moved = db.session.execute(sa.update(StagedUpload).where(_this_run(token, attempt)).values(
        state=state, result=result, finished_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if moved:
        db.session.execute(sa.delete(StagedUploadChunk).where(StagedUploadChunk.token == token))
    return moved


def run(token: str, attempt: int) -> dict[str, Any]:
    """Load a claimed upload (the job's body): all rows and the "done" mark in one transaction, or a
    refusal recorded with its line and field; a run whose attempt is no longer current loads nothing."""
    upload = db.session.get(StagedUpload, token)
    if upload is None or upload.state != LoadState.QUEUED or upload.attempts != attempt:
        db.session.rollback()
        return {"skipped": upload.state if upload is not None else "gone"}
    dialer_id, filename, size, locale = upload.dialer_id, upload.filename, upload.size, upload.locale
    user_id = upload.user_id
    db.session.rollback()
    heartbeat = _Heartbeat(token, attempt, dialer_id)
    try:
        # This run's hold on the row, for the whole load transaction (a row lock on PostgreSQL).
        if not db.session.execute(sa.update(StagedUpload).where(_this_run(token, attempt)).values(
                attempts=attempt).execution_options(synchronize_session=False)).rowcount:
            db.session.rollback()
            return {"skipped": "superseded"}

        def done(summary: LoadSummary) -> None:
            if not _finish(token, attempt, LoadState.DONE, summary.as_dict()):
                raise RuntimeError("the load was taken over by another run")  # rolls its rows back
            publish(_topic(dialer_id), "bulk.progress", dialer_id=dialer_id)

        with translating(locale):
            try:
                summary = load_bulk(
                    StagedFile.reader(token, size), filename, region=phones.default_region(),
                    user_id=user_id, only_dialer_id=dialer_id, on_progress=heartbeat.progress, before_commit=done)
            except FileRejected as exc:  # load_bulk rolled everything back
                if _finish(token, attempt, LoadState.REFUSED, exc.as_dict()):
                    publish(_topic(dialer_id), "bulk.progress", dialer_id=dialer_id)
                db.session.commit()
                return {"refused": exc.as_dict()}
        return {"loaded": summary.loaded, "upload_id": summary.upload_id}
    except BaseException:
        db.session.rollback()
        raise
    finally:
        heartbeat.stop()


# -- a lost worker ------------------------------------------------------------------------------------
def progress(token: str) -> dict[str, float] | None:
    """The running load's {"rows", "attempt", "at", "started"} from Redis, or None (not running, or Redis away)."""
    try:
        raw = _redis().hgetall(progress_key(token))
    except Exception:  # noqa: BLE001 - the page still shows the state from the database
        return None
    if not raw:
        return None
    return {k.decode() if isinstance(k, bytes) else k: float(v) for k, v in raw.items()}


def _job_may_run(token: str, attempt: int, stall: float) -> bool:
    """Is this attempt's job still waiting for a worker, or started so recently that its heartbeat may not
    be written yet? (Past that, a started job without a heartbeat is one whose worker died.)"""
    job = queues.queue_for(JOB).fetch_job(job_id(token, attempt))
    if job is None:
        return False
    status = job.get_status(refresh=False)
    if status in ("queued", "scheduled", "deferred"):
        return True
    started = job.started_at
    if status != "started" or started is None:
        return False
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return (datetime.now(UTC) - started).total_seconds() < stall


def recover_lost() -> dict[str, int]:
    """Loads whose worker was lost: queued again under the next attempt, or failed after the last one."""
    stall = stall_seconds()
    most = int(current_app.config["BULK_LOAD_ATTEMPTS"])
    due = db.session.execute(sa.select(StagedUpload.token, StagedUpload.attempts, StagedUpload.dialer_id).where(
        StagedUpload.state == LoadState.QUEUED,
        StagedUpload.claimed_at < utcnow() - timedelta(seconds=stall))
        .with_for_update(skip_locked=True)).all()  # a row locked on PostgreSQL is a load that runs
    out = {"requeued": 0, "failed": 0}
    requeue: list[tuple[str, int]] = []
    for token, attempt, dialer_id in due:
        if progress(token) is not None or _job_may_run(token, attempt, stall):
            continue
        last = attempt >= most
        values: dict[str, Any] = {"result": {"lost": attempt}}
        if last:
            values.update(state=LoadState.FAILED, finished_at=utcnow())
        else:
            values.update(attempts=attempt + 1, claimed_at=utcnow())
        if db.session.execute(sa.update(StagedUpload).where(_this_run(token, attempt)).values(**values)
                              .execution_options(synchronize_session=False)).rowcount:
            if last:
                db.session.execute(sa.delete(StagedUploadChunk).where(StagedUploadChunk.token == token))
            else:
                requeue.append((token, attempt + 1))
            out["failed" if last else "requeued"] += 1
            publish(_topic(dialer_id), "bulk.progress", dialer_id=dialer_id)
            log.warning("bulk load %s lost its worker (attempt %s): %s", token[:8], attempt,
                        "failed" if last else "queued again")
    db.session.commit()
    for token, attempt in requeue:
        enqueue(token, attempt)
    return out


# -- the dashboard ------------------------------------------------------------------------------------
RECENT = 5


@dataclass
class LoadView:
    """One load as the dashboard shows it."""

    upload: StagedUpload
    rows: int  # written so far (running), or loaded (done)
    running: bool  # a live worker is on it now

    @property
    def total(self) -> int:
        return int(self.upload.rows_total or 0)

    @property
    def percent(self) -> int:
        return min(100, int(self.rows * 100 / self.total)) if self.total else 0

    @property
    def lost(self) -> int:
        """Runs lost so far (their worker died), as recovery recorded them."""
        return int((self.upload.result or {}).get("lost", 0))


def loads_for(dialer_id: int, limit: int = RECENT) -> list[LoadView]:
    """The dialer's bulk loads past the preview, newest first: waiting, running and recently finished."""
    uploads = db.session.scalars(sa.select(StagedUpload).where(
        StagedUpload.dialer_id == dialer_id, StagedUpload.state != LoadState.STAGED)
        .order_by(StagedUpload.claimed_at.desc()).limit(limit)).all()
    views = []
    for upload in uploads:
        if upload.state == LoadState.QUEUED:
            live = progress(upload.token)
            running = live is not None and int(live.get("attempt", 0)) == upload.attempts
            views.append(LoadView(upload, int(live["rows"]) if running and live else 0, running))
        else:
            views.append(LoadView(upload, int((upload.result or {}).get("loaded", 0)), False))
    return views


def dismiss(token: str, dialer_id: int) -> bool:
    """Remove a finished load's record from the dashboard (commits); a load still running stays."""
    gone = db.session.execute(sa.delete(StagedUpload).where(
        StagedUpload.token == token, StagedUpload.dialer_id == dialer_id,
        StagedUpload.state.in_(LoadState.FINISHED)).execution_options(synchronize_session=False)).rowcount
    if gone:
        db.session.execute(sa.delete(StagedUploadChunk).where(StagedUploadChunk.token == token))
        publish(_topic(dialer_id), "bulk.progress", dialer_id=dialer_id)
    db.session.commit()
    return bool(gone)
