"""Bulk uploads between preview and confirm: kept in the database, never whole in memory, bound to the session.

The preview and the confirm may reach different web machines, so the file cannot wait on one machine's
disk: it is written to `staged_uploads` / `staged_upload_chunks` in 1 MiB pieces and read back as a
seekable stream (the loader reads it twice: once to detect the encoding, once to parse). The session
remembers which tokens (and original file names) are this user's. Confirm or cancel deletes the rows;
anything older than an hour is swept whenever another upload is staged, and by the worker's clock.
"""
from __future__ import annotations

import io
import re
import secrets
import time
from datetime import timedelta
from typing import IO, Any

import sqlalchemy as sa
from flask import session

from ..extensions import db
from ..models import StagedUpload, StagedUploadChunk, utcnow

CHUNK = 1 << 20
MAX_AGE_SECONDS = 3600
_SESSION_KEY = "dialer_uploads"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


class StagedFile(io.RawIOBase):
    """A staged upload read back piece by piece: one chunk in memory at a time, seekable."""

    def __init__(self, token: str, size: int):
        super().__init__()
        self.token, self.size, self.pos = token, size, 0
        self._seq, self._chunk = -1, b""

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
            self._chunk = db.session.scalar(sa.select(StagedUploadChunk.data).where(
                StagedUploadChunk.token == self.token, StagedUploadChunk.seq == seq)) or b""
            self._seq = seq
        piece = self._chunk[offset:offset + len(buffer)]
        buffer[:len(piece)] = piece
        self.pos += len(piece)
        return len(piece)


def sweep(max_age: float = MAX_AGE_SECONDS) -> int:
    """Delete staged uploads older than max_age seconds (abandoned previews); commits; returns how many."""
    old = sa.select(StagedUpload.token).where(StagedUpload.created_at < utcnow() - timedelta(seconds=max_age))
    tokens = list(db.session.scalars(old))
    if tokens:
        _delete(tokens)
        db.session.commit()
    return len(tokens)


def _delete(tokens: list[str]) -> None:
    db.session.execute(sa.delete(StagedUploadChunk).where(StagedUploadChunk.token.in_(tokens)))
    db.session.execute(sa.delete(StagedUpload).where(StagedUpload.token.in_(tokens)))


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


def lookup(token: str, dialer_id: int) -> tuple[IO[bytes], str] | None:
    """(a stream of the file, original file name) when this session staged `token` for this dialer and it
    is still there."""
    if not _TOKEN.match(token or ""):
        return None
    entry: dict[str, Any] | None = session.get(_SESSION_KEY, {}).get(token)
    if not entry or entry.get("dialer_id") != dialer_id or time.time() - entry["at"] > MAX_AGE_SECONDS:
        return None
    size = db.session.scalar(sa.select(StagedUpload.size).where(StagedUpload.token == token,
                                                                StagedUpload.dialer_id == dialer_id))
    if size is None:
        return None
    return io.BufferedReader(StagedFile(token, size), buffer_size=256 * 1024), entry["filename"]


def discard(token: str) -> None:
    """Forget the token and delete its rows (commits)."""
    staged = dict(session.get(_SESSION_KEY, {}))
    staged.pop(token, None)
    session[_SESSION_KEY] = staged
    if _TOKEN.match(token or ""):
        _delete([token])
        db.session.commit()
