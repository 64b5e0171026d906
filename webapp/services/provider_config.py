"""Providers (admins only): the gateways' settings, checked against their type (`providers.TYPES`).

Credentials are write-only: an empty one keeps the stored value, and the audit entry names the keys
changed, never their values. A provider a campaign or a dialer sends through cannot be deleted.
"""
from __future__ import annotations

import json
import secrets
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from ..extensions import db
from ..models import Campaign, Dialer, Provider, User
from ..providers import TYPES
from . import audit
from .records import Invalid, Refused, apply_changes, in_use, name_errors

# Options the adapters read as JSON objects.
JSON_OPTIONS = frozenset({"params", "port_numbers"})


def clean_provider_settings(provider_type: str, credentials: dict[str, str], options: dict[str, str],
                            stored_credentials: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    """Check the credentials and options a type needs. An empty credential keeps the stored one;
    errors are keyed "cred-<key>" / "opt-<key>" as the form names them."""
    meta = TYPES[provider_type]
    errors: dict[str, str] = {}
    creds: dict[str, str] = {}
    for field in meta.credentials:
        value = (credentials.get(field.key) or "").strip() or stored_credentials.get(field.key, "")
        if field.required and not value:
            errors[f"cred-{field.key}"] = _("Required for this provider type.")
        if value:
            creds[field.key] = value
    opts: dict[str, Any] = {}
    for field in meta.options:
        raw = (options.get(field.key) or "").strip()
        if not raw:
            if field.required and field.default is None:
                errors[f"opt-{field.key}"] = _("Required for this provider type.")
            elif field.required:
                opts[field.key] = field.default
            continue
        if field.choices and raw not in field.choices:
            errors[f"opt-{field.key}"] = _("Pick one of: %(choices)s.", choices=", ".join(field.choices))
        elif field.key in JSON_OPTIONS:
            try:
                value = json.loads(raw)
            except ValueError as exc:
                errors[f"opt-{field.key}"] = _("Not valid JSON: %(error)s.", error=str(exc))
                continue
            if not isinstance(value, dict):
                errors[f"opt-{field.key}"] = _('Write a JSON object, e.g. {"to": "{to}"}.')
                continue
            opts[field.key] = value
        elif isinstance(field.default, int) and not isinstance(field.default, bool):
            if not raw.isdigit():
                errors[f"opt-{field.key}"] = _("Write a whole number.")
                continue
            opts[field.key] = int(raw)
        else:
            opts[field.key] = raw
    if errors:
        raise Invalid(errors)
    return creds, opts


def option_text(value: Any) -> str:
    """An option as the form shows it (JSON objects as JSON)."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def save_provider(provider: Provider | None, values: dict[str, Any], credentials: dict[str, str],
                  options: dict[str, str], actor: User) -> Provider:
    """Create or update a provider. Credentials are write-only: an empty one keeps the stored value;
    the audit entry names the credential keys changed, never their values."""
    provider_type = values["type"]
    meta = TYPES[provider_type]
    errors = name_errors(Provider, values["name"], provider.id if provider else None)
    if values["channel"] not in meta.channels:
        errors["channel"] = _("%(type)s sends only: %(channels)s.", type=meta.label,
                              channels=", ".join(meta.channels))
    if meta.needs_base_url and not values.get("base_url"):
        errors["base_url"] = _("This provider type needs the gateway's base URL.")
    stored = provider.credentials if provider is not None and provider.type == provider_type else {}
    try:
        creds, opts = clean_provider_settings(provider_type, credentials, options, stored)
    except Invalid as exc:
        errors.update(exc.errors)
    if errors:
        raise Invalid(errors)
    if "webhook_token" in meta.option_keys and not opts.get("webhook_token"):
        # A gateway that does not sign is known by this token alone: never leave it without one.
        opts["webhook_token"] = secrets.token_urlsafe(24)
    creating = provider is None
    if creating:
        provider = Provider()
        db.session.add(provider)
    changed = apply_changes(provider, {**values, "options": opts})
    old_credentials = provider.credentials if not creating and provider.credentials_encrypted else {}
    changed_keys = sorted(k for k in set(creds) | set(old_credentials) if creds.get(k) != old_credentials.get(k))
    if creating or changed_keys:
        provider.credentials = creds
    db.session.flush()
    audit.record(actor, "provider.create" if creating else "provider.update", "provider", provider.id,
                 name=provider.name, changed=sorted(changed), credentials_changed=changed_keys)
    return provider


def provider_users(provider: Provider) -> tuple[list[str], list[str]]:
    campaigns = db.session.scalars(sa.select(Campaign.name).where(Campaign.provider_id == provider.id)
                                   .order_by(Campaign.name)).all()
    dialers = db.session.scalars(sa.select(Dialer.name).where(Dialer.provider_id == provider.id)
                                 .order_by(Dialer.name)).all()
    return list(campaigns), list(dialers)


def delete_provider(provider: Provider, actor: User) -> None:
    """Refused while a campaign or a dialer sends through it (the message names them)."""
    campaigns, dialers = provider_users(provider)
    if campaigns or dialers:
        raise Refused(in_use(_("The provider “%(name)s” is in use", name=provider.name), campaigns, dialers))
    audit.record(actor, "provider.delete", "provider", provider.id, name=provider.name, type=provider.type)
    db.session.delete(provider)
