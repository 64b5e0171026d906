"""Schedules of campaigns and dialers: is this moment inside one of the entries?"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..models import ScheduleEntry
from .time import center_now

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def in_schedule(entries: Iterable[ScheduleEntry], moment: datetime | None = None) -> bool:
    """True when `moment` (center local time; now by default) falls in any entry.
    No entries at all means always open: a schedule restricts only once it is set."""
    entries = list(entries)
    if not entries:
        return True
    moment = moment or center_now()
    return any(entry.covers(moment) for entry in entries)


def days_to_mask(days: Iterable[int]) -> int:
    """[0, 1, 4] (Monday, Tuesday, Friday) → bit mask."""
    mask = 0
    for day in days:
        if not 0 <= int(day) <= 6:
            raise ValueError(f"day {day} is not 0 (Monday) to 6 (Sunday)")
        mask |= 1 << int(day)
    return mask


def mask_to_days(mask: int) -> list[int]:
    return [d for d in range(7) if mask & (1 << d)]
