"""What the agent workspace reads: each query starts from an indexed column (agent, interaction, status)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

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
    Role,
    User,
)

LIST_OPEN_LIMIT = 100
LIST_CLOSED_LIMIT = 30
MESSAGES_LIMIT = 200
ACTIVE = (InteractionStatus.ASSIGNED, InteractionStatus.ACTIVE)


@dataclass
class InboxItem:
    interaction: Interaction
    campaign_name: str
    last_body: str
    last_kind: str | None

    @property
    def waiting_since(self) -> datetime | None:
        """An open conversation whose last word is the customer's is waiting for the agent."""
        i = self.interaction
        if i.is_open and self.last_kind == "customer":
            return i.last_customer_message_at or i.last_message_at
        return None


def _last_message(column: sa.ColumnElement) -> sa.ScalarSelect:
    return (sa.select(column).where(Message.interaction_id == Interaction.id)
            .order_by(Message.created_at.desc(), Message.id.desc()).limit(1).scalar_subquery())


def _search(query: sa.Select, q: str) -> sa.Select:
    """Campaign name, customer name or number. The agent filter comes first, so only their rows are scanned."""
    like = f"%{q.lower()}%"
    digits = "".join(ch for ch in q if ch.isdigit())
    conditions = [sa.func.lower(Campaign.name).like(like), sa.func.lower(Interaction.customer_name).like(like)]
    if digits:
        conditions.append(Interaction.customer_number.like(f"%{digits}%"))
    return query.where(sa.or_(*conditions))


def inbox_items(agent_id: int, q: str = "", ids: list[int] | None = None) -> list[InboxItem]:
    """The agent's open conversations (newest activity first), then their latest closed ones."""
    base = (sa.select(Interaction, Campaign.name, _last_message(Message.body), _last_message(Message.sender_kind))
            .join(Campaign, Campaign.id == Interaction.campaign_id)
            .where(Interaction.agent_id == agent_id))
    if ids is not None:
        rows = db.session.execute(base.where(Interaction.id.in_(ids))).all()
        return [InboxItem(*row) for row in rows]
    q = q.strip()
    if q:
        base = _search(base, q)
    order = (Interaction.last_message_at.desc(), Interaction.id.desc())
    open_rows = db.session.execute(
        base.where(Interaction.status.in_(ACTIVE)).order_by(*order).limit(LIST_OPEN_LIMIT)).all()
    closed_rows = db.session.execute(
        base.where(Interaction.status.in_((InteractionStatus.CLOSED, InteractionStatus.ABANDONED)))
        .order_by(*order).limit(LIST_CLOSED_LIMIT)).all()
    return [InboxItem(*row) for row in (*open_rows, *closed_rows)]


def inbox_item(interaction_id: int) -> InboxItem | None:
    row = db.session.execute(
        sa.select(Interaction, Campaign.name, _last_message(Message.body), _last_message(Message.sender_kind))
        .join(Campaign, Campaign.id == Interaction.campaign_id).where(Interaction.id == interaction_id)).first()
    return InboxItem(*row) if row else None


def offers(agent_id: int) -> list[tuple[Interaction, str]]:
    """Ringall interactions waiting in the agent's campaigns (C1.1): any member may take one."""
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
    return list(reversed(latest))


def sender_names(items: list[Message]) -> dict[int, str]:
    ids = {m.sender_user_id for m in items if m.sender_user_id}
    if not ids:
        return {}
    return {u.id: u.display_name for u in db.session.scalars(sa.select(User).where(User.id.in_(ids)))}


def canned_responses(campaign_id: int) -> list[CannedResponse]:
    return list(db.session.scalars(
        sa.select(CannedResponse).where(CannedResponse.campaign_id == campaign_id)
        .order_by(CannedResponse.position, CannedResponse.id)))


def transfer_agents(interaction: Interaction, agent_id: int) -> list[User]:
    """Other members of the interaction's campaign, connected ones first."""
    return list(db.session.scalars(
        sa.select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.campaign_id == interaction.campaign_id, User.id != agent_id,
               User.role == Role.AGENT, User.active.is_(True))
        .order_by((User.state == "disconnected"), User.name, User.username)))


def agent_campaigns(agent_id: int) -> list[Campaign]:
    return list(db.session.scalars(
        sa.select(Campaign).join(Membership, Membership.campaign_id == Campaign.id)
        .where(Membership.user_id == agent_id).order_by(Campaign.name)))


def break_types() -> list[BreakType]:
    return list(db.session.scalars(sa.select(BreakType).where(BreakType.enabled.is_(True))
                                   .order_by(BreakType.name)))


def chat_lines(agent_id: int, limit: int = 50) -> list[AgentChatMessage]:
    latest = db.session.scalars(
        sa.select(AgentChatMessage).where(AgentChatMessage.agent_id == agent_id)
        .order_by(AgentChatMessage.created_at.desc(), AgentChatMessage.id.desc()).limit(limit)).all()
    return list(reversed(latest))


def chat_unread(agent_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(AgentChatMessage.id)).where(
            AgentChatMessage.agent_id == agent_id, AgentChatMessage.read_at.is_(None),
            sa.or_(AgentChatMessage.author_id.is_(None), AgentChatMessage.author_id != agent_id))) or 0


def unread_total(agent_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Interaction.unread), 0))
        .where(Interaction.agent_id == agent_id, Interaction.status.in_(ACTIVE))) or 0
