"""D and F: dialers, the outbound spool, uploads and the do-not-contact list."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import created_at_column, utcnow
from .campaigns import ScheduleEntry
from .providers import Provider
from .users import SecurityGroup


class SpoolState:
    """D3: a spool message's states. 0, 1 and 3 are the manual's; the rest fill its gaps."""

    NONE = 0
    TO_PROCESS = 1
    SENT = 2
    BLOCKED = 3
    INVALID = 4
    FAILED = 5
    CANCELLED = 6
    DELIVERED = 7

    NAMES = {0: "none", 1: "to_process", 2: "sent", 3: "blocked", 4: "invalid", 5: "failed",
             6: "cancelled", 7: "delivered"}
    # States a message never leaves by itself; later callbacks only move SENT forward.
    FINAL = frozenset({BLOCKED, INVALID, FAILED, CANCELLED, DELIVERED})
    # S4 Delete cancels everything not yet processed, errored and blocked ones included.
    CANCELLABLE = frozenset({NONE, TO_PROCESS, BLOCKED, INVALID, FAILED})


class Dialer(db.Model):
    __tablename__ = "dialers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    security_group_id: Mapped[int] = mapped_column(sa.ForeignKey("security_groups.id"), index=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("providers.id"), index=True)
    # D1: as typed ("(0.3)") and parsed into the ports used in turn.
    dial_string: Mapped[str] = mapped_column(sa.String(64), default="")
    ports: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    interval_ms: Mapped[int] = mapped_column(default=1000)
    enabled: Mapped[bool] = mapped_column(default=False)
    dncr: Mapped[bool] = mapped_column(default=True)
    # Stop/Start on the dashboard; it only sends while enabled and running.
    running: Mapped[bool] = mapped_column(default=False)
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = created_at_column()

    security_group: Mapped[SecurityGroup] = relationship()
    provider: Mapped[Provider] = relationship()
    schedule: Mapped[list[ScheduleEntry]] = relationship(
        cascade="all, delete-orphan", order_by=ScheduleEntry.id,
        primaryjoin="ScheduleEntry.dialer_id == Dialer.id")

    @property
    def active(self) -> bool:
        return self.enabled and self.running


class SpoolUpload(db.Model):
    """One accepted file (bulk or do-not-contact): who loaded what, and the counts."""

    __tablename__ = "spool_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    dialer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("dialers.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16), default="bulk")  # bulk | dnc
    filename: Mapped[str] = mapped_column(sa.String(120))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    counts: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = created_at_column()


class LoadState:
    """A staged bulk file's life: previewed, then claimed by one confirm and queued for a worker, then
    loaded (done), refused by a rule (refused) or given up after its worker was lost too often (failed)."""

    STAGED = "staged"
    QUEUED = "queued"
    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"

    FINISHED = (DONE, REFUSED, FAILED)


class StagedUpload(db.Model):
    """A bulk file between its preview and its load, then the record of that load (at most an hour). In
    the database, so that any web machine can confirm what another one previewed, and any one can show
    the load's state; its bytes are in StagedUploadChunk rows until it is loaded."""

    __tablename__ = "staged_uploads"

    token: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    dialer_id: Mapped[int] = mapped_column(sa.ForeignKey("dialers.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = created_at_column(index=True)
    # LoadState; one confirm moves it from "staged" (a conditional UPDATE only one request can win).
    state: Mapped[str] = mapped_column(sa.String(16), default=LoadState.STAGED, server_default=LoadState.STAGED)
    rows_total: Mapped[int | None] = mapped_column()  # counted by the preview
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    locale: Mapped[str | None] = mapped_column(sa.String(8))  # of the user who confirmed: the job's language
    # Each (re)queued run of the load has its number; a run of an older number loads nothing.
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    claimed_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # the summary, or the refusal


class StagedUploadChunk(db.Model):
    """One piece (1 MiB, the last one shorter) of a staged file, read back in `seq` order."""

    __tablename__ = "staged_upload_chunks"

    token: Mapped[str] = mapped_column(sa.ForeignKey("staged_uploads.token", ondelete="CASCADE"),
                                       primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class SpoolMessage(db.Model):
    __tablename__ = "sms_spool"
    __table_args__ = (
        # The claim query: next TO PROCESS of a dialer by priority, then entry order.
        sa.Index("ix_sms_spool_claim", "dialer_id", "state", sa.text("priority DESC"), "id"),
        sa.Index("ix_sms_spool_provider_message_id", "provider_message_id"),
        # Reports: the rollup job reads messages loaded, sent and delivered in a time range.
        sa.Index("ix_sms_spool_created", "created_at"),
        sa.Index("ix_sms_spool_sent", "sent_at"),
        sa.Index("ix_sms_spool_delivered", "delivered_at"),
        sa.Index("ix_sms_spool_read", "read_at"),
        sa.Index("ix_sms_spool_replied", "replied_at"),
        # W5 Replied: the customer's latest message sent to that number (services/dialer/replies.py).
        sa.Index("ix_sms_spool_destination_sent", "destination", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dialer_id: Mapped[int] = mapped_column(sa.ForeignKey("dialers.id", ondelete="CASCADE"))
    upload_id: Mapped[int | None] = mapped_column(sa.ForeignKey("spool_uploads.id", ondelete="SET NULL"))
    destination: Mapped[str] = mapped_column(sa.String(32))  # E.164 when valid, as given otherwise
    body: Mapped[str] = mapped_column(sa.Text)
    priority: Mapped[int] = mapped_column(default=0)
    state: Mapped[int] = mapped_column(default=SpoolState.TO_PROCESS)
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(80))
    port: Mapped[int | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    # Claim lease: which worker holds it and until when.
    lease_owner: Mapped[str | None] = mapped_column(sa.String(64))
    lease_until: Mapped[datetime | None] = mapped_column()
    # Set (and committed) just before the request goes out; a crash leaves it set for reconciliation.
    in_flight_at: Mapped[datetime | None] = mapped_column()
    # The provider could not tell whether it went out: a supervisor decides (resend or cancel).
    needs_review: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = created_at_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    # W5: the customer read it (WhatsApp), and answered it (their next message within DIALER_REPLY_HOURS).
    read_at: Mapped[datetime | None] = mapped_column()
    replied_at: Mapped[datetime | None] = mapped_column()

    @property
    def state_name(self) -> str:
        return SpoolState.NAMES.get(self.state, str(self.state))


class DoNotContact(db.Model):
    """A number not to message: for one dialer, one campaign, or everyone (both empty)."""

    __tablename__ = "do_not_contact"
    __table_args__ = (sa.Index("ix_do_not_contact_phone", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(sa.String(32))
    dialer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("dialers.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(sa.String(16), default="manual")  # upload | keyword | provider | manual
    created_at: Mapped[datetime] = created_at_column()
