"""Bulk uploads between preview and confirm: kept in the database, never whole in memory, bound to the session.

The preview and the confirm may reach different web machines, so the file cannot wait on one machine's
disk: it is written to `staged_uploads` / `staged_upload_chunks` in 1 MiB pieces and read back as a
seekable stream (the loader reads it twice: once to detect the encoding, once to parse). The session
remembers which tokens (and original file names) are this user's. Confirm hands the upload to a worker
(services/bulk_loads.py), which deletes the pieces once loaded; cancel deletes an upload not yet claimed.
A preview left unconfirmed, and a load's record, are swept an hour later (whenever another upload is
staged, and by the worker's clock); a load still queued or running is never swept.
"""
from __future__ import annotations

import re
import secrets
import time
from datetime import timedelta
from typing import IO, Any

import sqlalchemy as sa
from flask import session

from ..extensions import db
from ..models import LoadState, StagedUpload, StagedUploadChunk, utcnow
from ..services import bulk_loads
from ..services.bulk_loads import CHUNK, StagedFile
from ..services.ingest.bulk import BulkPreview, preview_bulk
from ..services.ingest.files import FileRejected

__all__ = ["CHUNK", "StagedFile", "claim", "discard", "lookup", "preview", "stage", "sweep"]
MAX_AGE_SECONDS = 3600
_SESSION_KEY = "dialer_uploads"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def sweep(max_age: float = MAX_AGE_SECONDS) -> int:
    """Delete previews and finished loads older than max_age seconds; commits; returns how many."""
    cutoff = utcnow() - timedelta(seconds=max_age)
    old = sa.or_(sa.and_(StagedUpload.state == LoadState.STAGED, StagedUpload.created_at < cutoff),
                 sa.and_(StagedUpload.state.in_(LoadState.FINISHED), StagedUpload.finished_at < cutoff))
    removed = _delete(old)
    if removed:
        db.session.commit()
    return removed


def _delete(which: Any) -> int:
    """Delete the uploads matching `which`, then the pieces of those gone (never of one a worker took)."""
    removed = db.session.execute(sa.delete(StagedUpload).where(which)
                                 .execution_options(synchronize_session=False)).rowcount
    if removed:
        db.session.execute(sa.delete(StagedUploadChunk).where(
            StagedUploadChunk.token.not_in(sa.select(StagedUpload.token))))
    return removed


def _read_full(stream: IO[bytes], size: int) -> bytes:
    """Exactly `size` bytes unless the stream ends first (a short read is not the end)."""
    parts, missing = [], size
    while missing and (block := stream.read(missing)):
        parts.append(block)
        missing -= len(block)
    return b"".join(parts)


def stage(stream: IO[bytes], filename: str, dialer_id: int) -> str:
    """Copy the upload into the database (committed: another machine may confirm it); returns its token."""
    sweep()
    token = secrets.token_urlsafe(24)
    db.session.add(StagedUpload(token=token, dialer_id=dialer_id, filename=filename[:255], size=0))
    db.session.flush()
    size = seq = 0
    while block := _read_full(stream, CHUNK):
        db.session.execute(sa.insert(StagedUploadChunk).values(token=token, seq=seq, data=block))
        seq, size = seq + 1, size + len(block)
    db.session.execute(sa.update(StagedUpload).where(StagedUpload.token == token).values(size=size))
    db.session.commit()
    staged = dict(session.get(_SESSION_KEY, {}))
    staged[token] = {"filename": filename, "dialer_id": dialer_id, "at": int(time.time())}
    # Only the few most recent previews stay claimable; a session cookie must stay small.
    session[_SESSION_KEY] = dict(sorted(staged.items(), key=lambda kv: kv[1]["at"])[-5:])
    return token


def _entry(token: str, dialer_id: int) -> dict[str, Any] | None:
    """This session's record of `token` for this dialer, while still fresh."""
    if not _TOKEN.match(token or ""):
        return None
    entry: dict[str, Any] | None = session.get(_SESSION_KEY, {}).get(token)
    if not entry or entry.get("dialer_id") != dialer_id or time.time() - entry["at"] > MAX_AGE_SECONDS:
        return None
    return entry


def lookup(token: str, dialer_id: int) -> tuple[IO[bytes], str] | None:
    """(a stream of the file, original file name) when this session staged `token` for this dialer and it
    is still there, not yet claimed."""
    entry = _entry(token, dialer_id)
    if entry is None:
        return None
    size = db.session.scalar(sa.select(StagedUpload.size).where(
        StagedUpload.token == token, StagedUpload.dialer_id == dialer_id, StagedUpload.state == LoadState.STAGED))
    if size is None:
        return None
    return StagedFile.reader(token, size), entry["filename"]


def counted(token: str, rows: int) -> None:
    """The preview's row count: the progress bar's 100% (commits)."""
    db.session.execute(sa.update(StagedUpload).where(StagedUpload.token == token).values(rows_total=rows)
                       .execution_options(synchronize_session=False))
    db.session.commit()


def preview(stream: IO[bytes], filename: str, dialer_id: int, region: str) -> tuple[str, str, BulkPreview]:
    """Step 1 of a bulk upload: keep the file and check it whole as the load would, writing nothing to the
    spool. Returns (token, original file name, preview); a refused file is discarded (FileRejected)."""
    token = stage(stream, filename, dialer_id)
    staged, filename = lookup(token, dialer_id)
    try:
        with staged:
            result = preview_bulk(staged, filename, region=region, only_dialer_id=dialer_id)
    except FileRejected:
        db.session.rollback()
        discard(token, dialer_id)
        raise
    db.session.rollback()  # a preview writes nothing to the spool
    counted(token, result.total)
    return token, filename, result


def _forget(token: str) -> None:
    staged = dict(session.get(_SESSION_KEY, {}))
    staged.pop(token, None)
    session[_SESSION_KEY] = staged


def claim(token: str, dialer_id: int, user_id: int, locale: str | None) -> str:
    """Hand this session's upload to a worker: bulk_loads.claim()'s answer ("claimed" for the one
    confirm that wins), or "gone" when this session has no such upload."""
    if _entry(token, dialer_id) is None:
        return "gone"
    _forget(token)  # spent, whoever wins
    return bulk_loads.claim(token, dialer_id, user_id=user_id, locale=locale)


def discard(token: str, dialer_id: int) -> bool:
    """Forget this session's upload and delete it, unless a confirm has claimed it already (commits)."""
    mine = _entry(token, dialer_id) is not None
    _forget(token)
    if not mine:
        return False
    removed = _delete(sa.and_(StagedUpload.token == token, StagedUpload.dialer_id == dialer_id,
                              StagedUpload.state == LoadState.STAGED))
    db.session.commit()
    return bool(removed)
