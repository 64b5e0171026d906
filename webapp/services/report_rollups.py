"""Issue 15: the rollups reports read, kept from the raw rows by one idempotent recomputation.

Every rollup row is a 15-minute bucket (naive UTC start, `BUCKET`). `recompute(start, end, now)` replaces
every rollup row of the buckets in [start, end) by what the raw rows say at `now`: the same call twice
writes the same rows, so the periodic job (`refresh`, workers/reports.py) and the rebuild (`rebuild`,
`flask reports rebuild`) can never drift apart.

`refresh` recomputes the buckets since its last run (`conversa:reports:refreshed` in Redis; one bucket of
margin for commits in flight; REPORT_LOOKBACK_HOURS without it) and the older buckets that can still
change: those of conversations still open or closed since, of agents' spans still open or ended since,
of dialer messages sent or delivered since. A dialer message loaded earlier that is blocked, fails or is
cancelled later changes its (load) bucket at the next rebuild only.

What each bucket counts (the definitions the report pages show are in services/reports.py):
- campaigns, by arrival (created_at), inbound conversations: offered; answered (an agent replied);
  answered_in_sl (first reply within the campaign's sl_threshold_seconds); abandoned (S1: no agent reply,
  and ABANDONED, or still open and waiting at least abandon_threshold_seconds); waits (arrival → first
  agent reply, or → abandonment / now) of the answered and abandoned, with their distribution
  (`WAIT_EDGES`); first response (arrival → first agent reply); then for all: handle time (first agent
  reply → close, closed ones), closed, transferred (to another agent or campaign at least once),
  out_of_hours (the out-of-hours reply was sent), long_chats (answered, arrival → close / now over
  chat_time_threshold_seconds);
- dispositions, by close (closed_at): closed conversations per campaign, and per closing agent, by disposition;
- agents: by close, the conversations they closed (first response and handle time of those); by send
  time, the messages they wrote;
- agent states: seconds in each state (not disconnected), break type and call flag, cut at the buckets;
- dialers: loaded by created_at, sent by sent_at, delivered by delivered_at, read by read_at (WhatsApp),
  replied by replied_at (services/dialer/replies.py); failed (by reason), blocked,
  invalid and cancelled as the messages stand now, by the bucket they were loaded in.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from ..extensions import db
from ..models import (
    AgentBucket,
    AgentDispositionBucket,
    AgentState,
    AgentStateBucket,
    AgentStateSpan,
    Campaign,
    CampaignBucket,
    DialerBucket,
    DialerFailureBucket,
    DispositionBucket,
    Interaction,
    InteractionStatus,
    Message,
    SenderKind,
    SpoolMessage,
    SpoolState,
)
from . import time as clock
from .stats import seconds_between

BUCKET = timedelta(minutes=15)
WAIT_EDGES = (30, 60, 120, 300, 600)  # seconds: the wait distribution's ranges end here (and beyond)
REFRESHED_KEY = "conversa:reports:refreshed"
TABLES = (CampaignBucket, DispositionBucket, AgentDispositionBucket, AgentBucket, AgentStateBucket, DialerBucket, DialerFailureBucket)
_EPOCH = datetime(2000, 1, 1)


def floor(moment: datetime) -> datetime:
    """The start of the bucket holding `moment`."""
    return moment - (moment - _EPOCH) % BUCKET


def bucket_of(column: Any) -> sa.ColumnElement:
    """SQL for the bucket start of a timestamp column, on PostgreSQL and SQLite."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.func.date_bin(sa.literal_column("interval '15 minutes'"), column,
                                sa.literal(_EPOCH, sa.DateTime))
    seconds = int(BUCKET.total_seconds())
    # `//`: SQLAlchemy 2's `/` is true division (it adds "+ 0.0"), which would not cut at the bucket.
    return sa.func.datetime(sa.cast(sa.func.strftime("%s", column), sa.Integer) // seconds * seconds, "unixepoch")


def _as_datetime(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


# -- the one recomputation ------------------------------------------------------------------------
def recompute(start: datetime, end: datetime, now: datetime) -> None:
    """Replace every rollup row of the buckets in [floor(start), end) with the raw rows' figures at `now`."""
    start = floor(start)
    for table in TABLES:
        db.session.execute(sa.delete(table).where(table.bucket >= start, table.bucket < end))
    for table, rows in ((CampaignBucket, _campaign_rows(start, end, now)),
                        (DispositionBucket, _disposition_rows(start, end, Interaction.campaign_id)),
                        (AgentDispositionBucket, _disposition_rows(start, end, Interaction.agent_id)),
                        (AgentBucket, _agent_rows(start, end)),
                        (AgentStateBucket, _state_rows(start, end, now)),
                        (DialerBucket, _dialer_rows(start, end)),
                        (DialerFailureBucket, _failure_rows(start, end))):
        if rows:
            db.session.execute(sa.insert(table), rows)


def _campaign_rows(start: datetime, end: datetime, now: datetime) -> list[dict[str, Any]]:
    i, c, s = Interaction, Campaign, InteractionStatus
    inbound = i.direction == "inbound"
    is_open = i.status.in_(s.OPEN)
    answered = sa.and_(inbound, i.first_reply_at.is_not(None))
    abandoned = sa.and_(inbound, i.first_reply_at.is_(None), sa.or_(
        i.status == s.ABANDONED,
        sa.and_(is_open, seconds_between(i.created_at, now) >= c.abandon_threshold_seconds)))
    waited = sa.or_(answered, abandoned)
    wait_end = sa.case((i.first_reply_at.is_not(None), i.first_reply_at), (is_open, sa.literal(now, sa.DateTime)),
                       else_=sa.func.coalesce(i.closed_at, sa.literal(now, sa.DateTime)))
    wait = seconds_between(i.created_at, wait_end)
    first_response = seconds_between(i.created_at, i.first_reply_at)
    handled = sa.and_(i.status == s.CLOSED, i.first_reply_at.is_not(None), i.closed_at.is_not(None))
    length = seconds_between(i.created_at, sa.case((is_open, sa.literal(now, sa.DateTime)),
                                                   else_=sa.func.coalesce(i.closed_at, sa.literal(now, sa.DateTime))))
    edges = (None, *WAIT_EDGES, None)
    bins = [sa.func.count().filter(sa.and_(waited, *([wait > low] if low is not None else []),
                                           *([wait <= high] if high is not None else []))).label(f"wait_h{k}")
            for k, (low, high) in enumerate(zip(edges, edges[1:], strict=False))]
    bucket = bucket_of(i.created_at).label("bucket")
    stmt = (sa.select(
        i.campaign_id, bucket,
        sa.func.count().filter(inbound).label("offered"),
        sa.func.count().filter(answered).label("answered"),
        sa.func.count().filter(sa.and_(answered, first_response <= c.sl_threshold_seconds)).label("answered_in_sl"),
        sa.func.count().filter(abandoned).label("abandoned"),
        sa.func.count().filter(waited).label("wait_count"),
        sa.func.sum(wait).filter(waited).label("wait_sum"),
        sa.func.max(wait).filter(waited).label("wait_max"),
        *bins,
        sa.func.sum(first_response).filter(answered).label("first_response_sum"),
        sa.func.count().filter(handled).label("handle_count"),
        sa.func.sum(seconds_between(i.first_reply_at, i.closed_at)).filter(handled).label("handle_sum"),
        sa.func.count().filter(i.status == s.CLOSED).label("closed"),
        sa.func.count().filter(i.transfers > 0).label("transferred"),
        sa.func.count().filter(i.out_of_hours_sent.is_(True)).label("out_of_hours"),
        sa.func.count().filter(sa.and_(i.first_reply_at.is_not(None), length > c.chat_time_threshold_seconds))
        .label("long_chats"))
        .join(c, c.id == i.campaign_id)
        .where(i.created_at >= start, i.created_at < end)
        .group_by(i.campaign_id, bucket))
    return [_row(r) for r in db.session.execute(stmt).mappings()]


def _disposition_rows(start: datetime, end: datetime, owner: Any) -> list[dict[str, Any]]:
    """Closed conversations per `owner` (campaign_id, or agent_id: the closing agent) and disposition."""
    i = Interaction
    bucket = bucket_of(i.closed_at).label("bucket")
    disposition = sa.func.coalesce(i.disposition, "").label("disposition")
    stmt = (sa.select(owner, bucket, disposition, sa.func.count().label("closed"))
            .where(i.status == InteractionStatus.CLOSED, owner.is_not(None), i.closed_at >= start, i.closed_at < end)
            .group_by(owner, bucket, disposition))
    return [_row(r) for r in db.session.execute(stmt).mappings()]


def _agent_rows(start: datetime, end: datetime) -> list[dict[str, Any]]:
    i, m = Interaction, Message
    replied = i.first_reply_at.is_not(None)
    bucket = bucket_of(i.closed_at).label("bucket")
    closed = (sa.select(i.agent_id, bucket, sa.func.count().label("handled"),
                        sa.func.count().filter(replied).label("first_response_count"),
                        sa.func.sum(seconds_between(i.created_at, i.first_reply_at)).filter(replied)
                        .label("first_response_sum"),
                        sa.func.count().filter(replied).label("handle_count"),
                        sa.func.sum(seconds_between(i.first_reply_at, i.closed_at)).filter(replied)
                        .label("handle_sum"))
              .where(i.status == InteractionStatus.CLOSED, i.agent_id.is_not(None),
                     i.closed_at >= start, i.closed_at < end)
              .group_by(i.agent_id, bucket))
    sent_bucket = bucket_of(m.created_at).label("bucket")
    sent = (sa.select(m.sender_user_id.label("agent_id"), sent_bucket, sa.func.count().label("messages_sent"))
            .where(m.sender_kind == SenderKind.AGENT, m.sender_user_id.is_not(None),
                   m.created_at >= start, m.created_at < end)
            .group_by(m.sender_user_id, sent_bucket))
    rows: dict[tuple[int, datetime], dict[str, Any]] = {}
    for stmt in (closed, sent):
        for r in db.session.execute(stmt).mappings():
            row = _row(r)
            rows.setdefault((row["agent_id"], row["bucket"]), {}).update(row)
    return [{"handled": 0, "messages_sent": 0, "first_response_count": 0, "first_response_sum": 0.0,
             "handle_count": 0, "handle_sum": 0.0, **row} for row in rows.values()]


def _state_rows(start: datetime, end: datetime, now: datetime) -> list[dict[str, Any]]:
    a = AgentStateSpan
    spans = db.session.execute(sa.select(a.agent_id, a.state, a.break_type_id, a.on_call, a.started_at, a.ended_at)
                               .where(a.state != AgentState.DISCONNECTED.value, a.started_at < end,
                                      sa.or_(a.ended_at.is_(None), a.ended_at > start)))
    seconds: dict[tuple[Any, ...], float] = defaultdict(float)
    for span in spans:
        key = (span.agent_id, span.state, span.break_type_id or 0, bool(span.on_call))
        for bucket, length in split(max(span.started_at, start), min(span.ended_at or now, end, now)):
            seconds[(key[0], bucket, *key[1:])] += length
    return [{"agent_id": k[0], "bucket": k[1], "state": k[2], "break_type_id": k[3], "on_call": k[4],
             "seconds": v} for k, v in seconds.items() if v > 0]


def split(begin: datetime, finish: datetime) -> Iterator[tuple[datetime, float]]:
    """The seconds of [begin, finish) that fall in each bucket."""
    bucket = floor(begin)
    while bucket < finish:
        nxt = bucket + BUCKET
        yield bucket, (min(nxt, finish) - max(bucket, begin)).total_seconds()
        bucket = nxt


def _dialer_rows(start: datetime, end: datetime) -> list[dict[str, Any]]:
    sp, st = SpoolMessage, SpoolState
    states = {"failed": st.FAILED, "blocked": st.BLOCKED, "invalid": st.INVALID, "cancelled": st.CANCELLED}
    rows: dict[tuple[int, datetime], dict[str, Any]] = {}
    for column, figures in ((sp.created_at, [sa.func.count().label("loaded")] + [
            sa.func.count().filter(sp.state == value).label(name) for name, value in states.items()]),
            (sp.sent_at, [sa.func.count().label("sent")]),
            (sp.delivered_at, [sa.func.count().label("delivered")]),
            (sp.read_at, [sa.func.count().label("read")]),
            (sp.replied_at, [sa.func.count().label("replied")])):
        bucket = bucket_of(column).label("bucket")
        stmt = (sa.select(sp.dialer_id, bucket, *figures).where(column >= start, column < end)
                .group_by(sp.dialer_id, bucket))
        for r in db.session.execute(stmt).mappings():
            row = _row(r)
            rows.setdefault((row["dialer_id"], row["bucket"]), {}).update(row)
    blank = dict.fromkeys(("loaded", "sent", "delivered", "read", "replied", *states), 0)
    return [{**blank, **row} for row in rows.values()]


def _failure_rows(start: datetime, end: datetime) -> list[dict[str, Any]]:
    sp = SpoolMessage
    bucket = bucket_of(sp.created_at).label("bucket")
    reason = sa.func.substr(sa.func.coalesce(sp.last_error, ""), 1, 120).label("reason")
    stmt = (sa.select(sp.dialer_id, bucket, reason, sa.func.count().label("failed"))
            .where(sp.state == SpoolState.FAILED, sp.created_at >= start, sp.created_at < end)
            .group_by(sp.dialer_id, bucket, reason))
    return [_row(r) for r in db.session.execute(stmt).mappings()]


def _row(mapping: Any) -> dict[str, Any]:
    row = {k: (float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, int) else v)
           for k, v in dict(mapping).items()}
    row["bucket"] = _as_datetime(row["bucket"])
    return {k: (0 if v is None else v) for k, v in row.items()}


# -- keeping them up to date ---------------------------------------------------------------------------
def _redis() -> Any:
    return current_app.extensions["conversa_redis"]


def last_refresh() -> datetime | None:
    value = _redis().get(REFRESHED_KEY)
    return datetime.fromisoformat(value.decode() if isinstance(value, bytes) else value) if value else None


def refresh(now: datetime | None = None) -> int:
    """Recompute what may have changed since the last refresh; returns the buckets recomputed. The caller
    commits, then calls `mark_refreshed(now)` (a failed run leaves the mark where it was)."""
    now = now or clock.now()
    hours = current_app.config.get("REPORT_LOOKBACK_HOURS", 48)
    since = last_refresh() or now - timedelta(hours=hours)
    window_start = floor(min(since, now) - BUCKET)
    older = {floor(t) for t in _changing_since(since, now) if t < window_start}
    ranges = merge_ranges(sorted(older)) + [(window_start, floor(now) + BUCKET)]
    for begin, finish in ranges:
        recompute(begin, finish, now)
    return sum(int((finish - begin) / BUCKET) for begin, finish in ranges)


def mark_refreshed(now: datetime) -> None:
    _redis().set(REFRESHED_KEY, now.isoformat())


def _changing_since(since: datetime, now: datetime) -> Iterable[datetime]:
    """Times inside older buckets that may read differently now."""
    i, a, sp = Interaction, AgentStateSpan, SpoolMessage
    yield from db.session.scalars(sa.select(i.created_at).where(sa.or_(
        i.status.in_(InteractionStatus.OPEN), i.closed_at >= since)))
    for started, ended in db.session.execute(sa.select(a.started_at, a.ended_at).where(
            a.state != AgentState.DISCONNECTED.value, sa.or_(a.ended_at.is_(None), a.ended_at >= since))):
        yield from (bucket for bucket, _ in split(started, ended or now))
    yield from db.session.scalars(sa.select(sp.created_at).where(sa.or_(sp.sent_at >= since,
                                                                        sp.delivered_at >= since)))


def merge_ranges(buckets: list[datetime], gap: int = 4) -> list[tuple[datetime, datetime]]:
    """Sorted bucket starts as [start, end) ranges; buckets at most `gap` apart go in one range."""
    ranges: list[list[datetime]] = []
    for bucket in buckets:
        if ranges and bucket - ranges[-1][1] <= gap * BUCKET:
            ranges[-1][1] = bucket + BUCKET
        else:
            ranges.append([bucket, bucket + BUCKET])
    return [(begin, finish) for begin, finish in ranges]


def rebuild(now: datetime | None = None, chunk: timedelta = timedelta(days=7)) -> int:
    """Every rollup row again from the raw rows (deletes what is there first); returns buckets covered.
    The caller commits (and marks the refresh)."""
    now = now or clock.now()
    for table in TABLES:
        db.session.execute(sa.delete(table))
    firsts = [db.session.scalar(sa.select(sa.func.min(col))) for col in (
        Interaction.created_at, AgentStateSpan.started_at, SpoolMessage.created_at, Message.created_at)]
    firsts = [t for t in firsts if t is not None]
    if not firsts:
        return 0
    begin, finish = floor(min(firsts)), floor(now) + BUCKET
    cursor = begin
    while cursor < finish:
        recompute(cursor, min(cursor + chunk, finish), now)
        cursor += chunk
    return int((finish - begin) / BUCKET)

