"""Inbound jobs: webhook payloads, chat sends, routing, and the periodic safety nets.

Jobs take ids and plain dicts (never ORM objects) and commit their own work.
"""
from __future__ import annotations

import logging
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import OperationalError

from webapp.extensions import db
from webapp.models import Campaign, Interaction, InteractionStatus, Message, Provider, SenderKind
from webapp.providers import get_adapter
from webapp.providers.base import InboundMessage, OutboundMessage, Outcome, StatusUpdate
from webapp.services import interactions, routing
from webapp.services import time as clock
from webapp.services.pacing import Pacer, provider_key

from .appctx import with_app
from .periodic import periodic

log = logging.getLogger(__name__)

SANDBOX_DELIVERY_DELAY = 2.0
SANDBOX_REPLY_DELAY = (3.0, 8.0)
GREETINGS = ("Hola, buenas tardes", "Hola! quería hacer una consulta", "Buen día, ¿me pueden ayudar?",
             "Hola, tengo un problema con mi factura", "¿Hasta qué hora atienden?",
             "Hola, quiero saber el estado de mi pedido", "Buenas, ¿cómo hago para pagar en cuotas?")
_rng = random.Random()


def _inbound(item: dict[str, Any]) -> InboundMessage:
    data = dict(item)
    if isinstance(data.get("received_at"), str):
        data["received_at"] = datetime.fromisoformat(data["received_at"])
    return InboundMessage(**data)


@with_app
def process_inbound(provider_id: int, items: list[dict[str, Any]]) -> int:
    """Store the customer messages a webhook (or a poll) brought; routing follows each commit, here
    rather than in a `route` job of its own (the customer is waiting for an agent meanwhile)."""
    provider = db.session.get(Provider, provider_id)
    if provider is None:
        return 0
    stored = 0
    for item in items:
        if interactions.receive_inbound(provider, _inbound(item)) is not None:
            stored += 1
        requested = interactions.take_jobs_after_commit(routing.ROUTE_JOB)
        db.session.commit()
        for args in dict.fromkeys(requested):
            route(*args)
    return stored


@with_app
def process_status(provider_id: int, items: list[dict[str, Any]]) -> int:
    """Apply delivery receipts, in whatever order they came."""
    provider = db.session.get(Provider, provider_id)
    if provider is None:
        return 0
    moved = 0
    for item in items:
        moved += interactions.apply_status(provider, StatusUpdate(**item))
        db.session.commit()
    return moved


def _status_callback(provider: Provider) -> str | None:
    base = current_app.config.get("PUBLIC_BASE_URL")
    if provider.type != "twilio" or not base or "localhost" in base:
        return None
    return f"{base.rstrip('/')}/webhooks/{provider.id}/status"


def _template(provider: Provider, ref: str | None) -> dict[str, Any] | None:
    if not ref:
        return None
    return {"content_sid": ref} if provider.type == "twilio" else {"name": ref, "language": "es"}


@with_app
def send_message(message_id: int) -> str:
    """Send one chat message through its campaign's provider, at most once, paced per provider."""
    claimed = db.session.execute(
        sa.update(Message).where(Message.id == message_id, Message.status == "queued")
        .values(status="sending").execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if claimed != 1:
        return "skipped"
    message = db.session.get(Message, message_id)
    interaction = message.interaction
    provider = db.session.get(Provider, message.provider_id) if message.provider_id else None
    if provider is None or not provider.enabled:
        message.status = "failed"
        message.error = "provider disabled or missing"
        interactions.publish(f"interaction:{interaction.id}", "message.status", message_id=message.id)
        db.session.commit()
        return "failed"
    redis = current_app.extensions["conversa_redis"]
    if provider.max_per_second and provider.max_per_second > 0:
        Pacer(redis).wait(provider_key(provider.id), 1.0 / provider.max_per_second)
    outbound = OutboundMessage(ref=interactions.MESSAGE_REF_OFFSET + message.id, to=interaction.customer_number,
                               body=message.body, template=_template(provider, message.template_ref),
                               status_callback_url=_status_callback(provider))
    config = provider.to_config()
    db.session.commit()  # hold no transaction while the gateway answers
    with get_adapter(config, redis=redis, timeout=current_app.config.get("PROVIDER_TIMEOUT", 10.0)) as adapter:
        result = adapter.send(outbound)
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
            interactions.add_do_not_contact(interaction.customer_number, interaction.campaign_id, "provider")
    interactions.publish(f"interaction:{interaction.id}", "message.status", message_id=message.id)
    if result.ok and provider.type == "sandbox":
        interactions.enqueue_after_commit("workers.inbound.sandbox_delivered", message.id,
                                          delay=SANDBOX_DELIVERY_DELAY)
        if current_app.config.get("SANDBOX_CUSTOMERS") and message.sender_kind in (
                SenderKind.AGENT, SenderKind.SUPERVISOR):
            interactions.enqueue_after_commit("workers.inbound.sandbox_reply", interaction.id, message.body,
                                              delay=round(_rng.uniform(*SANDBOX_REPLY_DELAY), 1))
    db.session.commit()
    return message.status


@with_app
def route(campaign_id: int | None = None) -> list[tuple[int, int]]:
    """One routing pass; a lock timeout or deadlock is left to the next pass."""
    try:
        pairs = routing.route_waiting(campaign_id)
        db.session.commit()
        return pairs
    except OperationalError as exc:
        db.session.rollback()
        log.warning("routing pass for campaign %s gave way: %s", campaign_id, exc)
        return []


# -- the simulator -----------------------------------------------------------------------
@with_app
def sandbox_delivered(message_id: int) -> bool:
    """The simulated handset received it."""
    message = db.session.get(Message, message_id)
    if message is None or not message.provider_message_id or message.provider_id is None:
        return False
    provider = db.session.get(Provider, message.provider_id)
    moved = interactions.apply_status(provider, StatusUpdate("delivered", message.provider_message_id))
    db.session.commit()
    return moved


@with_app
def sandbox_reply(interaction_id: int, body: str) -> bool:
    """A simulated customer answers an agent (or stays silent, as real ones do)."""
    from webapp.providers.sandbox import simulated_reply

    interaction = db.session.get(Interaction, interaction_id)
    if interaction is None or not interaction.is_open:
        return False
    text = simulated_reply(body, _rng)
    if text is None:
        return False
    campaign = interaction.campaign
    inbound = InboundMessage(provider_message_id=f"sbx-in-{uuid.uuid4().hex[:12]}",
                             from_number=interaction.customer_number, to=campaign.did, body=text,
                             channel=interaction.channel)
    stored = interactions.receive_inbound(campaign.provider, inbound) is not None
    db.session.commit()
    return stored


def new_sandbox_customer(campaign: Campaign, rng: random.Random) -> bool:
    number = f"+5989{rng.randrange(1_000_000, 9_999_999)}"
    inbound = InboundMessage(provider_message_id=f"sbx-in-{uuid.uuid4().hex[:12]}", from_number=number,
                             to=campaign.did, body=rng.choice(GREETINGS), channel=campaign.channel)
    return interactions.receive_inbound(campaign.provider, inbound) is not None


# -- periodic ------------------------------------------------------------------------------
@periodic("routing", 1.0)
def routing_pass() -> None:
    """The safety net: whatever an event missed (an agent freed, a requeue) is routed within a second."""
    route(None)


@periodic("inbound-abandon", 5.0)
def abandon_pass() -> None:
    interactions.abandon_overdue()
    db.session.commit()


@periodic("dinstar-poll", 5.0)
def dinstar_poll() -> None:
    """Dinstar gateways not set to push: read their unread SMS and our chat replies' results."""
    providers = db.session.scalars(sa.select(Provider).where(
        Provider.type == "dinstar", Provider.enabled.is_(True),
        Provider.id.in_(sa.select(Campaign.provider_id)))).all()
    since = clock.now() - timedelta(days=2)
    for provider in providers:
        config = provider.to_config()
        try:
            with get_adapter(config, timeout=current_app.config.get("PROVIDER_TIMEOUT", 10.0)) as adapter:
                for item in adapter.poll_inbound():
                    interactions.receive_inbound(provider, item)
                    db.session.commit()
                ids = db.session.scalars(sa.select(Message.id).where(
                    Message.provider_id == provider.id, Message.status.in_(("sent", "sending")),
                    Message.created_at >= since).limit(200)).all()
                if ids:
                    for update in adapter.poll_status([interactions.MESSAGE_REF_OFFSET + i for i in ids]):
                        interactions.apply_status(provider, update)
                    db.session.commit()
        except Exception as exc:  # one gateway down must not stop the others
            db.session.rollback()
            log.warning("dinstar poll of provider %s failed: %s", provider.id, exc)


@periodic("sandbox-customers", 20.0)
def sandbox_customers() -> None:
    """`make run`'s live traffic: now and then a new simulated customer writes to each sandbox campaign."""
    if not current_app.config.get("SANDBOX_CUSTOMERS"):
        return
    campaigns = db.session.scalars(
        sa.select(Campaign).join(Provider, Provider.id == Campaign.provider_id)
        .where(Campaign.enabled.is_(True), Provider.enabled.is_(True), Provider.type == "sandbox")).all()
    for campaign in campaigns:
        waiting = db.session.scalar(sa.select(sa.func.count(Interaction.id)).where(
            Interaction.campaign_id == campaign.id, Interaction.status == InteractionStatus.WAITING)) or 0
        if waiting >= campaign.acd_max_waiting or _rng.random() < 0.4:
            continue
        new_sandbox_customer(campaign, _rng)
        db.session.commit()
