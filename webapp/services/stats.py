"""S1: the campaign monitor's figures, each defined once, here.

Every figure is about "today": the contact center's local day (CENTER_TIMEZONE) that contains
`now`, from local midnight; `now` is naive UTC like every stored time. All waits are measured
from `Interaction.created_at` (the customer's first message), so a requeue or a transfer does
not restart the customer's clock.

Per campaign:
- waiting: interactions in status WAITING (in the queue, no agent yet), whatever their age.
- active: interactions with an agent (ASSIGNED or ACTIVE), whatever their age.
- completed: interactions CLOSED today (closed_at today), whenever they arrived.
- abandoned: interactions that arrived today, never got an agent's reply (first_reply_at empty) and
  either are ABANDONED, or are still open and have waited at least `abandon_threshold_seconds`
  (now - created_at >= threshold). A still-waiting customer past the threshold counts both as
  waiting and as abandoned: that is what the manual's abandon threshold means.
- answered: interactions that arrived today and have a first agent reply.
- answered_in_sl: of those, the ones whose first reply came within `sl_threshold_seconds`
  (first_reply_at - created_at <= threshold).
- service_level = 100 * answered_in_sl / (answered + abandoned), or None when both are zero
  (nothing to measure yet; shown as "—", never as a breach).
- long_chats: active interactions (ASSIGNED/ACTIVE) older than `chat_time_threshold_seconds`
  (now - created_at > threshold): flagged on the monitor.
Thresholds crossed (highlighted): waiting > acd_max_waiting; long_chats > 0;
service_level < service_level_target.

Per agent (the same for every campaign a monitor shows): completed = interactions the agent
closed today; active = the agent's ASSIGNED/ACTIVE interactions, counted by channel for the icons.

Each function runs one query, however many campaigns or agents it covers.
"""
from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import AgentState as State
from ..models import (
    BreakType,
    Campaign,
    Interaction,
    InteractionStatus,
    Membership,
    User,
)
from . import time as clock
from .interactions.messages import window_open

CHANNELS = ("sms", "whatsapp")


def seconds_between(start: sa.ColumnElement, end: sa.ColumnElement | datetime) -> sa.ColumnElement:
    """SQL for (end - start) in seconds, on SQLite and PostgreSQL (the session's dialect)."""
    if isinstance(end, datetime):
        end = sa.literal(end, sa.DateTime)
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def age_compare(start: sa.ColumnElement, end: sa.ColumnElement | datetime, op: Callable[[Any, Any], Any],
                seconds: sa.ColumnElement | int) -> sa.ColumnElement:
    """SQL for `op(seconds_between(start, end), seconds)`. PostgreSQL compares intervals instead:
    EXTRACT(epoch ...) yields numeric there, and per row that was most of the statistics query's time."""
    if db.session.get_bind().dialect.name == "postgresql":
        if isinstance(end, datetime):
            end = sa.literal(end, sa.DateTime)
        return op(end - start, seconds * sa.literal_column("interval '1 second'"))
    return op(seconds_between(start, end), seconds)


@dataclass
class CampaignStats:
    campaign_id: int
    name: str = ""
    waiting: int = 0
    active: int = 0
    completed: int = 0
    abandoned: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    long_chats: int = 0
    acd_max_waiting: int = 0
    service_level_target: int = 0

    @property
    def service_level(self) -> float | None:
        base = self.answered + self.abandoned
        return None if base == 0 else 100.0 * self.answered_in_sl / base

    @property
    def waiting_over(self) -> bool:
        return self.waiting > self.acd_max_waiting

    @property
    def chat_time_over(self) -> bool:
        return self.long_chats > 0

    @property
    def service_level_under(self) -> bool:
        level = self.service_level
        return level is not None and level < self.service_level_target


def _count(condition: sa.ColumnElement) -> sa.ColumnElement:
    """COUNT(*) FILTER (WHERE condition): a shorter statement with fewer parameters than SUM(CASE ...), so
    psycopg caches its parsing and prepares it (at most 4096 characters and 50 parameters)."""
    return sa.func.count().filter(condition)


def campaign_stats(campaign_ids: list[int], now: datetime | None = None) -> list[CampaignStats]:
    """The figures of each campaign (in name order), one query for all of them."""
    if not campaign_ids:
        return []
    now = now or clock.now()
    rows = db.session.execute(_campaign_stats_statement(db.session.get_bind().dialect.name),
                              {"ids": list(campaign_ids), "now": now, "start": clock.center_day_start(now)}).all()
    figures = ("waiting", "active", "completed", "abandoned", "answered", "answered_in_sl", "long_chats")
    return [CampaignStats(campaign_id=row.id, name=row.name, acd_max_waiting=row.acd_max_waiting,
                          service_level_target=row.service_level_target,
                          **{f: int(getattr(row, f) or 0) for f in figures})
            for row in rows]


@functools.cache
def _campaign_stats_statement(dialect: str) -> sa.Select:
    """Built once per dialect (building it cost as much as running it); parameters ids, now, start."""
    i, c = Interaction, Campaign
    campaign_ids = sa.bindparam("ids", expanding=True)
    now = sa.bindparam("now", type_=sa.DateTime)
    start = sa.bindparam("start", type_=sa.DateTime)
    arrived_today = i.created_at >= start
    unanswered = i.first_reply_at.is_(None)
    abandoned = sa.and_(arrived_today, unanswered, sa.or_(
        i.status == InteractionStatus.ABANDONED,
        sa.and_(i.status.in_(InteractionStatus.OPEN), age_compare(i.created_at, now, operator.ge,
                                                                   c.abandon_threshold_seconds))))
    answered = sa.and_(arrived_today, i.first_reply_at.is_not(None))
    in_sl = sa.and_(answered, age_compare(i.created_at, i.first_reply_at, operator.le, c.sl_threshold_seconds))
    counts = (
        sa.select(i.campaign_id,
                  _count(i.status == InteractionStatus.WAITING).label("waiting"),
                  _count(i.status.in_(InteractionStatus.WITH_AGENT)).label("active"),
                  _count(sa.and_(i.status == InteractionStatus.CLOSED, i.closed_at >= start)).label("completed"),
                  _count(abandoned).label("abandoned"),
                  _count(answered).label("answered"),
                  _count(in_sl).label("answered_in_sl"),
                  _count(sa.and_(i.status.in_(InteractionStatus.WITH_AGENT), age_compare(i.created_at, now, operator.gt,
                                                                       c.chat_time_threshold_seconds)))
                  .label("long_chats"))
        .join(c, c.id == i.campaign_id)
        # Every row a figure counts is open, or closed/abandoned today (one that arrived today and is
        # over was closed today too): two index ranges, never the whole history.
        .where(i.campaign_id.in_(campaign_ids),
               sa.or_(i.status.in_(InteractionStatus.OPEN),
                      sa.and_(i.status.in_((InteractionStatus.CLOSED, InteractionStatus.ABANDONED)),
                              i.closed_at >= start)))
        .group_by(i.campaign_id)
        .subquery())
    return (sa.select(c.id, c.name, c.acd_max_waiting, c.service_level_target, counts)
            .outerjoin(counts, counts.c.campaign_id == c.id)
            .where(c.id.in_(campaign_ids)).order_by(c.name))


@dataclass
class AgentRow:
    id: int
    name: str
    username: str
    state: str
    state_changed_at: datetime
    on_call: bool
    monitor_screen_allowed: bool
    break_name: str | None
    break_icon: str | None
    active: int = 0
    completed: int = 0
    channels: dict[str, int] = field(default_factory=dict)
    # The timer's figures, computed with the table's one `now` (not a clock read per row in the template).
    since_epoch: float = 0.0
    since_text: str = ""

    @property
    def in_break(self) -> bool:
        return State(self.state).in_break

    @property
    def connected(self) -> bool:
        return State(self.state).connected


def agent_rows(*, viewer_agents: sa.Select | None = None, campaign_ids: list[int] | None = None,
               agent_ids: list[int] | None = None, now: datetime | None = None) -> list[AgentRow]:
    """Monitor rows, one query: agents (from `viewer_agents`, e.g. security.visible_agents(), or
    all agents) who are members of `campaign_ids` and/or among `agent_ids`, by name."""
    now = now or clock.now()
    per_agent = _per_agent_counts(agent_ids is not None)
    query = viewer_agents if viewer_agents is not None else sa.select(User).where(User.role == "agent")
    query = (query.with_only_columns(
        User.id, User.name, User.username, User.state, User.state_changed_at, User.on_call,
        User.monitor_screen_allowed, BreakType.name.label("break_name"), BreakType.icon.label("break_icon"),
        per_agent.c.active, per_agent.c.completed, *[per_agent.c[f"ch_{ch}"] for ch in CHANNELS],
        per_agent.c.ch_other, maintain_column_froms=True)
        .outerjoin(BreakType, BreakType.id == User.break_type_id)
        .outerjoin(per_agent, per_agent.c.agent_id == User.id)
        .order_by(None).order_by(sa.func.lower(sa.func.coalesce(sa.func.nullif(User.name, ""), User.username)),
                                 User.id))
    if campaign_ids is not None:
        query = query.where(User.id.in_(
            sa.select(Membership.user_id).where(Membership.campaign_id.in_(campaign_ids or [-1]))))
    if agent_ids is not None:
        query = query.where(User.id.in_(agent_ids or [-1]))
    rows = []
    channel_columns = [(ch, f"ch_{ch}") for ch in (*CHANNELS, "other")]
    for r in db.session.execute(query, {"start": clock.center_day_start(now), "agent_ids": agent_ids or []}):
        channels = {ch: int(getattr(r, column) or 0) for ch, column in channel_columns}
        rows.append(AgentRow(id=r.id, name=r.name or r.username, username=r.username, state=r.state,
                             state_changed_at=r.state_changed_at, on_call=r.on_call,
                             monitor_screen_allowed=r.monitor_screen_allowed, break_name=r.break_name,
                             break_icon=r.break_icon, active=int(r.active or 0), completed=int(r.completed or 0),
                             channels={k: v for k, v in channels.items() if v},
                             since_epoch=clock.epoch(r.state_changed_at),
                             since_text=elapsed_text(r.state_changed_at, now)))
    return rows


@functools.cache
def _per_agent_counts(by_agent_ids: bool) -> sa.Subquery:
    """agent_rows' figures per agent, built once (parameters start and, `by_agent_ids`, agent_ids)."""
    i = Interaction
    start = sa.bindparam("start", type_=sa.DateTime)
    with_agent = i.status.in_(InteractionStatus.WITH_AGENT)
    per_agent = (
        sa.select(i.agent_id.label("agent_id"),
                  _count(with_agent).label("active"),
                  _count(sa.and_(i.status == InteractionStatus.CLOSED, i.closed_at >= start)).label("completed"),
                  *[_count(sa.and_(with_agent, i.channel == ch)).label(f"ch_{ch}") for ch in CHANNELS],
                  _count(sa.and_(with_agent, i.channel.not_in(CHANNELS))).label("ch_other"))
        .where(i.agent_id.is_not(None), sa.or_(with_agent, sa.and_(i.status == InteractionStatus.CLOSED,
                                                                   i.closed_at >= start)))
        .group_by(i.agent_id))
    if by_agent_ids:
        per_agent = per_agent.where(i.agent_id.in_(sa.bindparam("agent_ids", expanding=True)))
    return per_agent.subquery()


@dataclass
class WaitingRow:
    id: int
    customer_number: str
    customer_name: str
    channel: str
    campaign_id: int
    campaign_name: str
    queued_at: datetime
    # The timer's figures, computed with the list's one `now`.
    since_epoch: float = 0.0
    since_text: str = ""
    # Past the campaign's abandon threshold (from the first message, as S1 counts it) at this epoch: the
    # row is highlighted from then on (app.js flips it live); it stays in the queue.
    abandoned_epoch: float = 0.0
    abandoned: bool = False
    # Past the campaign's service-level threshold (no first reply in time): highlighted less strongly.
    late_epoch: float = 0.0
    late: bool = False
    # WhatsApp only: the 24 h window is closed, an agent can only send a template.
    window_closed: bool = False
    # The agent who had it before it went back to the queue.
    previous_agent: str = ""

    @property
    def order(self) -> int:
        """CSS order keeping rows inserted live in waiting order (seconds since 2023-11-14)."""
        return int(self.since_epoch) - 1_700_000_000


def waiting_rows(campaign_ids: list[int] | None = None, interaction_ids: list[int] | None = None,
                 limit: int | None = None) -> list[WaitingRow]:
    """Customers waiting for an agent, longest wait first (the first `limit`), one query."""
    i, c = Interaction, Campaign
    previous = sa.orm.aliased(User)
    query = (sa.select(i.id, i.customer_number, i.customer_name, i.channel, i.campaign_id, c.name, i.queued_at,
                       i.created_at, c.abandon_threshold_seconds, c.sl_threshold_seconds, i.last_customer_message_at,
                       sa.func.coalesce(sa.func.nullif(previous.name, ""), previous.username).label("had"))
             .join(c, c.id == i.campaign_id)
             .outerjoin(previous, previous.id == i.previous_agent_id)
             .where(i.status == InteractionStatus.WAITING)
             .order_by(i.queued_at, i.id))
    if campaign_ids is not None:
        query = query.where(i.campaign_id.in_(campaign_ids or [-1]))
    if interaction_ids is not None:
        query = query.where(i.id.in_(interaction_ids or [-1]))
    if limit is not None:
        query = query.limit(limit)
    now = clock.now()
    return [_waiting_row(r, now) for r in db.session.execute(query)]


def _waiting_row(r: Any, now: datetime) -> WaitingRow:
    abandoned_at = r.created_at + timedelta(seconds=r.abandon_threshold_seconds)
    late_at = r.created_at + timedelta(seconds=r.sl_threshold_seconds)
    window_closed = not window_open(r.channel, r.last_customer_message_at, now)
    return WaitingRow(id=r.id, customer_number=r.customer_number, customer_name=r.customer_name or "",
                      channel=r.channel, campaign_id=r.campaign_id, campaign_name=r.name, queued_at=r.queued_at,
                      since_epoch=clock.epoch(r.queued_at), since_text=elapsed_text(r.queued_at, now),
                      abandoned_epoch=clock.epoch(abandoned_at), abandoned=now >= abandoned_at,
                      late_epoch=clock.epoch(late_at), late=now >= late_at,
                      window_closed=window_closed, previous_agent=r.had or "")


def agent_today(agent_id: int, now: datetime | None = None) -> dict[str, float | int | None]:
    """Today's figures of one agent: completed, active, average first response time (seconds,
    over the interactions assigned to the agent today that got a first reply; None if none)."""
    now = now or clock.now()
    start = clock.center_day_start(now)
    i = Interaction
    replied_today = sa.and_(i.first_reply_at.is_not(None), i.first_reply_at >= start)
    response = seconds_between(sa.func.coalesce(i.assigned_at, i.created_at), i.first_reply_at)
    row = db.session.execute(
        sa.select(_count(i.status.in_(InteractionStatus.WITH_AGENT)).label("active"),
                  _count(sa.and_(i.status == InteractionStatus.CLOSED, i.closed_at >= start)).label("completed"),
                  sa.func.avg(sa.case((replied_today, response), else_=None)).label("avg_first_response"))
        .where(i.agent_id == agent_id)).one()
    avg = row.avg_first_response
    return {"active": int(row.active or 0), "completed": int(row.completed or 0),
            "avg_first_response": None if avg is None else round(float(avg), 1)}



def elapsed_text(moment: datetime | None, now: datetime | None = None) -> str:
    """"m:ss" (or "h:mm:ss") since a stored time (until `now`, default the clock), as the timers show it."""
    seconds = 0 if moment is None else max(0, int(((now or clock.now()) - moment).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:d}:{secs:02d}"
