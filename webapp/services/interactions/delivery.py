"""A queued message's way to the customer: claimed once, paced per provider, handed to the gateway,
and then moved on by delivery receipts (which arrive in any order, pushed or polled).

The send job (`workers.inbound.send_message`) commits between the steps, so no transaction is held
while the gateway answers: `claim`, `prepare`, `transmit`, `record_send`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from ...after_commit import enqueue_after_commit
from ...extensions import db
from ...i18n import center_locale
from ...live.events import publish
from ...models import Campaign, Interaction, Message, Provider, SenderKind, WhatsAppTemplate
from ...providers import get_adapter
from ...providers.base import (
    STATUS_ORDER,
    OutboundMedia,
    OutboundMessage,
    Outcome,
    ProviderConfig,
    SendResult,
    StatusUpdate,
)
from .. import outbound_media
from .. import time as clock
from ..dialer import delivery as spool_delivery
from ..pacing import Pacer, provider_key
from .customers import add_do_not_contact

# Provider refs of inbox messages live above the spool's ids: Dinstar echoes one integer
# `user_id` for both, and this keeps a chat reply's receipt from matching a spool message.
MESSAGE_REF_OFFSET = 1_000_000_000
# A delivery status may only move forwards; "sending" is our claim while a send job runs.
_RANK = {**STATUS_ORDER, "sending": 0}
_FINAL_FAILURES = ("failed", "undelivered")
OPTED_OUT_CODES = ("21610",)
POLL_STATUS_FOR = timedelta(days=2)  # how far back a polled gateway is asked about our messages
POLL_STATUS_BATCH = 200


@dataclass(frozen=True)
class Send:
    """A claimed message, ready for its gateway."""

    config: ProviderConfig
    outbound: OutboundMessage


# -- sending -------------------------------------------------------------------------------------
def claim(message_id: int) -> bool:
    """Take a queued message for sending, so it goes out at most once; the caller commits before sending."""
    return db.session.execute(
        sa.update(Message).where(Message.id == message_id, Message.status == "queued")
        .values(status="sending").execution_options(synchronize_session=False)).rowcount == 1


def _status_callback(provider: Provider) -> str | None:
    base = current_app.config.get("PUBLIC_BASE_URL")
    if provider.type != "twilio" or not base or "localhost" in base:
        return None
    return f"{base.rstrip('/')}/webhooks/{provider.id}/status"


def _template(provider: Provider, message: Message) -> dict[str, Any] | None:
    """A template send for the gateway: Twilio's ContentSid + ContentVariables, Meta's name and language
    (as the composer chose it, else the catalog's, else the centre's) with the variables."""
    if not message.template_ref:
        return None
    params = dict(message.template_params or {})
    variables = dict(params.get("variables") or {})
    header_variables = dict(params.get("header_variables") or {})
    if provider.type == "twilio":  # ContentVariables name every variable, the header's too
        variables = {**header_variables, **variables}
        return {"content_sid": message.template_ref, **({"variables": variables} if variables else {})}
    language = params.get("language") or db.session.scalar(
        sa.select(WhatsAppTemplate.language).where(WhatsAppTemplate.provider_id == provider.id,
                                                   WhatsAppTemplate.name == message.template_ref,
                                                   WhatsAppTemplate.status != "deleted")
        .order_by(WhatsAppTemplate.id).limit(1)) or center_locale()
    found: dict[str, Any] = {"name": message.template_ref, "language": language}
    if variables:
        found["variables"] = variables
    if header_variables:
        found["header_variables"] = header_variables
    return found


def _content(provider: Provider, message: Message) -> tuple[str, tuple[OutboundMedia, ...]]:
    """The text and files to send: on WhatsApp the files themselves; on SMS signed links in the text.
    Raises outbound_media.NoPublicURL when the gateway would need a link nobody outside can open."""
    attachments = [a for a in message.attachments if a.storage_key] if message.media else []
    if not attachments:
        return message.body, ()
    if provider.channel != "whatsapp":
        return outbound_media.sms_text(message.body, attachments), ()
    links = provider.type == "twilio"  # Twilio fetches MediaUrl; Meta and the sandbox take the bytes
    return message.body, tuple(outbound_media.outbound(a, links=links) for a in attachments)


def _fail(message: Message, error: str) -> None:
    message.status = "failed"
    message.error = error[:500]
    publish(f"interaction:{message.interaction_id}", "message.status", message_id=message.id)


def prepare(message_id: int) -> Send | None:
    """What to send for a claimed message, once the provider's pace allows; None when its provider is
    disabled or gone (the message has failed then)."""
    message = db.session.get(Message, message_id)
    interaction = message.interaction
    provider = db.session.get(Provider, message.provider_id) if message.provider_id else None
    if provider is None or not provider.enabled:
        _fail(message, "provider disabled or missing")
        return None
    try:
        body, files = _content(provider, message)
    except outbound_media.NoPublicURL as exc:
        _fail(message, str(exc))
        return None
    if provider.max_per_second and provider.max_per_second > 0:
        Pacer(current_app.extensions["conversa_redis"]).wait(provider_key(provider.id), 1.0 / provider.max_per_second)
    outbound = OutboundMessage(ref=MESSAGE_REF_OFFSET + message.id, to=interaction.customer_number,
                               body=body, template=_template(provider, message), media=files,
                               status_callback_url=_status_callback(provider))
    return Send(provider.to_config(), outbound)


def transmit(send: Send) -> SendResult:
    """Hand the message to its gateway (the caller holds no transaction meanwhile)."""
    redis = current_app.extensions["conversa_redis"]
    with get_adapter(send.config, redis=redis, timeout=current_app.config.get("PROVIDER_TIMEOUT", 10.0)) as adapter:
        return adapter.send(send.outbound)


def record_send(message_id: int, result: SendResult) -> Message:
    """The gateway's answer: sent (with its id) or failed (with why); a customer who opted out with the
    gateway goes on the campaign's do-not-contact list."""
    message = db.session.get(Message, message_id)
    interaction = message.interaction
    if result.ok:
        message.status = "sent"
        message.provider_message_id = result.provider_message_id
        message.error = None
    else:
        message.status = "failed"
        detail = result.error_message or result.outcome.value
        if result.ambiguous:
            detail = f"unknown outcome, may have been sent: {detail}"
        message.error = f"{result.error_code}: {detail}"[:500] if result.error_code else detail[:500]
        if result.outcome is Outcome.OPTED_OUT:
            add_do_not_contact(interaction.customer_number, interaction.campaign_id, "provider")
    publish(f"interaction:{interaction.id}", "message.status", message_id=message.id)
    return message


# -- read receipts the other way (W5): the agent has read the customer's messages --------------------
READ_JOB = "workers.whatsapp.mark_read"


def mark_read_after_commit(interaction: Interaction) -> None:
    """The agent opened a WhatsApp conversation: once committed, its provider is told the customer's
    messages were read (Meta's blue ticks)."""
    if interaction.channel == "whatsapp":
        enqueue_after_commit(READ_JOB, interaction.id)


def unread_by_gateway(interaction_id: int) -> tuple[ProviderConfig, Message] | None:
    """The newest customer message the gateway has not been told was read (marking it marks the ones
    before it too), with its provider's config."""
    message = db.session.scalar(sa.select(Message).where(
        Message.interaction_id == interaction_id, Message.sender_kind == SenderKind.CUSTOMER,
        Message.status == "received", Message.provider_message_id.is_not(None))
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))
    provider = db.session.get(Provider, message.provider_id) if message and message.provider_id else None
    if message is None or provider is None or not provider.enabled:
        return None
    return provider.to_config(), message


def record_read(interaction_id: int, upto: Message) -> int:
    """The gateway knows: that message and every earlier customer message of the conversation are read."""
    return db.session.execute(sa.update(Message).where(
        Message.interaction_id == interaction_id, Message.sender_kind == SenderKind.CUSTOMER,
        Message.status == "received", Message.id <= upto.id).values(status="read")
        .execution_options(synchronize_session=False)).rowcount


# -- receipts ------------------------------------------------------------------------------------
def apply_status(provider: Provider, update: StatusUpdate) -> bool:
    """Move an outbound message's delivery status forwards (callbacks may come in any order);
    a receipt that is no chat message goes to the dialer's spool engine when there is one."""
    message = None
    if update.provider_message_id:
        message = db.session.scalar(sa.select(Message).where(
            Message.provider_id == provider.id, Message.provider_message_id == update.provider_message_id))
    if message is None and update.ref is not None and update.ref >= MESSAGE_REF_OFFSET:
        message = db.session.get(Message, update.ref - MESSAGE_REF_OFFSET)
        if message is not None and message.provider_id != provider.id:
            message = None
    if message is None:
        return bool(spool_delivery.apply_delivery(provider.id, update))
    if not can_move(message.status, update.status):
        return False
    message.status = update.status
    if update.status in _FINAL_FAILURES:
        message.error = _error_text(update.error_code, update.error_message)
        if update.error_code in OPTED_OUT_CODES:
            interaction = message.interaction
            add_do_not_contact(interaction.customer_number, interaction.campaign_id, "provider")
    publish(f"interaction:{message.interaction_id}", "message.status", message_id=message.id)
    return True


def can_move(current: str, new: str) -> bool:
    """queued < sent < delivered < read; failed/undelivered only from queued or sent; never back."""
    if new not in _RANK or current == new:
        return False
    if current not in _RANK:  # "received" (inbound) or unknown: not ours to move
        return False
    if new in _FINAL_FAILURES:
        return _RANK[current] <= _RANK["sent"]
    if current in _FINAL_FAILURES:
        return False
    return _RANK[new] > _RANK[current]


def _error_text(code: str | None, text: str | None) -> str | None:
    if not code and not text:
        return None
    return (f"{code}: {text}" if code and text else (code or text or ""))[:500]


def polled_gateways() -> list[Provider]:
    """The enabled Dinstar gateways serving a campaign: they are asked for new SMS and receipts."""
    return list(db.session.scalars(sa.select(Provider).where(
        Provider.type == "dinstar", Provider.enabled.is_(True),
        Provider.id.in_(sa.select(Campaign.provider_id)))))


def refs_awaiting_status(provider: Provider) -> list[int]:
    """The refs of our recent messages on a polled gateway that no receipt has settled yet."""
    ids = db.session.scalars(sa.select(Message.id).where(
        Message.provider_id == provider.id, Message.status.in_(("sent", "sending")),
        Message.created_at >= clock.now() - POLL_STATUS_FOR).limit(POLL_STATUS_BATCH)).all()
    return [MESSAGE_REF_OFFSET + i for i in ids]
