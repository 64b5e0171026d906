"""Issue 15: the periods a report is grouped by, in the centre's time zone (CENTER_TIMEZONE).

A report covers whole centre days `first`..`last`; its periods are the centre's hours, days, weeks (from
Monday) or months within them, each a [start, end) range of naive UTC that the rollup buckets fall in by
their start. A DST day has 23 or 25 hours; the hour repeated when clocks go back is two periods.
`period_table` hands the periods to SQL as a VALUES list, so the database sums the buckets per period.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import format_date, format_datetime
from flask_babel import lazy_gettext as _l

from . import time as clock
from .report_rollups import BUCKET

PERIODS = ("hour", "day", "week", "month")
MAX_DAYS = 400
MAX_HOUR_DAYS = 31


class ReportError(ValueError):
    """A range or grouping that cannot be shown; the message says which."""


@dataclass(frozen=True)
class Span:
    """Days `first`..`last` of the centre, grouped by `period`."""

    first: date
    last: date
    period: str = "day"

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in naive UTC: the centre's midnight of `first` to the one after `last`."""
        return local_midnight(self.first), local_midnight(self.last + timedelta(days=1))


def local_midnight(day: date) -> datetime:
    """The centre's midnight starting `day`, as naive UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=clock.center_zone()).astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True, order=True)
class Period:
    """A row's period: its local start and UTC offset (two rows for the hour repeated at a DST change)."""

    start: datetime
    offset: int = 0
    kind: str = "day"
    repeated: bool = False

    @property
    def label(self) -> str:
        if self.kind == "hour":
            text = format_datetime(self.start, "dd/MM HH:mm", rebase=False)
            return f"{text} ({_l('repeated')})" if self.repeated else text
        if self.kind == "month":
            return format_date(self.start, "MMMM yyyy")
        if self.kind == "week":
            return f"{_l('Week of')} {format_date(self.start, 'dd/MM/yyyy')}"
        return format_date(self.start, "EEE dd/MM/yyyy")


def period_of(bucket: datetime, kind: str) -> Period:
    local = bucket.replace(tzinfo=UTC).astimezone(clock.center_zone())
    naive = local.replace(tzinfo=None)
    if kind == "hour":
        return Period(naive.replace(minute=0, second=0, microsecond=0),
                      int(local.utcoffset().total_seconds()), kind, bool(local.fold))
    day = naive.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "week":
        day -= timedelta(days=day.weekday())
    elif kind == "month":
        day = day.replace(day=1)
    return Period(day, 0, kind)


def make_span(first: date, last: date, period: str) -> Span:
    if period not in PERIODS:
        raise ReportError(_l("Group by hour, day, week or month."))
    if last < first:
        raise ReportError(_l("The end date is before the start date."))
    if (last - first).days >= MAX_DAYS:
        raise ReportError(_l("Choose at most %(days)d days.", days=MAX_DAYS))
    if period == "hour" and (last - first).days >= MAX_HOUR_DAYS:
        raise ReportError(_l("Group by hour covers at most %(days)d days.", days=MAX_HOUR_DAYS))
    return Span(first, last, period)


def periods(span: Span) -> list[tuple[Period, datetime, datetime]]:
    """Every period of the span with its [start, end) in naive UTC, in order."""
    out: list[list[Any]] = []
    if span.period == "hour":
        start, end = span.bounds()
        steps = [(start + BUCKET * n, start + BUCKET * (n + 1)) for n in range(int((end - start) / BUCKET))]
    else:
        days = [span.first + timedelta(days=n) for n in range((span.last - span.first).days + 1)]
        steps = [(local_midnight(d), local_midnight(d + timedelta(days=1))) for d in days]
    for begin, finish in steps:
        period = period_of(begin, span.period)
        if out and out[-1][0] == period:
            out[-1][2] = finish
        else:
            out.append([period, begin, finish])
    return [(p, b, f) for p, b, f in out]


def period_edges(span: Span) -> tuple[list[datetime], list[Period]]:
    """The periods' starts and the last one's end (ascending, naive UTC), and the periods."""
    found = periods(span)
    return [begin for _p, begin, _f in found] + [found[-1][2]], [p for p, _b, _f in found]


def period_table(edges: list[datetime]) -> Any:
    """The periods as a VALUES common table (idx, p_start, p_end) to join buckets with."""
    return sa.values(sa.column("idx", sa.Integer), sa.column("p_start", sa.DateTime),
                     sa.column("p_end", sa.DateTime), name="report_periods").data(
        [(n, begin, finish) for n, (begin, finish) in enumerate(zip(edges, edges[1:], strict=False))]
    ).cte("report_periods")
