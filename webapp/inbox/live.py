"""The agent workspace on the socket: who may follow what, events → OOB fragments, what the page sends up.

Renderers get the socket's user detached from the session: they read fresh rows by id and never walk
the user's relationships. Fragments rendered here carry no CSRF field (one rendering may serve several
sessions): the page's htmx sends the token as a header.
"""
from __future__ import annotations

import time
from typing import Any

from flask import current_app, g, render_template

from ..extensions import db
from ..live.registry import allowed, client_handler, renderer, topic_check
from ..models import AgentChatMessage, Interaction, Membership, Message, User
from ..security import can_see_interaction
from ..services import interactions, supervision
from ..templating import oob_remove
from . import queries
from .context import state_context

DRAFT_MAX = 2000
DRAFT_MIN_INTERVAL = 0.3  # the page sends every 700 ms; a faster client is throttled here
FOLLOWABLE = ("interaction", "offers")


def _id(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _topic_id(event: dict[str, Any]) -> int | None:
    return _id(str(event.get("topic", "")).partition(":")[2])


# -- who may follow what ----------------------------------------------------------------
@topic_check("interaction")
def may_follow_interaction(user: Any, rest: str) -> bool:
    """The rule of get_interaction_or_404: own (or offered) for agents, the group's for supervisors."""
    interaction_id = _id(rest)
    viewer = db.session.get(User, user.id)
    interaction = db.session.get(Interaction, interaction_id) if interaction_id else None
    return bool(viewer and interaction and can_see_interaction(viewer, interaction))


@topic_check("offers")
def may_follow_offers(user: Any, rest: str) -> bool:
    campaign_id = _id(rest)
    if campaign_id is None:
        return False
    return db.session.query(Membership.id).filter_by(campaign_id=campaign_id, user_id=user.id).first() is not None


# -- events → fragments ---------------------------------------------------------------------
@renderer("user", "interaction.assigned")
@renderer("user", "interaction.updated")
def render_item(event: dict[str, Any], user: Any) -> str | None:
    interaction_id = _id(event["data"].get("interaction_id"))
    item = queries.inbox_item(interaction_id) if interaction_id else None
    if item is None or item.interaction.agent_id != _topic_id(event):
        return _removed(interaction_id) if interaction_id else None
    return render_template("inbox/_item_oob.html", item=item, move=item.interaction.is_open, live=True)


@renderer("user", "interaction.removed")
def render_removed(event: dict[str, Any], user: Any) -> str | None:
    interaction_id = _id(event["data"].get("interaction_id"))
    return _removed(interaction_id) if interaction_id else None


def _removed(interaction_id: int) -> str:
    return render_template("inbox/_removed_oob.html", interaction_id=interaction_id)


@renderer("interaction", "message.new")
def render_message(event: dict[str, Any], user: Any) -> str | None:
    message = db.session.get(Message, _id(event["data"].get("message_id")) or 0)
    if message is None:
        return None
    return render_template("inbox/_message_oob.html", m=message, names=interactions.sender_names([message]),
                           interaction_id=message.interaction_id)


@renderer("interaction", "message.status")
def render_status(event: dict[str, Any], user: Any) -> str | None:
    message = db.session.get(Message, _id(event["data"].get("message_id")) or 0)
    if message is None:
        return None
    return render_template("inbox/_status.html", m=message, oob=True)


@renderer("user", "agent.state")
def render_state(event: dict[str, Any], user: Any) -> str | None:
    agent = db.session.get(User, _topic_id(event) or 0)
    if agent is None:
        return None
    return render_template("inbox/_state.html", oob=True, live=True, **state_context(agent))


@renderer("user", "chat.message")
def render_chat(event: dict[str, Any], user: Any) -> str | None:
    line = db.session.get(AgentChatMessage, _id(event["data"].get("chat_id")) or 0)
    if line is None or line.agent_id != _topic_id(event):
        return None
    author = db.session.get(User, line.author_id) if line.author_id else None
    return render_template("inbox/_chat_oob.html", line=line,
                           chat_authors={author.id: author.display_name} if author else {},
                           chat_unread=queries.chat_unread(line.agent_id))


@renderer("offers", "interaction.offered")
def render_offer(event: dict[str, Any], user: Any) -> str | None:
    interaction = db.session.get(Interaction, _id(event["data"].get("interaction_id")) or 0)
    if interaction is None or interaction.agent_id is not None or not interaction.is_open:
        return None
    return render_template("inbox/_offer_oob.html", offer=(interaction, interaction.campaign.name), live=True)


@renderer("offers", "interaction.taken")
def render_taken(event: dict[str, Any], user: Any) -> str | None:
    interaction_id = _id(event["data"].get("interaction_id"))
    if interaction_id is None:
        return None
    return oob_remove(f"offer-{interaction_id}")


# -- what the page sends up ---------------------------------------------------------------------
@client_handler("follow")
def follow(user: Any, payload: dict[str, Any]) -> None:
    """The page opened another conversation: follow its topic, drop the one it left."""
    sub = g.get("live_subscriber")
    topics = payload.get("topics")
    if sub is None or not isinstance(topics, list):
        return
    wanted = {t for t in topics[:20] if isinstance(t, str) and t.partition(":")[0] in FOLLOWABLE}
    granted = {t for t in wanted if allowed(user, t)}
    hub = current_app.extensions["conversa_hub"]
    hub.remove_topics(sub, {t for t in sub.topics if t.startswith("interaction:")} - granted)
    hub.add_topics(sub, granted)


@client_handler("draft")
def draft(user: Any, payload: dict[str, Any]) -> None:
    """S2 monitor screen: the open conversation and the draft, only for agents who allow the mirror."""
    now = time.monotonic()
    if now - g.get("inbox_last_draft", 0.0) < DRAFT_MIN_INTERVAL:
        return
    g.inbox_last_draft = now
    agent = db.session.get(User, user.id)
    if agent is None or not agent.is_agent or not agent.monitor_screen_allowed:
        return
    interaction_id = _id(payload.get("interaction_id"))
    if interaction_id is not None:
        interaction = db.session.get(Interaction, interaction_id)
        if interaction is None or not can_see_interaction(agent, interaction):
            interaction_id = None
    text = payload.get("draft")
    text = text[:DRAFT_MAX] if isinstance(text, str) and interaction_id else ""
    supervision.store_screen(agent, interaction_id, text)
