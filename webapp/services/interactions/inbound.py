"""A customer's message arrives (A, C2): stored once, however often the gateway delivers it; it opens
or continues the customer's conversation, handles STOP and out-of-hours, and asks for routing. It is also
the reply to the dialer message that provider sent the customer last (dialer/replies.py)."""
from __future__ import annotations

import logging

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...i18n import translating
from ...live.events import publish
from ...models import Interaction, InteractionStatus, Message, Provider, SenderKind
from ...providers.base import InboundMessage
from .. import media, routing
from .. import time as clock
from ..dialer.replies import record_reply
from ..schedules import in_schedule
from .customers import (
    add_do_not_contact,
    customer_number,
    find_campaign,
    is_stop_keyword,
    lock_customer,
    open_interaction,
)
from .messages import announce, send_bot_message

log = logging.getLogger(__name__)

OPT_OUT_DISPOSITION = "opt-out"


def _answered(provider: Provider, reply_to: str | None) -> int | None:
    """Issue 13.8: our message a tapped button or list row (or a quoted reply) answers, when we have it."""
    if not reply_to:
        return None
    return db.session.scalar(sa.select(Message.id).where(Message.provider_id == provider.id,
                                                         Message.provider_message_id == reply_to))


def receive_inbound(provider: Provider, inbound: InboundMessage) -> Message | None:
    """Store one customer message (once, however often the gateway delivers it) and move its
    conversation on: open or continue, opt-out, out-of-hours reply, then routing after commit."""
    if not inbound.provider_message_id:
        log.warning("provider %s: inbound message without an id dropped", provider.id)
        return None
    exists = db.session.scalar(sa.select(Message.id).where(
        Message.provider_id == provider.id, Message.provider_message_id == inbound.provider_message_id))
    if exists is not None:
        return None
    campaign = find_campaign(provider, inbound.to)
    if campaign is None:
        log.warning("provider %s: no campaign for DID %r; message %s dropped",
                    provider.id, inbound.to, inbound.provider_message_id)
        return None
    number = customer_number(inbound.from_number)
    lock_customer(campaign.id, number)
    now = clock.now()
    try:
        with db.session.begin_nested():
            interaction = open_interaction(campaign.id, number)
            if interaction is None and not campaign.enabled:
                log.info("campaign %s is disabled: message %s from %s dropped",
                         campaign.id, inbound.provider_message_id, number)
                return None
            stop = is_stop_keyword(inbound.body)
            if interaction is None:
                interaction = Interaction(
                    campaign_id=campaign.id, customer_number=number, customer_name=inbound.profile_name or "",
                    channel="whatsapp" if "whatsapp" in (provider.channel, inbound.channel) else "sms",
                    direction="inbound", status=InteractionStatus.WAITING, created_at=now, queued_at=now,
                    last_message_at=now, unread=0)
                if stop:
                    interaction.status = InteractionStatus.CLOSED
                    interaction.closed_at = now
                    interaction.disposition = OPT_OUT_DISPOSITION
                db.session.add(interaction)
            elif inbound.profile_name and not interaction.customer_name:
                interaction.customer_name = inbound.profile_name
            message = Message(interaction=interaction, sender_kind=SenderKind.CUSTOMER, body=inbound.body or "",
                              media=list(inbound.media) or None, provider_id=provider.id,
                              provider_message_id=inbound.provider_message_id, status="received", created_at=now,
                              reply_to_id=_answered(provider, inbound.reply_to))
            db.session.add(message)
            interaction.last_message_at = now
            interaction.last_customer_message_at = now
            interaction.unread = (interaction.unread or 0) + 1
            db.session.flush()
            record_reply(provider.id, number, now)  # W5: the dialer's Replied
    except IntegrityError:  # the same message, delivered twice at once: the other delivery has it
        log.info("provider %s: duplicate inbound %s ignored", provider.id, inbound.provider_message_id)
        return None
    if inbound.media:  # keep the media (W1): the files are downloaded after the commit
        media.attach_inbound(message, provider, inbound.media)
    publish(f"interaction:{interaction.id}", "message.new", message_id=message.id)
    announce(interaction)
    if stop:
        if add_do_not_contact(number, campaign.id, "keyword"):
            with translating():
                text = _("You will not receive more messages from us. Thank you.")
            send_bot_message(interaction, text)
    elif not interaction.out_of_hours_sent and not in_schedule(campaign.schedule, clock.to_center(now)):
        interaction.out_of_hours_sent = True
        send_bot_message(interaction, campaign.out_of_hours_message)
    if interaction.status == InteractionStatus.WAITING:
        routing.request_routing(campaign.id)
    return message
