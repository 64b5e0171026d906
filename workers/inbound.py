"""Inbound jobs: webhook payloads, chat sends, routing, and the periodic safety nets.

Jobs take ids and plain dicts (never ORM objects), call services and commit their own work.
"""
from __future__ import annotations

import logging
import random
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy.exc import OperationalError

from config import Config
from webapp.extensions import db
from webapp.models import Provider
from webapp.providers import get_adapter
from webapp.providers.base import InboundMessage, StatusUpdate
from webapp.services import agents, demo, interactions, routing
from webapp.services.interactions import delivery

from .appctx import with_app
from .periodic import periodic

log = logging.getLogger(__name__)

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
        requested = routing.take_requests()
        db.session.commit()
        for campaign_id in requested:
            route(campaign_id)
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


@with_app
def send_message(message_id: int) -> str:
    """Send one chat message through its campaign's provider, at most once, paced per provider."""
    claimed = delivery.claim(message_id)
    db.session.commit()
    if not claimed:
        return "skipped"
    send = delivery.prepare(message_id)
    db.session.commit()  # hold no transaction while the gateway answers
    if send is None:
        return "failed"
    result = delivery.transmit(send)
    message = delivery.record_send(message_id, result)
    if result.ok:
        demo.follow_sandbox_send(message, _rng)
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
    moved = demo.handset_received(message_id)
    db.session.commit()
    return moved


@with_app
def sandbox_read(message_id: int) -> bool:
    """The simulated WhatsApp customer opened it (read receipt)."""
    moved = demo.handset_read(message_id)
    db.session.commit()
    return moved


@with_app
def sandbox_reply(interaction_id: int, body: str) -> bool:
    """A simulated customer answers an agent (or stays silent, as real ones do)."""
    stored = demo.customer_answers(interaction_id, body, _rng)
    db.session.commit()
    return stored


# -- periodic ------------------------------------------------------------------------------
@periodic("routing", 1.0)
def routing_pass() -> None:
    """The safety net: whatever an event missed (an agent freed, a requeue) is routed within a second."""
    route(None)


@periodic("presence-sweep", Config.PRESENCE_SWEEP_SECONDS)
def presence_sweep() -> None:
    """Agents with no live page past PRESENCE_GRACE_SECONDS go disconnected; their conversations back to
    the queue (services/presence.py). The clock's lock makes it one worker at a time."""
    agents.sweep_presence()


@periodic("inbound-auto-close", 30.0)
def auto_close_pass() -> None:
    """Campaigns whose rule closes conversations left waiting for hours (C2; off by default)."""
    interactions.close_long_waiting()
    db.session.commit()


@periodic("dinstar-poll", 5.0)
def dinstar_poll() -> None:
    """Dinstar gateways not set to push: read their unread SMS and our chat replies' results."""
    for provider in delivery.polled_gateways():
        config = provider.to_config()
        try:
            with get_adapter(config, timeout=current_app.config.get("PROVIDER_TIMEOUT", 10.0)) as adapter:
                for item in adapter.poll_inbound():
                    interactions.receive_inbound(provider, item)
                    db.session.commit()
                refs = delivery.refs_awaiting_status(provider)
                if refs:
                    for update in adapter.poll_status(refs):
                        interactions.apply_status(provider, update)
                    db.session.commit()
        except Exception as exc:  # one gateway down must not stop the others
            db.session.rollback()
            log.warning("dinstar poll of provider %s failed: %s", provider.id, exc)


@periodic("sandbox-customers", 20.0)
def sandbox_customers() -> None:
    """`make run`'s live traffic: now and then a new simulated customer writes to each sandbox campaign,
    and customers in quiet open conversations write again."""
    if not current_app.config.get("SANDBOX_CUSTOMERS"):
        return
    for campaign in demo.campaigns_with_room():
        if _rng.random() < 0.4:
            continue
        demo.new_customer(campaign, _rng)
        db.session.commit()
    if demo.customers_write_again(_rng):
        db.session.commit()
