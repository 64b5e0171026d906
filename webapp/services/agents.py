"""Agent state (A4): sign-in, sign-out, breaks and busy/free, each change timestamped and published."""
from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from ..live.events import publish
from ..models import AgentState, Interaction, InteractionStatus, User
from . import accounts


def active_count(user: User) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(Interaction.id)).where(
            Interaction.agent_id == user.id,
            Interaction.status.in_((InteractionStatus.ASSIGNED, InteractionStatus.ACTIVE)))) or 0


def _announce(user: User) -> None:
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
    changed = accounts.set_state(user, target, user.break_type_id)
    if changed:
        _announce(user)
    return changed


def on_login(user: User) -> None:
    if user.is_agent and user.agent_state is AgentState.DISCONNECTED:
        accounts.set_state(user, AgentState.FREE)
        refresh_busy(user)
        _announce(user)
        _route_later(user)


def on_logout(user: User) -> None:
    if user.is_agent:
        from . import routing

        routing.release_unanswered(user)
        accounts.set_state(user, AgentState.DISCONNECTED)
        _announce(user)


def start_break(user: User, break_type_id: int) -> None:
    from . import routing

    routing.release_unanswered(user)
    busy = active_count(user) > 0
    accounts.set_state(user, AgentState.BUSY_BREAK if busy else AgentState.FREE_BREAK, break_type_id)
    _announce(user)


def end_break(user: User) -> None:
    busy = active_count(user) > 0
    accounts.set_state(user, AgentState.BUSY if busy else AgentState.FREE)
    _announce(user)
    _route_later(user)


def set_on_call(user: User, on_call: bool) -> None:
    from .time import now

    if user.on_call != on_call:
        user.on_call = on_call
        user.on_call_changed_at = now()
        _announce(user)
        if not on_call:
            _route_later(user)


def _route_later(user: User) -> None:
    """A freed agent may take waiting interactions: routing runs after the commit."""
    from . import routing

    publish("routing", "routing.agent_free", agent_id=user.id)
    routing.request_routing(None)
