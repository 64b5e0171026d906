"""The clock, in one place so tests can control it."""
from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def now() -> datetime:
    """Naive UTC, as stored."""
    return datetime.now(UTC).replace(tzinfo=None)


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def center_zone() -> ZoneInfo:
    """The contact center's time zone (CENTER_TIMEZONE); read once per name (a list converts dozens of times)."""
    return _zone(current_app.config["CENTER_TIMEZONE"])


def center_now() -> datetime:
    """Naive local time of the contact center, for schedules."""
    return datetime.now(UTC).astimezone(center_zone()).replace(tzinfo=None)


def to_center(moment: datetime) -> datetime:
    """A stored naive-UTC time as the contact center's naive local time."""
    return moment.replace(tzinfo=UTC).astimezone(center_zone()).replace(tzinfo=None)


def center_midnight(day: date) -> datetime:
    """The start of one of the centre's local days, as naive UTC (a date filter's bound)."""
    return datetime(day.year, day.month, day.day, tzinfo=center_zone()).astimezone(UTC).replace(tzinfo=None)


def center_day_start(moment: datetime) -> datetime:
    """When the centre's local day containing `moment` (naive UTC) began, as naive UTC: where "today" starts."""
    return center_midnight(to_center(moment).date())


def epoch(moment: datetime | None) -> float:
    """A stored naive-UTC time as epoch seconds (to a tenth), for the ticking `data-since` timers; None is 0."""
    return round(moment.replace(tzinfo=UTC).timestamp(), 1) if moment else 0.0
