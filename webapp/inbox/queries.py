"""What the agent workspace reads: each query starts from an indexed column (agent, interaction, status)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import (
    RINGALL_MODES,
    AgentChatMessage,
    BreakType,
    Campaign,
    CannedResponse,
    Interaction,
    InteractionStatus,
    Membership,
    Message,
    User,
)
from ..services import media
from ..services.chat import unread_chat

LIST_OPEN_LIMIT = 100
LIST_CLOSED_LIMIT = 30
MESSAGES_LIMIT = 200


@dataclass
class InboxItem:
    interaction: Interaction
    campaign_name: str
    last_body: str
    last_kind: str | None
    last_media: list[dict[str, Any]] | None = None

    @property
    def media_label(self) -> str | None:
        """What the last message carries when it has no text: its first item's kind (W1, both ways)."""
        first = self.last_media[0] if self.last_media and isinstance(self.last_media[0], dict) else None
        if first is None:
            return None
        return "voice" if first.get("voice") else str(first.get("kind") or "document")

    @property
    def waiting_since(self) -> datetime | None:
        """An open conversation whose last word is the customer's is waiting for the agent."""
        i = self.interaction
        if i.is_open and self.last_kind == "customer":
            return i.last_customer_message_at or i.last_message_at
        return None


def _with_last_message(chosen_rows: sa.Select | sa.CompoundSelect) -> sa.Select:
    """Items of the chosen rows (interaction id, last_message_at, part) in list order, each with its newest
    message: one index lookup per listed row, after the limits."""
    chosen = chosen_rows.subquery()
    last = aliased(Message)
    last_id = sa.select(Message.id).where(Message.interaction_id == chosen.c.id).order_by(
        Message.created_at.desc(), Message.id.desc()).limit(1).scalar_subquery()
    return (sa.select(Interaction, Campaign.name, last.body, last.sender_kind, last.media)
            .join(chosen, chosen.c.id == Interaction.id)
            .join(Campaign, Campaign.id == Interaction.campaign_id)
            .outerjoin(last, last.id == last_id)
            .order_by(chosen.c.part, chosen.c.last_message_at.desc(), chosen.c.id.desc()))


def _part(n: int, statuses: tuple[str, ...], limit: int, search: bool) -> sa.Subquery:
    query = (sa.select(Interaction.id, Interaction.last_message_at, sa.literal(n).label("part"))
             .where(Interaction.agent_id == sa.bindparam("agent_id"), Interaction.status.in_(statuses)))
    if search:
        # Campaign name, customer name or number; the agent filter comes first, so only their rows are
        # scanned. Without digits in the search `digits` is NULL and the number matches nothing.
        query = query.join(Campaign, Campaign.id == Interaction.campaign_id).where(sa.or_(
            sa.func.lower(Campaign.name).like(sa.bindparam("like")),
            sa.func.lower(Interaction.customer_name).like(sa.bindparam("like")),
            Interaction.customer_number.like(sa.bindparam("digits", type_=sa.String))))
    # Each part keeps its own order and limit inside a subquery (SQLite refuses them on union members).
    return query.order_by(Interaction.last_message_at.desc(), Interaction.id.desc()).limit(limit).subquery()


@functools.cache
def _inbox_statement(search: bool) -> sa.Select:
    """Built once: the list's statement is the same for every agent and search but for its parameters."""
    open_part = _part(0, InteractionStatus.WITH_AGENT, LIST_OPEN_LIMIT, search)
    closed_part = _part(1, (InteractionStatus.CLOSED, InteractionStatus.ABANDONED), LIST_CLOSED_LIMIT, search)
    return _with_last_message(sa.union_all(sa.select(open_part), sa.select(closed_part)))


def inbox_items(agent_id: int, q: str = "") -> list[InboxItem]:
    """The agent's open conversations (newest activity first), then their latest closed ones: one query."""
    q = q.strip()
    params: dict[str, object] = {"agent_id": agent_id}
    if q:
        digits = "".join(ch for ch in q if ch.isdigit())
        params.update(like=f"%{q.lower()}%", digits=f"%{digits}%" if digits else None)
    return [InboxItem(*row) for row in db.session.execute(_inbox_statement(bool(q)), params).all()]


def inbox_item(interaction_id: int) -> InboxItem | None:
    """One list item, whoever's it is (the live renderer checks the owner)."""
    row = db.session.execute(_item_statement(), {"interaction_id": interaction_id}).first()
    return InboxItem(*row) if row else None


@functools.cache
def _item_statement() -> sa.Select:
    return _with_last_message(sa.select(Interaction.id, Interaction.last_message_at, sa.literal(0).label("part"))
                              .where(Interaction.id == sa.bindparam("interaction_id")))


def offers(agent_id: int, campaigns: list[Campaign] | None = None) -> list[tuple[Interaction, str]]:
    """Ringall interactions waiting in the agent's campaigns (C1.1): any member may take one.
    Given the agent's campaigns (the workspace has them), no query runs when none of them rings all."""
    if campaigns is not None:
        ringall = [c.id for c in campaigns if c.strategy in RINGALL_MODES and c.enabled]
        if not ringall:
            return []
    return [tuple(r) for r in db.session.execute(
        sa.select(Interaction, Campaign.name)
        .join(Campaign, Campaign.id == Interaction.campaign_id)
        .join(Membership, sa.and_(Membership.campaign_id == Campaign.id, Membership.user_id == agent_id))
        .where(Interaction.status == InteractionStatus.WAITING, Interaction.agent_id.is_(None),
               Campaign.strategy.in_(RINGALL_MODES), Campaign.enabled.is_(True))
        .order_by(Interaction.created_at).limit(50)).all()]


def ringall_campaign_ids(agent_id: int) -> list[int]:
    return list(db.session.scalars(
        sa.select(Campaign.id).join(Membership, Membership.campaign_id == Campaign.id)
        .where(Membership.user_id == agent_id, Campaign.strategy.in_(RINGALL_MODES)).order_by(Campaign.id)))


def messages(interaction_id: int, limit: int = MESSAGES_LIMIT) -> list[Message]:
    """The latest `limit` messages, oldest first."""
    latest = db.session.scalars(
        sa.select(Message).where(Message.interaction_id == interaction_id)
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)).all()
    return media.preload(list(reversed(latest)))


def messages_with_names(interaction_id: int, limit: int = MESSAGES_LIMIT) -> tuple[list[Message], dict[int, str]]:
    """`messages()` and their writers' names (`User.shown_name`, as `interactions.sender_names` gives them)
    in one query that reads only the two name columns."""
    rows = db.session.execute(_messages_statement(limit), {"interaction_id": interaction_id}).all()
    names = {m.sender_user_id: User.shown_name(name, username) for m, name, username in rows
             if m.sender_user_id and username}
    return media.preload([m for m, _, _ in reversed(rows)]), names


@functools.cache
def _messages_statement(limit: int) -> sa.Select:
    """Built once per limit (the workspace's statements are the same for every agent but for parameters)."""
    return (sa.select(Message, User.name, User.username).outerjoin(User, User.id == Message.sender_user_id)
            .where(Message.interaction_id == sa.bindparam("interaction_id"))
            .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit))


def canned_responses(campaign_id: int) -> list[CannedResponse]:
    return list(db.session.scalars(_canned_statement(), {"campaign_id": campaign_id}))


@functools.cache
def _canned_statement() -> sa.Select:
    return (sa.select(CannedResponse).where(CannedResponse.campaign_id == sa.bindparam("campaign_id"))
            .order_by(CannedResponse.position, CannedResponse.id))


def agent_campaigns(agent_id: int) -> list[Campaign]:
    return list(db.session.scalars(_agent_campaigns_statement(), {"agent_id": agent_id}))


@functools.cache
def _agent_campaigns_statement() -> sa.Select:
    return (sa.select(Campaign).join(Membership, Membership.campaign_id == Campaign.id)
            .where(Membership.user_id == sa.bindparam("agent_id")).order_by(Campaign.name))


@functools.cache
def _break_types_statement() -> sa.Select:
    return sa.select(BreakType).where(BreakType.enabled.is_(True)).order_by(BreakType.name)


def break_types() -> list[BreakType]:
    return list(db.session.scalars(_break_types_statement()))


def _chat_unread_count(agent_id: int | sa.BindParameter[int]) -> sa.Select:
    return sa.select(sa.func.count(AgentChatMessage.id)).where(unread_chat(agent_id))


def chat_unread(agent_id: int) -> int:
    return db.session.scalar(_chat_unread_count(agent_id)) or 0


def chat_lines_and_unread(agent_id: int, limit: int = 50) -> tuple[list[AgentChatMessage], int]:
    """The agent's latest supervisor-chat lines (oldest first) and `chat_unread()`, in one query: unread
    lines are some of the agent's lines, so with no line at all there is nothing unread either."""
    rows = db.session.execute(_chat_statement(limit), {"agent_id": agent_id}).all()
    return [line for line, _ in reversed(rows)], (rows[0][1] or 0) if rows else 0


@functools.cache
def _chat_statement(limit: int) -> sa.Select:
    agent_id = sa.bindparam("agent_id")
    return (sa.select(AgentChatMessage, _chat_unread_count(agent_id).correlate(None).scalar_subquery())
            .where(AgentChatMessage.agent_id == agent_id)
            .order_by(AgentChatMessage.created_at.desc(), AgentChatMessage.id.desc()).limit(limit))

