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
