"""The reports as tables: one definition of each report's columns, for the page, CSV and XLSX alike.

A `Table` holds raw values (counts, seconds, percentages, text); the page formats them (`cell` filter),
the exports write numbers as numbers (seconds rounded to a tenth, percentages to a tenth).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

from ..services import reports
from ..services.report_rollups import WAIT_EDGES


@dataclass(frozen=True)
class Column:
    label: Any
    kind: str  # int | pct | dur | text
    get: Callable[[Any], Any]
    definition: str | None = None  # a key of reports.DEFINITIONS


@dataclass
class Table:
    title: Any
    columns: list[Column]
    rows: list[list[Any]]
    total: list[Any] | None = None
    definitions: dict[str, Any] = field(default_factory=lambda: reports.DEFINITIONS)


def _row(columns: list[Column], item: Any) -> list[Any]:
    return [c.get(item) for c in columns]


PERIOD = Column(_l("Period"), "text", lambda r: r[0].label)
CAMPAIGN_COLUMNS = [
    PERIOD,
    Column(_l("Offered"), "int", lambda r: r[1].offered, "offered"),
    Column(_l("Answered"), "int", lambda r: r[1].answered, "answered"),
    Column(_l("Abandoned"), "int", lambda r: r[1].abandoned, "abandoned"),
    Column(_l("Service level %"), "pct", lambda r: r[1].service_level, "service_level"),
    Column(_l("Average wait"), "dur", lambda r: r[1].avg_wait, "avg_wait"),
    Column(_l("Longest wait"), "dur", lambda r: r[1].max_wait, "max_wait"),
    Column(_l("Average first response"), "dur", lambda r: r[1].avg_first_response, "avg_first_response"),
    Column(_l("Average handle time"), "dur", lambda r: r[1].avg_handle, "avg_handle"),
    Column(_l("Closed"), "int", lambda r: r[1].closed, "closed"),
    Column(_l("Transferred"), "int", lambda r: r[1].transferred, "transferred"),
    Column(_l("Out of hours"), "int", lambda r: r[1].out_of_hours, "out_of_hours"),
    Column(_l("Long chats"), "int", lambda r: r[1].long_chats, "long_chats"),
]


def wait_ranges() -> list[str]:
    labels = [f"≤ {_seconds_text(high)}" for high in WAIT_EDGES]
    return labels + [f"> {_seconds_text(WAIT_EDGES[-1])}"]


def _seconds_text(seconds: int) -> str:
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"


def campaign_tables(report: reports.Report) -> list[Table]:
    main = Table(_l("Campaigns"), CAMPAIGN_COLUMNS, [_row(CAMPAIGN_COLUMNS, r) for r in report.rows],
                 _row(CAMPAIGN_COLUMNS, (_Total(), report.total)))
    tables = [main]
    if report.extra.get("channels"):
        columns = [Column(_l("Channel"), "text", lambda r: r[0]), *CAMPAIGN_COLUMNS[1:]]
        tables.append(Table(_l("By channel"), columns,
                            [_row(columns, (name, figures)) for name, figures in report.extra["channels"].items()]))
    dispositions = sorted(report.total.dispositions.items(), key=lambda kv: (-kv[1], kv[0]))
    tables.append(Table(_l("Closed by disposition"), [
        Column(_l("Disposition"), "text", lambda r: r[0] or "—"), Column(_l("Closed"), "int", lambda r: r[1], "closed")],
        [list(item) for item in dispositions]))
    tables.append(Table(_l("Waiting time distribution"), [
        Column(_l("Wait"), "text", lambda r: r[0]),
        Column(_l("Conversations"), "int", lambda r: r[1], "wait_distribution")],
        [[label, count] for label, count in zip(wait_ranges(), report.total.waits, strict=True)]))
    return tables


class _Total:
    label = _l("Total")


def agent_tables(report: reports.Report) -> list[Table]:
    names, breaks = report.extra["agents"], report.extra["breaks"]
    used = sorted({b for f in report.extra["per_agent"].values() for b in f.breaks},
                  key=lambda b: breaks.get(b, ""))
    columns = [
        PERIOD,
        Column(_l("Agent"), "text", lambda r: names.get(r[0][1], "") if isinstance(r[0], tuple) else r[0]),
        *_agent_columns(used, breaks)]
    rows = [[period.label, *_row(columns[1:], ((period, agent), figures))] for (period, agent), figures in report.rows]
    total = ["", str(_l("Total")), *_row(columns[2:], (None, report.total))]
    per_agent = [Column(_l("Agent"), "text", lambda r: r[0]), *_agent_columns(used, breaks)]
    totals = [_row(per_agent, (names.get(agent, ""), figures))
              for agent, figures in sorted(report.extra["per_agent"].items(), key=lambda kv: names.get(kv[0], ""))]
    dispositions = sorted({d for f in report.extra["per_agent"].values() for d in f.dispositions})
    disp_columns = [Column(_l("Agent"), "text", lambda r: r[0])] + [
        Column(d or "—", "int", (lambda r, d=d: r[1].dispositions.get(d, 0)), "closed") for d in dispositions]
    return [Table(_l("Agents by period"), columns, rows, total),
            Table(_l("Agents over the range"), per_agent, totals),
            Table(_l("Dispositions by agent"), disp_columns,
                  [_row(disp_columns, (names.get(a, ""), f)) for a, f in report.extra["per_agent"].items()])]


def _agent_columns(used_breaks: list[int], breaks: dict[int, str]) -> list[Column]:
    return [
        Column(_l("Handled"), "int", lambda r: r[1].handled, "handled"),
        Column(_l("Messages sent"), "int", lambda r: r[1].messages_sent, "messages_sent"),
        Column(_l("Average first response"), "dur", lambda r: r[1].avg_first_response, "avg_first_response"),
        Column(_l("Average handle time"), "dur", lambda r: r[1].avg_handle, "avg_handle"),
        Column(_l("Connected"), "dur", lambda r: r[1].connected, "connected"),
        Column(_l("Free"), "dur", lambda r: r[1].free, "free"),
        Column(_l("Busy"), "dur", lambda r: r[1].busy, "busy"),
        *[Column(breaks.get(b) or _l("Break"), "dur", (lambda r, b=b: r[1].breaks.get(b, 0.0)), "break")
          for b in used_breaks],
        Column(_l("On a call"), "dur", lambda r: r[1].on_call, "on_call"),
        Column(_l("Occupancy %"), "pct", lambda r: r[1].occupancy, "occupancy"),
    ]


DIALER_FIGURES = [
    Column(_l("Loaded"), "int", lambda r: r[1].loaded, "loaded"),
    Column(_l("Sent"), "int", lambda r: r[1].sent, "sent"),
    Column(_l("Delivered"), "int", lambda r: r[1].delivered, "delivered"),
    Column(lazy_pgettext("dialer", "Read"), "int", lambda r: r[1].read, "read"),
    Column(lazy_pgettext("dialer", "Replied"), "int", lambda r: r[1].replied, "replied"),
    Column(_l("Failed"), "int", lambda r: r[1].failed, "failed"),
    Column(_l("Blocked"), "int", lambda r: r[1].blocked, "blocked"),
    Column(_l("Invalid"), "int", lambda r: r[1].invalid, "invalid"),
    Column(_l("Cancelled"), "int", lambda r: r[1].cancelled, "cancelled"),
]


def dialer_tables(report: reports.Report) -> list[Table]:
    names = report.extra["dialers"]
    columns = [PERIOD, Column(_l("Dialer"), "text", lambda r: r[2]), *DIALER_FIGURES]
    rows = [_row(columns, (period, figures, names.get(dialer, ""))) for (period, dialer), figures in report.rows]
    total = _row(columns, (_Total(), report.total, ""))
    failures = Table(_l("Failed by reason"), [Column(_l("Reason"), "text", lambda r: r[0] or "—"),
                                              Column(_l("Failed"), "int", lambda r: r[1], "failed")],
                     [list(item) for item in report.extra["failures"].items()])
    return [Table(_l("Dialers by period"), columns, rows, total), failures]



def definitions(tables: list[Table]) -> list[tuple[str, Any, Any]]:
    """(key, label, definition) of every defined figure the tables show, once each, in order."""
    seen: dict[str, tuple[str, Any, Any]] = {}
    for table in tables:
        for col in table.columns:
            if col.definition and col.definition not in seen:
                seen[col.definition] = (col.definition, col.label, reports.DEFINITIONS[col.definition])
    return list(seen.values())
