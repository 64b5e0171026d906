"""Shared column helpers. Times are stored as naive UTC on every backend."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def created_at_column(**kw: Any) -> Mapped[datetime]:
    return mapped_column(default=utcnow, **kw)
