"""Agent state (A4): sign-in, sign-out, breaks and on call, each change kept with its cause and published.

Busy/free, which follows the agent's interactions, is `presence.refresh_busy`; an agent leaving hands
back what they have not answered (`routing.release_unanswered`), an agent freed asks for routing.
Every change is written by `agent_states.record_state` / `record_on_call` (the history, issue 15);
`cause` says who did it: the agent (default), a supervisor, or a presence timeout (`on_logout`).
"""
from __future__ import annotations

from ..live.events import publish
from ..models import AgentState, User
from . import agent_states, presence, routing
from .agent_states import Cause


def on_login(user: User) -> None:
    if user.is_agent and user.agent_state is AgentState.DISCONNECTED:
        agent_states.record_state(user, AgentState.FREE, Cause.AGENT)
        presence.refresh_busy(user)
        presence.announce(user)
        _route_later(user)


def on_logout(user: User, cause: Cause = Cause.AGENT) -> None:
    """The agent leaves (signs out, is logged out by a supervisor, or timed out): unanswered work
    goes back to the queue, the state becomes disconnected."""
    if user.is_agent:
        routing.release_unanswered(user)
        agent_states.record_state(user, AgentState.DISCONNECTED, cause)
        presence.announce(user)


def start_break(user: User, break_type_id: int, cause: Cause = Cause.AGENT) -> None:
    routing.release_unanswered(user)
    busy = presence.active_count(user) > 0
    agent_states.record_state(user, AgentState.BUSY_BREAK if busy else AgentState.FREE_BREAK, cause,
                              break_type_id=break_type_id)
    presence.announce(user)


def end_break(user: User, cause: Cause = Cause.AGENT) -> None:
    busy = presence.active_count(user) > 0
    agent_states.record_state(user, AgentState.BUSY if busy else AgentState.FREE, cause)
    presence.announce(user)
    _route_later(user)


def set_on_call(user: User, on_call: bool, cause: Cause = Cause.AGENT) -> None:
    if agent_states.record_on_call(user, on_call, cause):
        presence.announce(user)
        if not on_call:
            _route_later(user)


def _route_later(user: User) -> None:
    """A freed agent may take waiting interactions: routing runs after the commit."""
    publish("routing", "routing.agent_free", agent_id=user.id)
    routing.request_routing(None)
