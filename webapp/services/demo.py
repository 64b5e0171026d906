"""Demo traffic for `make run`: a few hundred messages queued on the demo dialer, paced so a newcomer sees
its counters move for the first minutes, and simulated customers on sandbox campaigns (who write first,
write again now and then while their conversation is open, and now and then answer our messages)."""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from ..after_commit import enqueue_after_commit
from ..extensions import db
from ..models import (
    Campaign,
    Dialer,
    Interaction,
    InteractionStatus,
    Message,
    Provider,
    SenderKind,
    SpoolMessage,
    SpoolState,
    utcnow,
)
from ..providers.base import InboundMessage, StatusUpdate
from ..providers.sandbox import simulated_reply
from .interactions import apply_status, receive_inbound

DIALER_INTERVAL_MS = 400  # the demo dialer's pace: 2.5 messages a second...
DIALER_MESSAGES = 600  # ...so its counters move for four minutes
FOLLOW_UP_QUIET = 45.0  # seconds a conversation stays quiet before its customer may write again
FOLLOW_UP_CHANCE = 0.25  # per open, quiet conversation and pass (the worker's, every 20 s)
FOLLOW_UPS = ("¿Hay alguien ahí?", "Sigo esperando, gracias", "Les escribo de nuevo por mi consulta",
              "¿Me pueden responder, por favor?", "Hola, ¿siguen ahí?", "Agrego un dato: es urgente")
SANDBOX_DELIVERY_DELAY = 2.0
SANDBOX_REPLY_DELAY = (3.0, 8.0)
GREETINGS = ("Hola, buenas tardes", "Hola! quería hacer una consulta", "Buen día, ¿me pueden ayudar?",
             "Hola, tengo un problema con mi factura", "¿Hasta qué hora atienden?",
             "Hola, quiero saber el estado de mi pedido", "Buenas, ¿cómo hago para pagar en cuotas?")


def queue_demo_messages(count: int = DIALER_MESSAGES) -> int:
    """Queue `count` messages on the demo dialer unless it still has some to process."""
    dialer = db.session.scalar(sa.select(Dialer).where(Dialer.name == "demo"))
    if dialer is None:
        return 0
    pending = db.session.scalar(sa.select(sa.func.count(SpoolMessage.id)).where(
        SpoolMessage.dialer_id == dialer.id, SpoolMessage.state == SpoolState.TO_PROCESS))
    if pending:
        return 0
    rng = random.Random(7)
    names = ["Ana", "Bruno", "Carla", "Diego", "Elena", "Fabián", "Gabriela", "Hugo"]
    rows = []
    for i in range(count):
        number = f"+59899{rng.randrange(100000, 999999)}"
        rows.append({"dialer_id": dialer.id, "destination": number, "state": SpoolState.TO_PROCESS,
                     "priority": 0, "attempts": 0, "needs_review": False,
                     "body": f"Hola {rng.choice(names)}, tu turno #{1000 + i} está confirmado."})
    db.session.execute(sa.insert(SpoolMessage), rows)
    db.session.commit()
    return count


# -- simulated customers on sandbox campaigns ----------------------------------------------------------
def follow_sandbox_send(message: Message, rng: random.Random) -> None:
    """A message the sandbox accepted reaches the simulated handset a moment later; with simulated
    customers on, a person's message may get an answer (jobs, after commit)."""
    provider = db.session.get(Provider, message.provider_id) if message.provider_id else None
    if provider is None or provider.type != "sandbox":
        return
    enqueue_after_commit("workers.inbound.sandbox_delivered", message.id, delay=SANDBOX_DELIVERY_DELAY)
    if current_app.config.get("SANDBOX_CUSTOMERS") and message.sender_kind in (
            SenderKind.AGENT, SenderKind.SUPERVISOR):
        enqueue_after_commit("workers.inbound.sandbox_reply", message.interaction_id, message.body,
                             delay=round(rng.uniform(*SANDBOX_REPLY_DELAY), 1))


def handset_received(message_id: int) -> bool:
    """The simulated handset received the message: its delivery receipt."""
    message = db.session.get(Message, message_id)
    if message is None or not message.provider_message_id or message.provider_id is None:
        return False
    provider = db.session.get(Provider, message.provider_id)
    moved = apply_status(provider, StatusUpdate("delivered", message.provider_message_id))
    if moved and provider.channel == "whatsapp":  # and the customer opens it a little later: blue ticks
        enqueue_after_commit("workers.inbound.sandbox_read", message.id, delay=SANDBOX_DELIVERY_DELAY * 2)
    return moved


def handset_read(message_id: int) -> bool:
    """The simulated WhatsApp customer read the message: its read receipt."""
    message = db.session.get(Message, message_id)
    if message is None or not message.provider_message_id or message.provider_id is None:
        return False
    return apply_status(db.session.get(Provider, message.provider_id),
                        StatusUpdate("read", message.provider_message_id))


def customer_answers(interaction_id: int, body: str, rng: random.Random) -> bool:
    """A simulated customer answers an agent (or stays silent, as real ones do)."""
    interaction = db.session.get(Interaction, interaction_id)
    if interaction is None or not interaction.is_open:
        return False
    text = simulated_reply(body, rng)
    return text is not None and _customer_writes(interaction, text)


def _customer_writes(interaction: Interaction, text: str) -> bool:
    """The simulated customer of an open conversation writes `text` into it, as through the gateway."""
    campaign = interaction.campaign
    inbound = InboundMessage(provider_message_id=f"sbx-in-{uuid.uuid4().hex[:12]}",
                             from_number=interaction.customer_number, to=campaign.did, body=text,
                             channel=interaction.channel)
    return receive_inbound(campaign.provider, inbound) is not None


def campaigns_with_room() -> list[Campaign]:
    """Enabled sandbox campaigns whose queue has room for one more simulated customer."""
    campaigns = db.session.scalars(
        sa.select(Campaign).join(Provider, Provider.id == Campaign.provider_id)
        .where(Campaign.enabled.is_(True), Provider.enabled.is_(True), Provider.type == "sandbox")).all()
    return [campaign for campaign in campaigns if _waiting(campaign) < campaign.acd_max_waiting]


def _waiting(campaign: Campaign) -> int:
    return db.session.scalar(sa.select(sa.func.count(Interaction.id)).where(
        Interaction.campaign_id == campaign.id, Interaction.status == InteractionStatus.WAITING)) or 0


def new_customer(campaign: Campaign, rng: random.Random) -> bool:
    """A new simulated customer writes to the campaign."""
    number = f"+5989{rng.randrange(1_000_000, 9_999_999)}"
    inbound = InboundMessage(provider_message_id=f"sbx-in-{uuid.uuid4().hex[:12]}", from_number=number,
                             to=campaign.did, body=rng.choice(GREETINGS), channel=campaign.channel)
    return receive_inbound(campaign.provider, inbound) is not None


def customers_write_again(rng: random.Random, now: datetime | None = None) -> int:
    """Simulated customers already in an open conversation quiet for FOLLOW_UP_QUIET write again now and
    then (a waiting one asks whether anyone is there): the demo's traffic goes on once the queue is full.
    Returns how many wrote; the caller commits."""
    cutoff = (now or utcnow()) - timedelta(seconds=FOLLOW_UP_QUIET)
    quiet = db.session.scalars(
        sa.select(Interaction).join(Campaign, Campaign.id == Interaction.campaign_id)
        .join(Provider, Provider.id == Campaign.provider_id)
        .where(Provider.type == "sandbox", Provider.enabled.is_(True), Campaign.enabled.is_(True),
               Interaction.status.in_(InteractionStatus.OPEN), Interaction.last_message_at < cutoff)
        .order_by(Interaction.last_message_at).limit(50)).all()
    written = 0
    for interaction in quiet:
        if rng.random() >= FOLLOW_UP_CHANCE:
            continue
        written += _customer_writes(interaction, rng.choice(FOLLOW_UPS))
    return written
