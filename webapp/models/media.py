"""W1 and W2: what customers send besides text (kept in the media store), and the providers' WhatsApp
template catalog."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import created_at_column, utcnow


class AttachmentState:
    PENDING = "pending"  # being downloaded from the provider ("downloading…")
    READY = "ready"  # in the media store (or nothing to store: a location, a contact card)
    FAILED = "failed"  # every attempt failed, or the provider no longer has it
    REFUSED = "refused"  # larger than WhatsApp allows for its kind: not kept, with the reason

    ALL = (PENDING, READY, FAILED, REFUSED)


class AttachmentKind:
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"

    FILES = (IMAGE, AUDIO, VIDEO, DOCUMENT, STICKER)
    ALL = (*FILES, LOCATION, CONTACTS)


class Attachment(db.Model):
    """One item of a message besides its text: a file kept in the media store, a location or contact cards."""

    __tablename__ = "attachments"
    __table_args__ = (
        # The recovery pass looks for downloads whose job was lost.
        sa.Index("ix_attachments_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[int | None] = mapped_column(sa.ForeignKey("providers.id", ondelete="SET NULL"))
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(sa.String(16))
    state: Mapped[str] = mapped_column(sa.String(16), default=AttachmentState.PENDING)
    # Where the provider has it: {"id": Meta media id} / {"url": Twilio MediaUrl} / {"sample": sandbox file}.
    source: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    content_type: Mapped[str] = mapped_column(sa.String(120), default="")
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    storage_key: Mapped[str | None] = mapped_column(sa.String(255))
    width: Mapped[int | None] = mapped_column()
    height: Mapped[int | None] = mapped_column()
    thumb_key: Mapped[str | None] = mapped_column(sa.String(255))
    thumb_width: Mapped[int | None] = mapped_column()
    thumb_height: Mapped[int | None] = mapped_column()
    # Kind-specific: location {latitude, longitude, name, address}; contacts {contacts: [{name, phones}]};
    # audio {voice}; sticker {animated}; refused {limit, size}.
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    error: Mapped[str | None] = mapped_column(sa.String(500))
    attempts: Mapped[int] = mapped_column(default=0)
    # No fetch may start before this (a running one's lease, or the retry's backoff).
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()
    fetched_at: Mapped[datetime | None] = mapped_column()

    message = relationship("Message", back_populates="attachments")

    @property
    def is_file(self) -> bool:
        return self.kind in AttachmentKind.FILES


class WhatsAppTemplate(db.Model):
    """W2: one approved-or-not template of a WhatsApp provider, as its provider last reported it."""

    __tablename__ = "whatsapp_templates"
    __table_args__ = (
        sa.UniqueConstraint("provider_id", "external_id", name="uq_whatsapp_templates_provider_external"),
        sa.Index("ix_whatsapp_templates_provider_name", "provider_id", "name", "language"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("providers.id", ondelete="CASCADE"))
    # Meta's template id, or Twilio's ContentSid (HX…).
    external_id: Mapped[str] = mapped_column(sa.String(80))
    name: Mapped[str] = mapped_column(sa.String(512))
    language: Mapped[str] = mapped_column(sa.String(16), default="")
    category: Mapped[str] = mapped_column(sa.String(32), default="")  # marketing / utility / authentication
    # approved, pending, rejected, paused, disabled (and deleted: no longer at the provider).
    status: Mapped[str] = mapped_column(sa.String(32), default="pending")
    quality: Mapped[str] = mapped_column(sa.String(16), default="")  # green / yellow / red / unknown
    reason: Mapped[str | None] = mapped_column(sa.String(500))  # why rejected or paused, as the provider says
    body: Mapped[str] = mapped_column(sa.Text, default="")
    variables: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # "1", "2"… in order of appearance
    # {"format": "text"|"image"|"video"|"document"|"location", "text": …} or None
    header: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    footer: Mapped[str | None] = mapped_column(sa.Text)
    buttons: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)  # [{type, text, url|phone}]
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def ref(self) -> str:
        """What a send names: Twilio's ContentSid, Meta's template name."""
        return self.external_id if self.external_id.startswith("HX") else self.name
