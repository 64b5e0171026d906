"""Reports (issue 15): the history of agent states, and the rollups the reports read."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class AgentStateSpan(db.Model):
    """One stretch of an agent in one state (A4 state, break type, on a call), from `started_at` to
    `ended_at` (empty while it lasts), and what began it (`services/agent_states.Cause`). Written only by
    `services/agent_states.record_state` / `record_on_call`: the next change ends the open row."""

    __tablename__ = "agent_states"
    __table_args__ = (
        sa.Index("ix_agent_states_agent_started", "agent_id", "started_at"),
        sa.Index("ix_agent_states_agent_ended", "agent_id", "ended_at"),
        sa.Index("ix_agent_states_ended", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(sa.String(16))
    break_type_id: Mapped[int | None] = mapped_column(sa.ForeignKey("break_types.id", ondelete="SET NULL"))
    on_call: Mapped[bool] = mapped_column(default=False)
    cause: Mapped[str] = mapped_column(sa.String(24))
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()


# -- rollups: 15-minute buckets (naive UTC start), kept by services/report_rollups.py -----------------
# Reports group them into hours, days, weeks and months of the centre's time zone; 15 minutes keeps that
# right for zones whose offset is not a whole hour. Every row can be rebuilt from the raw tables.
def _count() -> Mapped[int]:
    return mapped_column(default=0)


def _seconds() -> Mapped[float]:
    return mapped_column(sa.Float, default=0.0)


class CampaignBucket(db.Model):
    """Conversations of a campaign that arrived (created_at) in the bucket, as they stand now."""

    __tablename__ = "report_campaign_buckets"

    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    offered: Mapped[int] = _count()
    answered: Mapped[int] = _count()
    answered_in_sl: Mapped[int] = _count()
    abandoned: Mapped[int] = _count()
    wait_count: Mapped[int] = _count()
    wait_sum: Mapped[float] = _seconds()
    wait_max: Mapped[float] = _seconds()
    # Waits by range: ≤30 s, ≤1 min, ≤2 min, ≤5 min, ≤10 min, longer (report_rollups.WAIT_EDGES).
    wait_h0: Mapped[int] = _count()
    wait_h1: Mapped[int] = _count()
    wait_h2: Mapped[int] = _count()
    wait_h3: Mapped[int] = _count()
    wait_h4: Mapped[int] = _count()
    wait_h5: Mapped[int] = _count()
    first_response_sum: Mapped[float] = _seconds()
    handle_count: Mapped[int] = _count()
    handle_sum: Mapped[float] = _seconds()
    closed: Mapped[int] = _count()
    transferred: Mapped[int] = _count()
    out_of_hours: Mapped[int] = _count()
    long_chats: Mapped[int] = _count()


class DispositionBucket(db.Model):
    """Conversations closed (closed_at) in the bucket, by campaign and disposition."""

    __tablename__ = "report_disposition_buckets"

    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    disposition: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    closed: Mapped[int] = _count()


class AgentDispositionBucket(db.Model):
    """Conversations an agent closed (closed_at) in the bucket, by disposition."""

    __tablename__ = "report_agent_disposition_buckets"

    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    disposition: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    closed: Mapped[int] = _count()


class AgentBucket(db.Model):
    """An agent's work in the bucket: conversations closed (closed_at), messages sent (created_at)."""

    __tablename__ = "report_agent_buckets"

    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    handled: Mapped[int] = _count()
    messages_sent: Mapped[int] = _count()
    first_response_count: Mapped[int] = _count()
    first_response_sum: Mapped[float] = _seconds()
    handle_count: Mapped[int] = _count()
    handle_sum: Mapped[float] = _seconds()


class AgentStateBucket(db.Model):
    """Seconds an agent spent in one state (state, break type or 0, on a call) within the bucket."""

    __tablename__ = "report_agent_state_buckets"

    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    break_type_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    on_call: Mapped[bool] = mapped_column(primary_key=True)
    seconds: Mapped[float] = _seconds()


class DialerBucket(db.Model):
    """A dialer's messages: loaded (created_at), sent (sent_at), delivered (delivered_at), read (read_at),
    replied (replied_at) in the bucket; blocked / invalid / failed / cancelled as they stand now, by the bucket they were loaded in."""

    __tablename__ = "report_dialer_buckets"

    dialer_id: Mapped[int] = mapped_column(sa.ForeignKey("dialers.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    loaded: Mapped[int] = _count()
    sent: Mapped[int] = _count()
    delivered: Mapped[int] = _count()
    read: Mapped[int] = _count()
    replied: Mapped[int] = _count()
    failed: Mapped[int] = _count()
    blocked: Mapped[int] = _count()
    invalid: Mapped[int] = _count()
    cancelled: Mapped[int] = _count()


class DialerFailureBucket(db.Model):
    """Failed messages by the error the gateway gave (first 120 characters), by bucket loaded."""

    __tablename__ = "report_dialer_failure_buckets"

    dialer_id: Mapped[int] = mapped_column(sa.ForeignKey("dialers.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    failed: Mapped[int] = _count()
