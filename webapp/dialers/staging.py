"""Bulk uploads between preview and confirm: kept on disk, never in memory, bound to the session.

The upload is streamed to `<instance>/dialer-uploads/<token>.csv`; the session remembers which
tokens (and original file names) are this user's. Confirm or cancel deletes the file; anything
older than an hour is swept whenever another upload is staged.
"""
from __future__ import annotations

import re
import secrets
import shutil
import time
from pathlib import Path
from typing import IO, Any

from flask import current_app, session

MAX_AGE_SECONDS = 3600
_SESSION_KEY = "dialer_uploads"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def _folder() -> Path:
    # Several web machines: point UPLOAD_STAGING_DIR at storage they share, since the preview and the
    # confirm may land on different machines.
    configured = current_app.config.get("UPLOAD_STAGING_DIR")
    folder = Path(configured) if configured else Path(current_app.instance_path) / "dialer-uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _path(token: str) -> Path:
    return _folder() / f"{token}.csv"


def sweep(max_age: float = MAX_AGE_SECONDS) -> int:
    """Delete staged files older than max_age seconds (abandoned previews); returns how many."""
    cutoff = time.time() - max_age
    removed = 0
    for path in _folder().glob("*.csv"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def stage(stream: IO[bytes], filename: str, dialer_id: int) -> str:
    """Copy the upload to a new staged file; returns its token."""
    sweep()
    token = secrets.token_urlsafe(24)
    with _path(token).open("wb") as out:
        shutil.copyfileobj(stream, out, 64 * 1024)
    staged = dict(session.get(_SESSION_KEY, {}))
    staged[token] = {"filename": filename, "dialer_id": dialer_id, "at": int(time.time())}
    # Only the few most recent previews stay claimable; a session cookie must stay small.
    session[_SESSION_KEY] = dict(sorted(staged.items(), key=lambda kv: kv[1]["at"])[-5:])
    return token


def lookup(token: str, dialer_id: int) -> tuple[Path, str] | None:
    """(path, original file name) when this session staged `token` for this dialer and it still exists."""
    if not _TOKEN.match(token or ""):
        return None
    entry: dict[str, Any] | None = session.get(_SESSION_KEY, {}).get(token)
    if not entry or entry.get("dialer_id") != dialer_id or time.time() - entry["at"] > MAX_AGE_SECONDS:
        return None
    path = _path(token)
    return (path, entry["filename"]) if path.exists() else None


def discard(token: str) -> None:
    """Forget the token and delete its file."""
    staged = dict(session.get(_SESSION_KEY, {}))
    staged.pop(token, None)
    session[_SESSION_KEY] = staged
    if _TOKEN.match(token or ""):
        _path(token).unlink(missing_ok=True)
