"""WhatsApp jobs (issue 13): inbound media downloads, the template catalog, and the sandbox's media.

Jobs take ids and plain dicts and commit their own work.
"""
from __future__ import annotations

import logging
import random
import uuid
from typing import Any

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import Campaign, Interaction, InteractionStatus, Provider
from webapp.providers import get_adapter
from webapp.providers.base import InboundMessage, TemplateUpdate
from webapp.services import media, templates
from webapp.services.interactions import delivery

from .appctx import with_app
from .periodic import periodic

log = logging.getLogger(__name__)
_rng = random.Random()

SANDBOX_MEDIA_CHANCE = 0.15  # per open WhatsApp sandbox conversation and pass
SANDBOX_CAPTIONS = {"photo": ("Te mando la foto del comprobante", "Así llegó el paquete", ""),
                    "voice": ("",)}


# -- W5: the customer's messages read ----------------------------------------------------------------------
@with_app
def mark_read(interaction_id: int) -> int:
    """Tell the gateway the agent has read the conversation's customer messages (Meta marks the newest one
    and all before it); the messages record it, so a second open asks nothing."""
    found = delivery.unread_by_gateway(interaction_id)
    db.session.commit()  # hold no transaction while the gateway answers
    if found is None:
        return 0
    config, message = found
    with get_adapter(config, timeout=current_app.config.get("PROVIDER_TIMEOUT", 10.0),
                     redis=current_app.extensions["conversa_redis"]) as adapter:
        if not adapter.mark_read(message.provider_message_id or ""):
            return 0
    marked = delivery.record_read(interaction_id, message)
    db.session.commit()
    return marked


# -- W1: media -----------------------------------------------------------------------------------------------
@with_app
def fetch_media(attachment_id: int) -> str:
    """Download one inbound file into the media store; RQ retries it with backoff (media.TryAgain)."""
    return media.fetch(attachment_id)


@periodic("media-recover", 60.0)
def media_recover() -> None:
    """Downloads whose job was lost (Redis down at the commit, a worker killed mid-download) are queued again."""
    found = media.recover()
    if found:
        log.info("media downloads queued again: %d", found)


# -- W2: templates -------------------------------------------------------------------------------------------
@with_app
def sync_templates(provider_id: int) -> dict[str, int] | None:
    """Pull one provider's template catalog (the admin's button, a webhook about a new template)."""
    provider = db.session.get(Provider, provider_id)
    if provider is None:
        return None
    try:
        result = templates.sync(provider)
    except templates.SyncError as exc:
        db.session.commit()  # the error, for the admin page
        log.warning("template sync of provider %s failed: %s", provider_id, exc)
        return None
    db.session.commit()
    return {"added": result.added, "updated": result.updated, "gone": result.gone}


@periodic("template-sync", 60.0)
def template_sync_pass() -> None:
    """Every catalog older than TEMPLATE_SYNC_SECONDS is pulled again (one provider failing stops no other)."""
    for provider in templates.due_for_sync():
        try:
            templates.sync(provider)
        except templates.SyncError as exc:
            log.warning("template sync of provider %s failed: %s", provider.id, exc)
        db.session.commit()


@with_app
def apply_template_updates(provider_id: int, items: list[dict[str, Any]]) -> int:
    """Meta's template status and quality webhooks, applied at once."""
    provider = db.session.get(Provider, provider_id)
    if provider is None:
        return 0
    applied = sum(templates.apply_update(provider, TemplateUpdate(**item)) is not None for item in items)
    db.session.commit()
    return applied


# -- the simulator ----------------------------------------------------------------------------------------------
def sandbox_media_message(interaction: Interaction, sample: str) -> bool:
    """A simulated customer sends a sample file ("photo", "voice") into their conversation."""
    from webapp.providers.sandbox import sample_media
    from webapp.services import interactions

    campaign = interaction.campaign
    inbound = InboundMessage(provider_message_id=f"sbx-in-{uuid.uuid4().hex[:12]}",
                             from_number=interaction.customer_number, to=campaign.did,
                             body=_rng.choice(SANDBOX_CAPTIONS[sample]), channel="whatsapp",
                             media=[sample_media(sample)])
    return interactions.receive_inbound(campaign.provider, inbound) is not None


@periodic("sandbox-media", 30.0)
def sandbox_media() -> None:
    """`make run`'s WhatsApp customers send a photo or a voice note now and then, in open conversations."""
    if not current_app.config.get("SANDBOX_CUSTOMERS"):
        return
    open_ones = db.session.scalars(
        sa.select(Interaction).join(Campaign, Campaign.id == Interaction.campaign_id)
        .join(Provider, Provider.id == Campaign.provider_id)
        .where(Provider.type == "sandbox", Provider.channel == "whatsapp", Provider.enabled.is_(True),
               Interaction.status.in_(InteractionStatus.OPEN)).order_by(Interaction.id).limit(50)).all()
    for interaction in open_ones:
        if _rng.random() < SANDBOX_MEDIA_CHANCE:
            sandbox_media_message(interaction, _rng.choice(("photo", "voice")))
            db.session.commit()
