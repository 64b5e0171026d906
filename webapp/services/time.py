"""The clock, in one place so tests can control it."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def now() -> datetime:
    """Naive UTC, as stored."""
    return datetime.now(UTC).replace(tzinfo=None)


def center_now() -> datetime:
    """Naive local time of the contact center, for schedules."""
    tz = ZoneInfo(current_app.config["CENTER_TIMEZONE"])
    return datetime.now(UTC).astimezone(tz).replace(tzinfo=None)


def to_center(moment: datetime) -> datetime:
    tz = ZoneInfo(current_app.config["CENTER_TIMEZONE"])
    return moment.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
