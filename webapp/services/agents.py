"""Agent state (A4): sign-in, sign-out, breaks, on call and the presence sweep, each change kept with its
cause and published.

Busy/free, which follows the agent's interactions, is `presence.refresh_busy`. Every way an agent
leaves hands back what must not wait (`routing.hand_back`: on a break the conversations not answered
yet; on sign-out, a supervisor's log-out or a presence timeout all of them), to the queue or to the
agent a supervisor names, and leaves the agent a notice of what went where (`leave_notice`, shown on
their workspace until dismissed). An agent freed asks for routing.
Every change is written by `agent_states.record_state` / `record_on_call` (the history, issue 15);
`cause` says who did it: the agent (default), a supervisor, or a presence timeout.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

import sqlalchemy as sa
from flask import current_app

from .. import after_commit
from ..extensions import db
from ..live.events import publish
from ..models import AgentState, Role, User
from . import agent_states, presence, routing
from .agent_states import Cause

log = logging.getLogger(__name__)

NOTICE_KEY = "conversa:handback:{agent_id}"
HANDBACK_NOTICE = "handback.notice"  # the after-commit kind
NOTICE_SECONDS = 7 * 24 * 3600
# Why an agent left, as their notice says it.
BREAK, LOGOUT, FORCED_LOGOUT, PRESENCE_TIMEOUT = "break", "logout", "forced logout", "presence timeout"


def on_login(user: User) -> None:
    if not user.is_agent:
        return
    presence.signed_in(user.id)
    if user.agent_state is AgentState.DISCONNECTED:
        _connect(user, Cause.AGENT)


def on_logout(user: User, cause: Cause = Cause.AGENT, *, to: User | None = None) -> routing.HandBack | None:
    """Sign-out (the agent's own, or a supervisor's: `Cause.SUPERVISOR`): every open conversation goes
    to the queue or to `to`; the state becomes disconnected."""
    if not user.is_agent:
        return None
    moved = routing.hand_back(user, answered=True, to=to)
    agent_states.record_state(user, AgentState.DISCONNECTED, cause)
    presence.forget(user.id)
    _leave_notice(user, FORCED_LOGOUT if cause is Cause.SUPERVISOR else LOGOUT, moved)
    presence.announce(user)
    return moved


def start_break(user: User, break_type_id: int, cause: Cause = Cause.AGENT, *,
                to: User | None = None) -> routing.HandBack:
    """A break: what the agent has not answered goes (to the queue or to `to`); they finish the rest."""
    moved = routing.hand_back(user, answered=False, to=to)
    busy = presence.active_count(user) > 0
    agent_states.record_state(user, AgentState.BUSY_BREAK if busy else AgentState.FREE_BREAK, cause,
                              break_type_id=break_type_id)
    _leave_notice(user, BREAK, moved)
    presence.announce(user)
    return moved


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


def _connect(user: User, cause: Cause) -> None:
    agent_states.record_state(user, AgentState.FREE, cause)
    presence.refresh_busy(user)
    presence.announce(user)
    _route_later(user)


def _route_later(user: User) -> None:
    """A freed agent may take waiting interactions: routing runs after the commit."""
    publish("routing", "routing.agent_free", agent_id=user.id)
    routing.request_routing(None)


# -- presence (issue 12.1) --------------------------------------------------------------------------
def sweep_presence() -> list[int]:
    """The clock's sweep (one worker at a time): signed-in agents with no live page past the grace are
    disconnected, their conversations back to the queue. Returns their ids; each is committed alone."""
    connected = list(db.session.scalars(sa.select(User.id).where(
        User.role == Role.AGENT, User.state != AgentState.DISCONNECTED.value)))
    db.session.rollback()
    gone = []
    for agent_id in presence.lapsed(connected):
        user = db.session.get(User, agent_id, populate_existing=True)
        if user is not None and user.agent_state.connected:
            routing.lock_routing()  # no routing pass hands them a conversation meanwhile
            db.session.refresh(user)
            if user.agent_state.connected:
                on_presence_timeout(user)
                gone.append(agent_id)
        db.session.commit()
    return gone


def on_presence_timeout(user: User) -> routing.HandBack:
    """No page of the agent has been live for the grace: disconnected, like a sign-out they did not do
    (their session stays: a page that comes back brings them back, `page_back`)."""
    moved = routing.hand_back(user, answered=True)
    agent_states.record_state(user, AgentState.DISCONNECTED, Cause.PRESENCE_TIMEOUT)
    _leave_notice(user, PRESENCE_TIMEOUT, moved)
    presence.announce(user)
    log.info("agent %s disconnected: no live page for %.0f s", user.id, presence.grace())
    return moved


def page_back(agent_id: int) -> bool:
    """A page of an agent the sweep disconnected is live again: connected (free) again. The caller
    commits. False while the sweep's disconnection is not committed yet (the next beat retries)."""
    user = db.session.get(User, agent_id, populate_existing=True)
    if user is None or not user.active:
        presence.back(agent_id)
        return False
    if user.agent_state is not AgentState.DISCONNECTED:
        return False
    _connect(user, Cause.AGENT)
    presence.back(agent_id)
    return True


def page_alive(user: Any, page: str) -> None:
    """A beat from one of an agent's pages (socket or workspace request); brings a lapsed agent back."""
    if not getattr(user, "is_agent", False):
        return
    try:
        lapsed = presence.beat(user.id, page)
    except Exception as exc:  # noqa: BLE001 - Redis away: the sweep cannot run either
        log.warning("presence beat for %s failed: %s", user.id, exc)
        return
    if lapsed and page_back(user.id):
        db.session.commit()


# -- what went where -------------------------------------------------------------------------------
def _leave_notice(user: User, cause: str, moved: routing.HandBack) -> None:
    """Kept in Redis for the agent's workspace (any process), replacing an older one, once the hand-back
    commits (a rolled-back one said nothing); nothing moved, nothing to say."""
    if not moved.ids:
        return
    notice = {"cause": cause, "at": time.time(), "queued": [n for _, n in moved.queued],
              "to_agent": [n for _, n in moved.to_agent], "agent_name": moved.agent_name}
    after_commit.defer(HANDBACK_NOTICE, (user.id, notice))


@after_commit.sender(HANDBACK_NOTICE)
def _store_notices(items: list[tuple[int, dict[str, Any]]]) -> None:
    try:
        with current_app.extensions["conversa_redis"].pipeline(transaction=False) as pipe:
            for agent_id, notice in items:
                pipe.set(NOTICE_KEY.format(agent_id=agent_id), json.dumps(notice), ex=NOTICE_SECONDS)
            pipe.execute()
    except Exception as exc:  # noqa: BLE001 - the hand-back itself is in the database
        log.warning("hand-back notices for %s not kept: %s", [a for a, _ in items], exc)


def leave_notice(agent_id: int) -> dict[str, Any] | None:
    """The last hand-back notice of the agent, until dismissed."""
    try:
        raw = current_app.extensions["conversa_redis"].get(NOTICE_KEY.format(agent_id=agent_id))
        return json.loads(raw) if raw else None
    except Exception:  # noqa: BLE001 - Redis away or a broken value: no notice
        return None


def dismiss_notice(agent_id: int) -> None:
    current_app.extensions["conversa_redis"].delete(NOTICE_KEY.format(agent_id=agent_id))
