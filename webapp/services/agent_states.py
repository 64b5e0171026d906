"""A4 / issue 15: the one place an agent's state changes, and its history.

Every change of `User.state`, `User.break_type_id` or `User.on_call` goes through `record_state` or
`record_on_call`. Each ends the agent's open `AgentStateSpan` row (ended_at = `at`) and opens the next
one with its cause, so the time an agent spent in each state on a day is a query over `agent_states`.
Nothing is written when nothing changes (the same state, break and call flag).

Callers (`presence`, `agents`, and a presence-timeout disconnect) add to the session and commit
themselves, like every service. The lowest layer of the agent services: it imports no other service.
"""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa

from ..extensions import db
from ..models import AgentState, AgentStateSpan, User
from . import time as clock


class Cause(enum.StrEnum):
    """Who or what began a state."""

    AGENT = "agent"  # the agent: sign-in, sign-out, a break, the on-call toggle
    SUPERVISOR = "supervisor"  # a supervisor's pause, resume or log-out (S2)
    PRESENCE_TIMEOUT = "presence_timeout"  # the agent's browser stopped answering: disconnected
    ROUTING = "routing"  # busy/free following the agent's conversations (presence.refresh_busy)
    VOICE = "voice"  # the voice platform's API set or cleared "on a call"


def record_state(agent: User, state: AgentState, cause: Cause | str, at: datetime | None = None, *,
                 break_type_id: int | None = None) -> bool:
    """Put `agent` in `state` (with `break_type_id` when it is a break, ignored otherwise) at `at`
    (naive UTC, default now), caused by `cause`; returns whether anything changed.

    Sets `User.state`, `break_type_id` and `state_changed_at` (which moves only on a real change) and
    keeps the history: the open span ends at `at`, a new one starts. Signing out is
    `record_state(agent, AgentState.DISCONNECTED, Cause.…)`; on a call is `record_on_call`.
    Does not announce (`presence.announce`) nor route: the callers in `agents` / `presence` do.
    """
    break_type_id = break_type_id if state.in_break else None
    if agent.state == state.value and agent.break_type_id == break_type_id:
        return False
    at = at or clock.now()
    agent.state = state.value
    agent.break_type_id = break_type_id
    agent.state_changed_at = at
    _open_span(agent, Cause(cause), at)
    return True


def record_on_call(agent: User, on_call: bool, cause: Cause | str, at: datetime | None = None) -> bool:
    """The agent starts or ends a call on the voice side (their state stays as it is); kept like a
    state change. Returns whether it changed."""
    if agent.on_call == on_call:
        return False
    at = at or clock.now()
    agent.on_call = on_call
    agent.on_call_changed_at = at
    _open_span(agent, Cause(cause), at)
    return True


def _open_span(agent: User, cause: Cause, at: datetime) -> None:
    # The user's row is written first: it is locked until commit, so two processes changing the same
    # agent at once take turns and the second one ends the span the first one opened.
    db.session.flush()
    db.session.execute(sa.update(AgentStateSpan)
                       .where(AgentStateSpan.agent_id == agent.id, AgentStateSpan.ended_at.is_(None))
                       .values(ended_at=sa.case((AgentStateSpan.started_at > at, AgentStateSpan.started_at),
                                                else_=at)))
    db.session.add(AgentStateSpan(agent_id=agent.id, state=agent.state, break_type_id=agent.break_type_id,
                                  on_call=bool(agent.on_call), cause=cause.value, started_at=at))
