"""S2: what a supervisor does to an agent. Each action leaves an audit entry (who, whom, what, when).

The caller has already checked that the supervisor may see the agent (security.get_agent_or_404)
and commits; live events go out after that commit.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..live.events import publish_now
from ..models import (
    AgentChatMessage,
    BreakType,
    Campaign,
    Interaction,
    InteractionStatus,
    Membership,
    Message,
    User,
)
from . import accounts, agents, audit, chat, media, stats
from .agent_states import Cause
from .routing import HandBack

# S2 monitor screen: the agent's page writes what it shows here (`store_screen`), the monitor reads it.
SCREEN_KEY = "conversa:screen:{agent_id}"
SCREEN_TTL = 30  # seconds: a mirror of a page that went away fades quickly


class SupervisionError(ValueError):
    """An action that cannot be done as asked; the message is shown to the supervisor."""


def _record(supervisor: User, action: str, agent: User, **detail: Any) -> None:
    audit.record(supervisor, action, "user", agent.id, agent=agent.username, **detail)


def pause_agent(supervisor: User, agent: User, break_type_id: int,
                to: User | None = None) -> tuple[BreakType, HandBack]:
    """Put the agent in the chosen break now (their unanswered interactions go back to the queue, or to
    the agent `to` the supervisor chose)."""
    break_type = db.session.get(BreakType, break_type_id)
    if break_type is None or not break_type.enabled:
        raise SupervisionError(_l("Choose a break type."))
    if not agent.agent_state.connected:
        raise SupervisionError(_l("The agent is not signed in."))
    _check_target(agent, to)
    moved = agents.start_break(agent, break_type.id, Cause.SUPERVISOR, to=to)
    _record(supervisor, "agent.pause", agent, break_type=break_type.name, **_moved_detail(moved))
    return break_type, moved


def resume_agent(supervisor: User, agent: User) -> None:
    """End the agent's break."""
    if not agent.agent_state.in_break:
        raise SupervisionError(_l("The agent is not in a break."))
    agents.end_break(agent, Cause.SUPERVISOR)
    _record(supervisor, "agent.resume", agent)


def logout_agent(supervisor: User, agent: User, to: User | None = None) -> HandBack:
    """End every session of the agent now: HTTP requests go to sign-in (session_version), the
    agent's socket closes and redirects (session.ended), and every open conversation (answered or
    not) goes back to the queue, or to the agent `to` the supervisor chose. Returns what went where."""
    _check_target(agent, to)
    accounts.end_all_sessions(agent)
    moved = agents.on_logout(agent, Cause.SUPERVISOR, to=to) or HandBack()
    _record(supervisor, "agent.logout", agent, **_moved_detail(moved))
    return moved


def _check_target(agent: User, to: User | None) -> None:
    """A conversation whose campaign `to` cannot take now goes to the queue instead (routing.hand_back)."""
    if to is not None and to.id == agent.id:
        raise SupervisionError(_l("Choose another agent to hand the conversations to."))


def moved_text(moved: HandBack) -> list[str]:
    """What went where, for the supervisor who made the agent leave."""
    lines = []
    if moved.queued:
        lines.append(ngettext("%(num)d conversation went back to the queue.",
                              "%(num)d conversations went back to the queue.", len(moved.queued)))
    if moved.to_agent:
        lines.append(ngettext("%(num)d conversation went to %(name)s.", "%(num)d conversations went to %(name)s.",
                              len(moved.to_agent), name=moved.agent_name))
    return lines


def _moved_detail(moved: HandBack) -> dict[str, Any]:
    return {"requeued": [i for i, _ in moved.queued], "handed_to": [i for i, _ in moved.to_agent]}


def send_chat(supervisor: User, agent: User, body: str) -> AgentChatMessage:
    """A supervisor's chat line to an agent (`chat.write_line`), audited."""
    if not (body or "").strip():
        raise SupervisionError(_l("Write a message."))
    line = chat.write_line(agent, supervisor, body)
    _record(supervisor, "agent.chat", agent, chat_id=line.id)
    return line


def chat_history(agent: User, limit: int = 100) -> list[AgentChatMessage]:
    """The last `limit` chat lines with this agent (any supervisor's and the agent's), oldest first."""
    rows = db.session.scalars(
        sa.select(AgentChatMessage).where(AgentChatMessage.agent_id == agent.id)
        .options(joinedload(AgentChatMessage.author))
        .order_by(AgentChatMessage.created_at.desc(), AgentChatMessage.id.desc()).limit(limit)).all()
    return list(reversed(rows))


def record_view(supervisor: User, agent: User, what: str, **detail: Any) -> None:
    """Spying, mirroring a screen and reading an agent's details are audited too."""
    _record(supervisor, f"agent.{what}", agent, **detail)


def open_interactions(agent: User) -> list[Interaction]:
    """The agent's open conversations (what spy shows), oldest first."""
    return list(db.session.scalars(
        sa.select(Interaction).where(Interaction.agent_id == agent.id, Interaction.status.in_(InteractionStatus.WITH_AGENT))
        .options(joinedload(Interaction.campaign))
        .order_by(Interaction.created_at, Interaction.id)))


def recent_messages(interaction: Interaction, limit: int = 200) -> list[Any]:
    """The last `limit` messages of a conversation, oldest first, senders loaded."""
    rows = db.session.scalars(
        sa.select(Message).where(Message.interaction_id == interaction.id)
        .options(joinedload(Message.sender))
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)).all()
    return media.preload(list(reversed(rows)))


def ensure_screen_allowed(agent: User) -> None:
    if not agent.monitor_screen_allowed:
        raise SupervisionError(_l("Screen monitoring is not enabled for this agent (Settings → Agents)."))


@dataclass
class ScreenState:
    interaction: Interaction | None
    draft: str
    updated_at: float | None


def screen_state(agent: User, event_data: dict[str, Any] | None = None) -> ScreenState:
    """What the agent's workspace shows: the open conversation and the draft being typed.

    The agent page keeps it in Redis `conversa:screen:<agent>` (a hash or a JSON object with
    interaction_id and draft); an event's own data wins when it carries them.
    """
    data: dict[str, Any] = {}
    try:
        data = _read_screen(current_app.extensions["conversa_redis"], SCREEN_KEY.format(agent_id=agent.id))
    except Exception:  # noqa: BLE001 - Redis down: show what the event says
        data = {}
    if event_data:
        data.update({k: v for k, v in event_data.items() if k in ("interaction_id", "draft") and v is not None})
    interaction = None
    raw_id = data.get("interaction_id")
    if raw_id not in (None, "", "None"):
        try:
            interaction = db.session.get(Interaction, int(raw_id))
        except (TypeError, ValueError):
            interaction = None
        # Only a conversation of this agent's is shown, whatever the key says.
        if interaction is not None and interaction.agent_id != agent.id:
            interaction = None
    updated = data.get("updated_at") or data.get("ts")
    try:
        updated_at = float(updated) if updated is not None else None
    except (TypeError, ValueError):
        updated_at = None
    return ScreenState(interaction=interaction, draft=str(data.get("draft") or ""), updated_at=updated_at)


def store_screen(agent: User, interaction_id: int | None, draft: str) -> None:
    """The agent's page shows this conversation (or none) with this draft: kept for SCREEN_TTL, announced
    on `screen:<agent>` at once. Redis down: the mirror pauses, the agent's page does not."""
    state = {"agent_id": agent.id, "interaction_id": interaction_id, "draft": draft, "ts": time.time()}
    try:
        current_app.extensions["conversa_redis"].set(SCREEN_KEY.format(agent_id=agent.id), json.dumps(state),
                                                     ex=SCREEN_TTL)
    except Exception:  # noqa: BLE001 - see above
        return
    publish_now(f"screen:{agent.id}", "screen.state", agent_id=agent.id, interaction_id=interaction_id,
                draft=draft)


def _read_screen(client: Any, key: str) -> dict[str, Any]:
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "hash":
        return {_text(k): _text(v) for k, v in client.hgetall(key).items()}
    if kind == "string":
        raw = client.get(key)
        try:
            value = json.loads(_text(raw))
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def agent_info(agent: User, now: datetime | None = None) -> dict[str, Any]:
    """Everything about an agent on one card: identity, groups, campaigns (order, penalty),
    state and since when, break, on call, today's figures, last sign-in."""
    memberships = db.session.execute(
        sa.select(Campaign.id, Campaign.name, Membership.position, Membership.penalty)
        .join(Membership, Membership.campaign_id == Campaign.id)
        .where(Membership.user_id == agent.id).order_by(Campaign.name)).all()
    return {
        "agent": agent,
        "groups": sorted(g.name for g in agent.security_groups),
        "campaigns": [{"id": r.id, "name": r.name, "position": r.position, "penalty": r.penalty}
                      for r in memberships],
        "today": stats.agent_today(agent.id, now=now),
    }
