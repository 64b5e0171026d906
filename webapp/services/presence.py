"""Agent presence (A4): busy or free follows the agent's open interactions; every change is announced.

The lowest layer of the agent services: routing and the conversation services call `refresh_busy`
after they hand out or take back work; `agents` (sign-in, breaks, on call) sits above routing.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from ..live.events import publish
from ..models import AgentState, Interaction, InteractionStatus, User
from . import agent_states
from .agent_states import Cause


def active_count(user: User) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(Interaction.id)).where(
            Interaction.agent_id == user.id,
            Interaction.status.in_(InteractionStatus.WITH_AGENT))) or 0


def announce(user: User) -> None:
    """The agent's own page, and the monitors of each of the agent's security groups."""
    publish(f"user:{user.id}", "agent.state", agent_id=user.id)
    for group in user.security_groups:
        publish(f"group:{group.id}", "agent.state", agent_id=user.id)


def refresh_busy(user: User) -> bool:
    """Busy/free follows the agent's open interactions; breaks and sign-out stay as they are."""
    state = user.agent_state
    if state is AgentState.DISCONNECTED:
        return False
    busy = active_count(user) > 0
    if state.in_break:
        target = AgentState.BUSY_BREAK if busy else AgentState.FREE_BREAK
    else:
        target = AgentState.BUSY if busy else AgentState.FREE
    changed = agent_states.record_state(user, target, Cause.ROUTING, break_type_id=user.break_type_id)
    if changed:
        announce(user)
    return changed
