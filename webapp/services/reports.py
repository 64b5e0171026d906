"""Issue 15: campaign, agent and dialer reports, read from the rollups (services/report_rollups.py).

A report covers whole days of the centre (CENTER_TIMEZONE), `first` to `last` included, grouped by
hour, day, week (from Monday) or month of the centre's calendar (services/report_periods.py). Each
15-minute bucket falls in the period that holds its start in centre time, so a day that crosses midnight
in UTC, or a day of 23 or 25 hours at a DST change, is counted as the centre lives it; the hour repeated
when clocks go back shows twice. The database sums the buckets per period (`_by_period`): a month's
report reads a few dozen rows whatever the traffic. The callers pass only ids the user may see
(security.visible_*).

`DEFINITIONS` is every figure's one-line definition, shown next to it (Spanish and English catalogs).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql

from ..extensions import db
from ..models import (
    AgentBucket,
    AgentDispositionBucket,
    AgentStateBucket,
    BreakType,
    Campaign,
    CampaignBucket,
    Dialer,
    DialerBucket,
    DialerFailureBucket,
    DispositionBucket,
    Provider,
    User,
)
from .report_periods import (
    MAX_DAYS,
    PERIODS,
    Period,
    ReportError,
    Span,
    make_span,
    period_edges,
    period_table,
)
from .report_rollups import WAIT_EDGES

__all__ = ["MAX_DAYS", "PERIODS", "Period", "ReportError", "Span", "make_span"]

BUCKET_SUMS = ("offered", "answered", "answered_in_sl", "abandoned", "wait_count", "wait_sum", "first_response_sum",
               "handle_count", "handle_sum", "transferred", "out_of_hours", "long_chats",
               *(f"wait_h{k}" for k in range(len(WAIT_EDGES) + 1)))

DEFINITIONS: dict[str, Any] = {
    "offered": _l("Customer conversations that arrived in the period."),
    "answered": _l("Arrived conversations that got a first reply from an agent."),
    "abandoned": _l("Arrived conversations with no agent reply that were abandoned or waited longer than the "
                    "campaign's abandon threshold."),
    "service_level": _l("Answered within the service level threshold, as a share of answered plus abandoned."),
    "avg_wait": _l("Average time from arrival to the first agent reply, or to abandonment, of answered and "
                   "abandoned conversations."),
    "max_wait": _l("Longest of those waits."),
    "avg_first_response": _l("Average time from arrival to the first agent reply, of answered conversations."),
    "avg_handle": _l("Average time from the agent's first reply to the close, of closed conversations."),
    "closed": _l("Conversations closed in the period, by disposition."),
    "transferred": _l("Arrived conversations handed to another agent or campaign at least once."),
    "out_of_hours": _l("Arrived conversations that received the out-of-hours reply."),
    "long_chats": _l("Answered conversations longer than the campaign's chat time threshold (from arrival to "
                     "the close, or to now while open)."),
    "wait_distribution": _l("Answered and abandoned conversations by how long they waited."),
    "handled": _l("Conversations the agent closed in the period."),
    "messages_sent": _l("Messages the agent wrote to customers in the period."),
    "connected": _l("Time signed in, in any state."),
    "free": _l("Time signed in with no conversation and not in a break."),
    "busy": _l("Time with at least one conversation, not in a break."),
    "break": _l("Time in each break type (with or without conversations)."),
    "on_call": _l("Time on a call of the voice platform while signed in."),
    "occupancy": _l("Time with at least one conversation (in a break or not) as a share of the time signed "
                    "in."),
    "loaded": _l("Messages loaded into the dialer in the period."),
    "sent": _l("Messages handed to the gateway in the period."),
    "delivered": _l("Messages the gateway reported delivered in the period."),
    "read": _l("Messages the customer read in the period (WhatsApp reports it; SMS does not)."),
    "replied": _l("Messages the customer answered in the period (their next message, within the reply window)."),
    "failed": _l("Messages loaded in the period that failed, by the gateway's reason."),
    "blocked": _l("Messages loaded in the period blocked by a do-not-contact list."),
    "invalid": _l("Messages loaded in the period with an invalid number."),
    "cancelled": _l("Messages loaded in the period cancelled by a supervisor."),
}


# -- campaigns ------------------------------------------------------------------------------------------
@dataclass
class CampaignFigures:
    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    wait_count: int = 0
    wait_sum: float = 0.0
    wait_max: float = 0.0
    waits: list[int] = field(default_factory=lambda: [0] * (len(WAIT_EDGES) + 1))
    first_response_sum: float = 0.0
    handle_count: int = 0
    handle_sum: float = 0.0
    closed: int = 0
    transferred: int = 0
    out_of_hours: int = 0
    long_chats: int = 0
    dispositions: dict[str, int] = field(default_factory=dict)

    SUMS = ("offered", "answered", "answered_in_sl", "abandoned", "wait_count", "wait_sum", "first_response_sum",
            "handle_count", "handle_sum", "transferred", "out_of_hours", "long_chats")

    def add(self, row: Any) -> None:
        for name in self.SUMS:
            setattr(self, name, getattr(self, name) + (getattr(row, name) or 0))
        self.wait_max = max(self.wait_max, row.wait_max or 0.0)
        self.waits = [a + (getattr(row, f"wait_h{k}") or 0) for k, a in enumerate(self.waits)]

    def add_figures(self, other: CampaignFigures) -> None:
        for name in self.SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.wait_max = max(self.wait_max, other.wait_max)
        self.waits = [a + b for a, b in zip(self.waits, other.waits, strict=True)]
        self.closed += other.closed
        for name, count in other.dispositions.items():
            self.dispositions[name] = self.dispositions.get(name, 0) + count

    def add_closed(self, disposition: str, count: int) -> None:
        self.closed += count
        self.dispositions[disposition] = self.dispositions.get(disposition, 0) + count

    @property
    def service_level(self) -> float | None:
        base = self.answered + self.abandoned
        return None if base == 0 else 100.0 * self.answered_in_sl / base

    @property
    def avg_wait(self) -> float | None:
        return self.wait_sum / self.wait_count if self.wait_count else None

    @property
    def max_wait(self) -> float | None:
        return self.wait_max if self.wait_count else None

    @property
    def avg_first_response(self) -> float | None:
        return self.first_response_sum / self.answered if self.answered else None

    @property
    def avg_handle(self) -> float | None:
        return self.handle_sum / self.handle_count if self.handle_count else None


@dataclass
class Report:
    span: Span
    rows: list[tuple[Period, Any]]
    total: Any
    extra: dict[str, Any] = field(default_factory=dict)


def _by_period(span: Span, table: Any, keys: list[Any], figures: list[Any], where: list[Any],
               joins: Any = None) -> Iterable[tuple[Period, Any]]:
    """Rows of `table` summed per period of the span (and `keys`), each with its Period. PostgreSQL finds
    each bucket's period with width_bucket over the periods' starts (one pass); SQLite joins the periods."""
    edges, found = period_edges(span)
    source = joins if joins is not None else table.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        idx = (sa.func.width_bucket(table.bucket, sa.literal(edges, postgresql.ARRAY(sa.DateTime))) - 1).label("idx")
    else:
        values = period_table(edges)
        source = source.join(values, sa.and_(table.bucket >= values.c.p_start, table.bucket < values.c.p_end))
        idx = values.c.idx
    stmt = sa.select(idx, *keys, *figures).select_from(source).where(*where).group_by(idx, *keys)
    for row in db.session.execute(stmt):
        yield found[row.idx], row


def _summed(table: Any, names: Iterable[str]) -> list[Any]:
    return [sa.func.sum(getattr(table, name)).label(name) for name in names]


def campaign_report(campaign_ids: Iterable[int], span: Span) -> Report:
    """Figures of the campaigns together, per period; `extra["channels"]`: totals per channel when the
    campaigns use more than one."""
    ids = list(campaign_ids)
    start, end = span.bounds()
    periods: dict[Period, CampaignFigures] = defaultdict(CampaignFigures)
    by_channel: dict[str, CampaignFigures] = defaultdict(CampaignFigures)
    if ids:
        cb, dp = CampaignBucket, DispositionBucket
        channel = sa.func.coalesce(Provider.channel, "sms").label("channel")
        for table, figures, add in (
                (cb, [sa.func.max(cb.wait_max).label("wait_max"), *_summed(cb, BUCKET_SUMS)],
                 lambda f, r: f.add(r)),
                (dp, _summed(dp, ["closed"]),
                 lambda f, r: f.add_closed(r.disposition, int(r.closed)))):
            joins = table.__table__.join(Campaign, Campaign.id == table.campaign_id).outerjoin(
                Provider, Provider.id == Campaign.provider_id)
            keys = [channel] + ([dp.disposition] if table is dp else [])
            for period, row in _by_period(span, table, keys, figures,
                                          [table.campaign_id.in_(ids), table.bucket >= start, table.bucket < end],
                                          joins):
                add(periods[period], row)
                add(by_channel[row.channel], row)
    return _report(span, periods, CampaignFigures,
                   channels=dict(sorted(by_channel.items())) if len(by_channel) > 1 else {})


def _report(span: Span, periods: dict[Period, Any], figures: type, **extra: Any) -> Report:
    total = figures()
    for row in periods.values():
        total.add_figures(row)
    return Report(span, sorted(periods.items(), key=lambda item: (item[0].start, item[0].repeated)), total,
                  extra)


# -- agents ---------------------------------------------------------------------------------------------
@dataclass
class AgentFigures:
    handled: int = 0
    messages_sent: int = 0
    first_response_count: int = 0
    first_response_sum: float = 0.0
    handle_count: int = 0
    handle_sum: float = 0.0
    free: float = 0.0
    busy: float = 0.0
    on_call: float = 0.0
    breaks: dict[int, float] = field(default_factory=dict)  # break type id (0: unknown) → seconds
    busy_in_break: float = 0.0
    dispositions: dict[str, int] = field(default_factory=dict)

    SUMS = ("handled", "messages_sent", "first_response_count", "first_response_sum", "handle_count",
            "handle_sum", "free", "busy", "on_call", "busy_in_break")

    def add_work(self, row: Any) -> None:
        for name in SUMS_WORK:
            setattr(self, name, getattr(self, name) + getattr(row, name))

    def add_state(self, state: str, break_type_id: int, on_call: bool, seconds: float) -> None:
        if state == "free":
            self.free += seconds
        elif state == "busy":
            self.busy += seconds
        else:
            self.breaks[break_type_id] = self.breaks.get(break_type_id, 0.0) + seconds
            if state == "busy_break":
                self.busy_in_break += seconds
        if on_call:
            self.on_call += seconds

    def add_figures(self, other: AgentFigures) -> None:
        for name in self.SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, value in other.breaks.items():
            self.breaks[key] = self.breaks.get(key, 0.0) + value
        for key, count in other.dispositions.items():
            self.dispositions[key] = self.dispositions.get(key, 0) + count

    @property
    def connected(self) -> float:
        return self.free + self.busy + sum(self.breaks.values())

    @property
    def occupancy(self) -> float | None:
        return 100.0 * (self.busy + self.busy_in_break) / self.connected if self.connected else None

    @property
    def avg_first_response(self) -> float | None:
        return self.first_response_sum / self.first_response_count if self.first_response_count else None

    @property
    def avg_handle(self) -> float | None:
        return self.handle_sum / self.handle_count if self.handle_count else None


SUMS_WORK = ("handled", "messages_sent", "first_response_count", "first_response_sum", "handle_count", "handle_sum")


def agent_report(agent_ids: Iterable[int], span: Span) -> Report:
    """Per agent and period: rows keyed (period, agent id); `extra["agents"]` names, `extra["breaks"]`
    break type names, `extra["per_agent"]` each agent's totals over the range."""
    ids = list(agent_ids)
    start, end = span.bounds()
    rows: dict[tuple[Period, int], AgentFigures] = defaultdict(AgentFigures)
    if ids:
        ab, sb, dp = AgentBucket, AgentStateBucket, AgentDispositionBucket
        for period, row in _by_period(span, ab, [ab.agent_id], _summed(ab, SUMS_WORK),
                                      [ab.agent_id.in_(ids), ab.bucket >= start, ab.bucket < end]):
            rows[(period, row.agent_id)].add_work(row)
        keys = [sb.agent_id, sb.state, sb.break_type_id, sb.on_call]
        for period, row in _by_period(span, sb, keys, _summed(sb, ["seconds"]),
                                      [sb.agent_id.in_(ids), sb.bucket >= start, sb.bucket < end]):
            rows[(period, row.agent_id)].add_state(row.state, row.break_type_id, row.on_call, row.seconds)
        for period, row in _by_period(span, dp, [dp.agent_id, dp.disposition], _summed(dp, ["closed"]),
                                      [dp.agent_id.in_(ids), dp.bucket >= start, dp.bucket < end]):
            figures = rows[(period, row.agent_id)]
            figures.dispositions[row.disposition] = figures.dispositions.get(row.disposition, 0) + int(row.closed)
    names = dict(db.session.execute(sa.select(User.id, sa.func.coalesce(sa.func.nullif(User.name, ""),
                                                                         User.username))
                                    .where(User.id.in_(ids))).all()) if ids else {}
    per_agent: dict[int, AgentFigures] = defaultdict(AgentFigures)
    total = AgentFigures()
    for (_period, agent_id), figures in rows.items():
        per_agent[agent_id].add_figures(figures)
        total.add_figures(figures)
    breaks = dict(db.session.execute(sa.select(BreakType.id, BreakType.name)).all())
    ordered = sorted(rows.items(), key=lambda item: (item[0][0].start, item[0][0].repeated,
                                                      names.get(item[0][1], "")))
    return Report(span, ordered, total, {"agents": names, "breaks": breaks, "per_agent": dict(per_agent)})


# -- dialers --------------------------------------------------------------------------------------------
@dataclass
class DialerFigures:
    loaded: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0
    failed: int = 0
    blocked: int = 0
    invalid: int = 0
    cancelled: int = 0

    SUMS = ("loaded", "sent", "delivered", "read", "replied", "failed", "blocked", "invalid", "cancelled")

    def add_figures(self, other: Any) -> None:
        for name in self.SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def dialer_report(dialer_ids: Iterable[int], span: Span) -> Report:
    """Per dialer and period: rows keyed (period, dialer id); `extra["failures"]` failed by reason over
    the range, `extra["dialers"]` names."""
    ids = list(dialer_ids)
    start, end = span.bounds()
    rows: dict[tuple[Period, int], DialerFigures] = defaultdict(DialerFigures)
    failures: dict[str, int] = defaultdict(int)
    if ids:
        db_, fb = DialerBucket, DialerFailureBucket
        for period, row in _by_period(span, db_, [db_.dialer_id], _summed(db_, DialerFigures.SUMS),
                                      [db_.dialer_id.in_(ids), db_.bucket >= start, db_.bucket < end]):
            rows[(period, row.dialer_id)].add_figures(row)
        for reason, count in db.session.execute(
                sa.select(fb.reason, sa.func.sum(fb.failed)).where(fb.dialer_id.in_(ids), fb.bucket >= start,
                                                                   fb.bucket < end).group_by(fb.reason)):
            failures[reason] += int(count)
    names = dict(db.session.execute(sa.select(Dialer.id, Dialer.name).where(Dialer.id.in_(ids))).all()) if ids else {}
    total = DialerFigures()
    for figures in rows.values():
        total.add_figures(figures)
    ordered = sorted(rows.items(), key=lambda item: (item[0][0].start, item[0][0].repeated,
                                                      names.get(item[0][1], "")))
    return Report(span, ordered, total, {"failures": dict(sorted(failures.items(), key=lambda kv: -kv[1])),
                                         "dialers": names})
