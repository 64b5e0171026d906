"""Agent state (A4): sign-in, sign-out, breaks and on call, each change timestamped and published.

Busy/free, which follows the agent's interactions, is `presence.refresh_busy`; an agent leaving hands
back what they have not answered (`routing.release_unanswered`), an agent freed asks for routing.
"""
from __future__ import annotations

from ..live.events import publish
from ..models import AgentState, User
from . import accounts, presence, routing
from .time import now


def on_login(user: User) -> None:
    if user.is_agent and user.agent_state is AgentState.DISCONNECTED:
        accounts.set_state(user, AgentState.FREE)
        presence.refresh_busy(user)
        presence.announce(user)
        _route_later(user)


def on_logout(user: User) -> None:
    if user.is_agent:
        routing.release_unanswered(user)
        accounts.set_state(user, AgentState.DISCONNECTED)
        presence.announce(user)


def start_break(user: User, break_type_id: int) -> None:
    routing.release_unanswered(user)
    busy = presence.active_count(user) > 0
    accounts.set_state(user, AgentState.BUSY_BREAK if busy else AgentState.FREE_BREAK, break_type_id)
    presence.announce(user)


def end_break(user: User) -> None:
    busy = presence.active_count(user) > 0
    accounts.set_state(user, AgentState.BUSY if busy else AgentState.FREE)
    presence.announce(user)
    _route_later(user)


def set_on_call(user: User, on_call: bool) -> None:
    if user.on_call != on_call:
        user.on_call = on_call
        user.on_call_changed_at = now()
        presence.announce(user)
        if not on_call:
            _route_later(user)


def _route_later(user: User) -> None:
    """A freed agent may take waiting interactions: routing runs after the commit."""
    publish("routing", "routing.agent_free", agent_id=user.id)
    routing.request_routing(None)
