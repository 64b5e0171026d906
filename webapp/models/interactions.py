"""A and S: conversations with customers, their messages, and supervisor↔agent chat."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import created_at_column, utcnow
from .campaigns import Campaign
from .users import User


class InteractionStatus:
    WAITING = "waiting"  # in the queue, no agent yet
    ASSIGNED = "assigned"  # routed to an agent who has not answered yet
    ACTIVE = "active"  # the agent is working it
    CLOSED = "closed"
    ABANDONED = "abandoned"

    WITH_AGENT = (ASSIGNED, ACTIVE)  # an agent's "active interactions" (routing, busy, the monitor, the inbox)
    OPEN = (WAITING, ASSIGNED, ACTIVE)
    ALL = (WAITING, ASSIGNED, ACTIVE, CLOSED, ABANDONED)


class SenderKind:
    CUSTOMER = "customer"
    AGENT = "agent"
    BOT = "bot"
    SUPERVISOR = "supervisor"

    ALL = (CUSTOMER, AGENT, BOT, SUPERVISOR)


class Interaction(db.Model):
    __tablename__ = "interactions"
    __table_args__ = (
        sa.Index("ix_interactions_customer", "campaign_id", "customer_number", "status"),
        sa.Index("ix_interactions_agent_status", "agent_id", "status", "last_message_at"),
        sa.Index("ix_interactions_status_created", "status", "created_at"),
        # S1: the monitor counts what closed today.
        sa.Index("ix_interactions_status_closed", "status", "closed_at"),
        # Reports: the rollup job reads interactions by arrival time.
        sa.Index("ix_interactions_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_number: Mapped[str] = mapped_column(sa.String(32))
    customer_name: Mapped[str] = mapped_column(sa.String(120), default="")
    channel: Mapped[str] = mapped_column(sa.String(16), default="sms")
    direction: Mapped[str] = mapped_column(sa.String(16), default="inbound")
    status: Mapped[str] = mapped_column(sa.String(16), default=InteractionStatus.WAITING)
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # Who had it before it went back to the queue (an agent leaving): the monitor shows it.
    previous_agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()
    # When it entered the queue (creation, or the last requeue/transfer).
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    assigned_at: Mapped[datetime | None] = mapped_column()
    first_reply_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    disposition: Mapped[str | None] = mapped_column(sa.String(80))
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    # WhatsApp's 24 h window runs from this.
    last_customer_message_at: Mapped[datetime | None] = mapped_column()
    out_of_hours_sent: Mapped[bool] = mapped_column(default=False)
    # Times it was handed to another agent or campaign (A5), for the reports.
    transfers: Mapped[int] = mapped_column(default=0, server_default="0")
    unread: Mapped[int] = mapped_column(default=0)

    campaign: Mapped[Campaign] = relationship()
    agent: Mapped[User | None] = relationship(foreign_keys=[agent_id])
    previous_agent: Mapped[User | None] = relationship(foreign_keys=[previous_agent_id])
    messages: Mapped[list[Message]] = relationship(
        back_populates="interaction", order_by="(Message.created_at, Message.id)",
        cascade="all, delete-orphan", lazy="dynamic")

    @property
    def is_open(self) -> bool:
        return self.status in InteractionStatus.OPEN


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        # The same provider message delivered twice makes one message.
        sa.UniqueConstraint("provider_id", "provider_message_id", name="uq_messages_provider_message"),
        sa.Index("ix_messages_interaction_created", "interaction_id", "created_at"),
        sa.Index("ix_messages_created", "created_at"),  # reports: messages sent per agent
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(sa.ForeignKey("interactions.id", ondelete="CASCADE"))
    sender_kind: Mapped[str] = mapped_column(sa.String(16))
    sender_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    media: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    provider_id: Mapped[int | None] = mapped_column(sa.ForeignKey("providers.id", ondelete="SET NULL"))
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(80))
    # WhatsApp outside the 24 h window: the approved template sent instead of free text.
    template_ref: Mapped[str | None] = mapped_column(sa.String(120))
    # W3: a template send's {"template_id", "language", "variables": {"1": …}, "header": "image"?}.
    template_params: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # Issue 13.8: the message this one answers (a customer's tap on a button or list row, a quoted reply).
    reply_to_id: Mapped[int | None] = mapped_column(sa.ForeignKey("messages.id", ondelete="SET NULL"))
    # Outbound: queued → sent → delivered → read, or failed; inbound: received.
    status: Mapped[str] = mapped_column(sa.String(16), default="received")
    error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = created_at_column()

    interaction: Mapped[Interaction] = relationship(back_populates="messages")
    sender: Mapped[User | None] = relationship()
    # Loaded with the message (one outer join), one level deep: the bubble quotes what it answers.
    reply_to: Mapped[Message | None] = relationship(remote_side="Message.id", lazy="joined", join_depth=1)
    # W1: loaded only where `media` says there is something (a list of messages pays no query for it).
    attachments = relationship("Attachment", back_populates="message", order_by="Attachment.position",
                               cascade="all, delete-orphan", passive_deletes=True)


class AgentChatMessage(db.Model):
    """S2: a supervisor ↔ agent chat line."""

    __tablename__ = "agent_chat_messages"
    __table_args__ = (sa.Index("ix_agent_chat_agent_created", "agent_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = created_at_column()
    read_at: Mapped[datetime | None] = mapped_column()

    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
