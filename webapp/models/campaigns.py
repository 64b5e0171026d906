"""C and M: inbound campaigns, their schedules, canned responses and members."""
from __future__ import annotations

from datetime import datetime, time

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import created_at_column
from .providers import Provider
from .users import SecurityGroup, User

MODES = ("incall", "nocall", "interaction", "nopause", "ringall", "ringallmultiple")
DISTRIBUTIONS = ("rrmemory", "linear", "wrandom")
RINGALL_MODES = ("ringall", "ringallmultiple")
STRATEGIES = tuple(f"{d}_{m}" for m in MODES if m not in RINGALL_MODES for d in DISTRIBUTIONS) + RINGALL_MODES

DEFAULT_OUT_OF_HOURS = (
    "Gracias por escribirnos. En este momento estamos fuera de horario; "
    "te responderemos apenas volvamos a atender."
)
# What the optional "close after N hours waiting" rule tells the customer when the campaign sets nothing.
DEFAULT_AUTO_CLOSE = (
    "Lamentamos no haber podido atenderte. Cerramos esta conversación; "
    "escríbenos de nuevo cuando quieras y te responderemos."
)


def split_strategy(strategy: str) -> tuple[str | None, str]:
    """'rrmemory_nocall' → ('rrmemory', 'nocall'); 'ringall' → (None, 'ringall')."""
    if strategy in RINGALL_MODES:
        return None, strategy
    distribution, _, mode = strategy.partition("_")
    return distribution, mode


class ScheduleEntry(db.Model):
    """One schedule line: the days of the week (bit 0 = Monday) and a time range, for a campaign or a dialer."""

    __tablename__ = "schedule_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    dialer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("dialers.id", ondelete="CASCADE"), index=True)
    days: Mapped[int] = mapped_column(default=0b0011111)
    start_time: Mapped[time] = mapped_column(sa.Time)
    end_time: Mapped[time] = mapped_column(sa.Time)

    def covers(self, moment: datetime) -> bool:
        """Whether a local (center time zone) moment falls in this entry; end may pass midnight."""
        day_bit = 1 << moment.weekday()
        t = moment.time()
        if self.start_time <= self.end_time:
            return bool(self.days & day_bit) and self.start_time <= t < self.end_time
        # Overnight range: the evening part belongs to today, the morning part to yesterday.
        yesterday_bit = 1 << ((moment.weekday() - 1) % 7)
        return (bool(self.days & day_bit) and t >= self.start_time) or (
            bool(self.days & yesterday_bit) and t < self.end_time)


class CannedResponse(db.Model):
    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(sa.String(80))
    body: Mapped[str] = mapped_column(sa.Text)
    # WhatsApp: an approved template (Twilio ContentSid or Meta template name); usable outside the 24 h window.
    template_ref: Mapped[str | None] = mapped_column(sa.String(120))
    # W2: the template chosen from the provider's synced catalog (template_ref then holds its name or sid).
    template_id: Mapped[int | None] = mapped_column(sa.ForeignKey("whatsapp_templates.id", ondelete="SET NULL"))
    position: Mapped[int] = mapped_column(default=0)

    template = relationship("WhatsAppTemplate")


class Campaign(db.Model):
    __tablename__ = "campaigns"
    # One campaign per DID of a provider (the form says which one has it; this holds under simultaneous saves).
    __table_args__ = (sa.UniqueConstraint("provider_id", "did", name="uq_campaigns_provider_did"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    security_group_id: Mapped[int] = mapped_column(sa.ForeignKey("security_groups.id"), index=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("providers.id"), index=True)
    did: Mapped[str] = mapped_column(sa.String(64), index=True)
    strategy: Mapped[str] = mapped_column(sa.String(32), default="rrmemory_nocall")
    # C1: target service level, in percent.
    service_level_target: Mapped[int] = mapped_column(default=80)
    # C2 advanced, each with a working default.
    out_of_hours_message: Mapped[str] = mapped_column(sa.Text, default=DEFAULT_OUT_OF_HOURS)
    sl_threshold_seconds: Mapped[int] = mapped_column(default=60)
    abandon_threshold_seconds: Mapped[int] = mapped_column(default=600)
    chat_time_threshold_seconds: Mapped[int] = mapped_column(default=900)
    acd_max_waiting: Mapped[int] = mapped_column(default=10)
    max_interactions_per_agent: Mapped[int] = mapped_column(default=3)
    # Optional rule (0 = off): a conversation left waiting this many hours is closed, with this message.
    auto_close_hours: Mapped[int] = mapped_column(default=0, server_default="0")
    auto_close_message: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    # W3: the language its conversations' WhatsApp templates are offered in ("es", "en_US"…); "" is the
    # centre's default (BABEL_DEFAULT_LOCALE).
    language: Mapped[str] = mapped_column(sa.String(16), default="", server_default="")
    # rrmemory: the member who got the last interaction.
    rr_last_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()

    security_group: Mapped[SecurityGroup] = relationship()
    provider: Mapped[Provider] = relationship()
    schedule: Mapped[list[ScheduleEntry]] = relationship(
        cascade="all, delete-orphan", order_by=ScheduleEntry.id,
        primaryjoin="ScheduleEntry.campaign_id == Campaign.id")
    canned_responses: Mapped[list[CannedResponse]] = relationship(
        cascade="all, delete-orphan", order_by=(CannedResponse.position, CannedResponse.id))
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan",
        order_by="(Membership.position, Membership.id)")

    @property
    def mode(self) -> str:
        return split_strategy(self.strategy)[1]

    @property
    def distribution(self) -> str | None:
        return split_strategy(self.strategy)[0]

    @property
    def channel(self) -> str:
        return self.provider.channel if self.provider else "sms"


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "user_id", name="uq_memberships_campaign_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    penalty: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = created_at_column()

    campaign: Mapped[Campaign] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship()
