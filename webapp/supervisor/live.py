"""Supervision's part of the socket: who may follow campaign/group/screen/chat topics, and how their
events become out-of-band fragments with stable ids (campaign-<id>-stats, waiting-<id>, agent-<id>-row,
screen-<agent>, chat-line-<id>).

Renderers are shared by every viewer of a topic (one rendering per language), so they depend only on
the event and the database, never on who watches; the topic check already decided who may watch.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import render_template

from ..extensions import db
from ..live.registry import renderer, topic_check
from ..models import (
    AgentChatMessage,
    Campaign,
    Interaction,
    InteractionStatus,
    User,
    user_security_groups_table,
)
from ..security import visible_agents, visible_campaigns
from ..services import interactions, stats, supervision
from ..templating import oob_remove


def _int(rest: str) -> int | None:
    return int(rest) if rest.isdigit() else None


@topic_check("campaign")
def campaign_topic(user: Any, rest: str) -> bool:
    campaign_id = _int(rest)
    if campaign_id is None or not user.may_supervise:
        return False
    return db.session.scalar(visible_campaigns(user).with_only_columns(Campaign.id).order_by(None)
                             .where(Campaign.id == campaign_id)) is not None


@topic_check("group")
def group_topic(user: Any, rest: str) -> bool:
    group_id = _int(rest)
    if group_id is None or not user.may_supervise:
        return False
    return user.sees_group(group_id)


def _visible_agent(user: Any, rest: str) -> User | None:
    agent_id = _int(rest)
    if agent_id is None or not user.may_supervise:
        return None
    return db.session.scalar(visible_agents(user).where(User.id == agent_id))


@topic_check("chat")
def chat_topic(user: Any, rest: str) -> bool:
    return _visible_agent(user, rest) is not None


@topic_check("screen")
def screen_topic(user: Any, rest: str) -> bool:
    agent = _visible_agent(user, rest)
    return agent is not None and agent.monitor_screen_allowed


def _topic_id(event: dict[str, Any]) -> int | None:
    return _int(str(event.get("topic", "")).partition(":")[2])


def _agents_in_group(agent_ids: set[int], group_id: int) -> list[int]:
    if not agent_ids:
        return []
    return list(db.session.scalars(sa.select(user_security_groups_table.c.user_id).where(
        user_security_groups_table.c.user_id.in_(agent_ids),
        user_security_groups_table.c.security_group_id == group_id)))


def agent_row_html(agent_ids: list[int]) -> str:
    return "".join(render_template("supervisor/_agent_row.html", a=row, oob=True)
                   for row in stats.agent_rows(agent_ids=agent_ids))


@renderer("campaign", "interaction.changed")
def render_interaction_changed(event: dict[str, Any], user: Any) -> list[str] | None:
    """A conversation of the campaign changed: its stats block, its waiting row, its agent's row.
    Two frames: the agent rows are table rows, which the browser keeps only at the start of a frame."""
    campaign_id = _topic_id(event)
    if campaign_id is None:
        return None
    parts = [render_template("supervisor/_campaign_stats.html", s=s, oob=True)
             for s in stats.campaign_stats([campaign_id])]
    data = event.get("data") or {}
    interaction_id = _int(str(data.get("interaction_id", "")))
    agent_ids = {_int(str(data[k])) for k in ("agent_id", "previous_agent_id") if data.get(k) is not None}
    rows = ""
    if interaction_id is not None:
        parts.append(oob_remove(f"waiting-{interaction_id}"))
        row = db.session.execute(sa.select(Interaction.agent_id, Interaction.status, Campaign.security_group_id)
                                 .join(Campaign, Campaign.id == Interaction.campaign_id)
                                 .where(Interaction.id == interaction_id)).first()
        if row is not None:
            if row.status == InteractionStatus.WAITING:
                parts.extend(render_template("supervisor/_waiting_row.html", w=w, oob=True)
                             for w in stats.waiting_rows(interaction_ids=[interaction_id]))
            agent_ids.add(row.agent_id)
            # Only agents of the campaign's own group: every viewer of this topic may see them.
            agent_ids.discard(None)
            rows = agent_row_html(_agents_in_group({a for a in agent_ids if a}, row.security_group_id))
    return ["".join(parts), rows]


@renderer("group", "agent.state")
def render_agent_state(event: dict[str, Any], user: Any) -> str | None:
    """An agent of the group changed state (or break, or on-call): their monitor row."""
    agent_id = _int(str((event.get("data") or {}).get("agent_id", "")))
    group_id = _topic_id(event)
    if agent_id is None or group_id is None or not _agents_in_group({agent_id}, group_id):
        return None
    return agent_row_html([agent_id])


@renderer("screen", "screen.state")
def render_screen(event: dict[str, Any], user: Any) -> str | None:
    """The mirror of an agent's workspace: open conversation and draft."""
    agent = db.session.get(User, _topic_id(event) or 0)
    if agent is None or not agent.monitor_screen_allowed:
        return None
    state = supervision.screen_state(agent, event.get("data") or {})
    messages = supervision.recent_messages(state.interaction, limit=20) if state.interaction else []
    return render_template("supervisor/_screen_body.html", agent=agent, screen=state, messages=messages,
                           names=interactions.sender_names(messages), oob=True)


@renderer("chat", "chat.message")
def render_chat(event: dict[str, Any], user: Any) -> str | None:
    """A chat line (from a supervisor or from the agent) appended to every open chat with that agent."""
    chat_id = _int(str((event.get("data") or {}).get("chat_id", "")))
    line = db.session.get(AgentChatMessage, chat_id or 0)
    if line is None or line.agent_id != _topic_id(event):
        return None
    return (f'<div hx-swap-oob="beforeend:#chat-log-{line.agent_id}">'
            + render_template("supervisor/_chat_line.html", line=line) + "</div>")
