"""W2: each WhatsApp provider's template catalog, kept as its provider reports it.

`sync(provider)` pulls the whole list (Meta's message_templates of the business account, Twilio's
ContentAndApprovals, the sandbox's own) and upserts it by the provider's id for each template; a template
the provider no longer lists is kept (a canned response may point at it) with status "deleted". Meta's
message_template_status_update and message_template_quality_update webhooks change one template at
once (`apply_update`); one about a template not yet in the catalog asks for a sync.

Statuses, categories and qualities are stored in lower case in our words: the provider's words that
mean the same are folded (REINSTATED is approved again, Twilio's "received" is pending…).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from .. import queues
from ..extensions import db
from ..models import Provider, WhatsAppTemplate
from ..providers import get_adapter
from ..providers.base import TemplateInfo, TemplateUpdate
from . import time as clock

log = logging.getLogger(__name__)

STATUSES = ("approved", "pending", "rejected", "paused", "disabled", "deleted")
CATEGORIES = ("marketing", "utility", "authentication")
QUALITIES = ("green", "yellow", "red", "unknown")
STATUS_WORDS = {
    "approved": "approved", "reinstated": "approved", "unpaused": "approved", "flagged": "approved",
    "pending": "pending", "in_appeal": "pending", "received": "pending", "submitted": "pending",
    "rejected": "rejected", "paused": "paused", "disabled": "disabled",
    "deleted": "deleted", "pending_deletion": "deleted", "archived": "deleted",
}
VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
SYNC_JOB = "workers.whatsapp.sync_templates"


class SyncError(Exception):
    """The provider's catalog could not be read; str() says why (kept on the provider for its admin page)."""


def normal_status(word: str | None) -> str:
    word = (word or "").strip().lower()
    return STATUS_WORDS.get(word, word[:32] or "pending")


def normal_category(word: str | None) -> str:
    return (word or "").strip().lower()[:32]


def normal_quality(word: str | None) -> str:
    word = (word or "").strip().lower()
    return word if word in QUALITIES else ("unknown" if word else "")


def variables(*texts: str | None) -> list[str]:
    """The {{1}}, {{2}}… (or {{name}}) placeholders of these texts, each once, in order of appearance."""
    found: dict[str, None] = {}
    for text in texts:
        for match in VARIABLE.finditer(text or ""):
            found.setdefault(match.group(1))
    return list(found)


@dataclass
class SyncResult:
    added: int = 0
    updated: int = 0
    gone: int = 0

    @property
    def total(self) -> int:
        return self.added + self.updated


def providers_with_templates() -> list[Provider]:
    """Enabled providers that have a WhatsApp template catalog (Meta, Twilio on WhatsApp, the WhatsApp sandbox)."""
    found = []
    for provider in db.session.scalars(sa.select(Provider).where(Provider.enabled.is_(True)).order_by(Provider.id)):
        try:
            if get_adapter(provider.to_config()).has_templates:
                found.append(provider)
        except (RuntimeError, ValueError) as exc:  # credentials under another key, an unknown type
            log.warning("provider %s skipped for templates: %s", provider.id, exc)
    return found


def has_catalog(provider: Provider) -> bool:
    try:
        return get_adapter(provider.to_config()).has_templates
    except (RuntimeError, ValueError):
        return False


def sync(provider: Provider) -> SyncResult:
    """Pull the provider's whole catalog and store it; the outcome (time, error) is kept on the provider.
    Commits nothing itself; raises SyncError (after noting it on the provider) when the list cannot be read."""
    config = provider.to_config()
    try:
        with get_adapter(config, timeout=current_app.config.get("PROVIDER_TIMEOUT", 10.0),
                         redis=current_app.extensions["conversa_redis"]) as adapter:
            listed = adapter.list_templates()
    except Exception as exc:  # noqa: BLE001 - any failure of the gateway is the same for the admin
        provider.templates_synced_at = clock.now()
        provider.templates_sync_error = f"{type(exc).__name__}: {exc}"[:500]
        raise SyncError(provider.templates_sync_error) from exc
    now = clock.now()
    known = {t.external_id: t for t in db.session.scalars(
        sa.select(WhatsAppTemplate).where(WhatsAppTemplate.provider_id == provider.id))}
    result = SyncResult()
    seen: set[str] = set()
    for info in listed:
        if info.external_id in seen:
            continue
        seen.add(info.external_id)
        template = known.get(info.external_id)
        if template is None:
            template = WhatsAppTemplate(provider_id=provider.id, external_id=info.external_id)
            db.session.add(template)
            result.added += 1
        elif _differs(template, info):
            result.updated += 1
        _fill(template, info, now)
    for external_id, template in known.items():
        if external_id not in seen and template.status != "deleted":
            template.status = "deleted"
            template.updated_at = now
            result.gone += 1
    provider.templates_synced_at = now
    provider.templates_sync_error = None
    db.session.flush()
    return result


def _values(info: TemplateInfo) -> dict[str, Any]:
    return {"name": info.name[:512], "language": info.language[:16], "category": normal_category(info.category),
            "status": normal_status(info.status), "quality": normal_quality(info.quality),
            "reason": info.reason[:500] if info.reason else None, "body": info.body or "",
            "variables": variables((info.header or {}).get("text") if (info.header or {}).get("format") == "text"
                                   else None, info.body),
            "header": info.header, "footer": info.footer, "buttons": list(info.buttons or [])}


def _differs(template: WhatsAppTemplate, info: TemplateInfo) -> bool:
    return any(getattr(template, k) != v for k, v in _values(info).items())


def _fill(template: WhatsAppTemplate, info: TemplateInfo, now: datetime) -> None:
    values = _values(info)
    if template.id is None or any(getattr(template, k) != v for k, v in values.items()):
        template.updated_at = now
    for key, value in values.items():
        setattr(template, key, value)
    template.synced_at = now


def apply_update(provider: Provider, update: TemplateUpdate) -> WhatsAppTemplate | None:
    """A status or quality change pushed by the provider, applied now. One about a template the catalog
    does not have yet asks for a sync (it was created since the last one)."""
    template = None
    if update.external_id:
        template = db.session.scalar(sa.select(WhatsAppTemplate).where(
            WhatsAppTemplate.provider_id == provider.id, WhatsAppTemplate.external_id == update.external_id))
    if template is None and update.name:
        query = sa.select(WhatsAppTemplate).where(WhatsAppTemplate.provider_id == provider.id,
                                                  WhatsAppTemplate.name == update.name)
        if update.language:
            query = query.where(WhatsAppTemplate.language == update.language)
        template = db.session.scalars(query.order_by(WhatsAppTemplate.id)).first()
    if template is None:
        request_sync(provider.id)
        return None
    now = clock.now()
    if update.status:
        event = update.status.strip().lower()
        template.status = normal_status(event)
        if event == "flagged":  # still sendable, at risk of being disabled
            template.quality = "red"
        template.reason = update.reason[:500] if update.reason else (
            None if template.status == "approved" else template.reason)
    if update.quality:
        template.quality = normal_quality(update.quality)
    template.updated_at = now
    return template


def request_sync(provider_id: int) -> bool:
    """Queue a sync job (the admin's button, a webhook about an unknown template); False when Redis is down."""
    try:
        queues.enqueue(SYNC_JOB, provider_id, result_ttl=0, job_timeout=300)
        return True
    except Exception as exc:  # noqa: BLE001 - reported to the caller
        log.warning("template sync of provider %s not queued: %s", provider_id, exc)
        return False


def due_for_sync(now: datetime | None = None) -> list[Provider]:
    """Providers whose catalog was last synced more than TEMPLATE_SYNC_SECONDS ago (or never)."""
    now = now or clock.now()
    every = timedelta(seconds=float(current_app.config.get("TEMPLATE_SYNC_SECONDS", 3600)))
    return [p for p in providers_with_templates()
            if p.templates_synced_at is None or p.templates_synced_at <= now - every]


def catalog(provider_id: int) -> list[WhatsAppTemplate]:
    """A provider's templates for its admin page: approved first, then by name and language."""
    order = sa.case({s: i for i, s in enumerate(STATUSES)}, value=WhatsAppTemplate.status, else_=len(STATUSES))
    return list(db.session.scalars(sa.select(WhatsAppTemplate).where(WhatsAppTemplate.provider_id == provider_id)
                                   .order_by(order, WhatsAppTemplate.name, WhatsAppTemplate.language)))


def choices() -> list[tuple[WhatsAppTemplate, str]]:
    """Every template a canned response may point at, with its provider's name (for the form's select)."""
    rows = db.session.execute(sa.select(WhatsAppTemplate, Provider.name).join(
        Provider, Provider.id == WhatsAppTemplate.provider_id).where(WhatsAppTemplate.status != "deleted")
        .order_by(Provider.name, WhatsAppTemplate.name, WhatsAppTemplate.language)).all()
    return [(template, provider_name) for template, provider_name in rows]

