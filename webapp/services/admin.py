"""Administration rules: users, security groups, break types, voice campaigns and providers.

Each save takes plain values (a dict from a form), checks the rules that need the database
(unique names, objects in use), adds to the session and records an audit entry; the caller commits.
"""
from __future__ import annotations

import json
import secrets
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from ..extensions import db
from ..models import (
    BreakType,
    Campaign,
    Dialer,
    Provider,
    Role,
    SecurityGroup,
    User,
    VoiceCampaign,
)
from ..providers import TYPES
from . import accounts, audit


class Invalid(ValueError):
    """Values a form must show again, with one message per field name (e.g. "name", "schedule-0-end")."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class Refused(Exception):
    """An action that cannot be done as asked; the message says why, in words for the user."""


def name_taken(model: Any, name: str, exclude_id: int | None, column: str = "name") -> bool:
    col = getattr(model, column)
    query = sa.select(model.id).where(sa.func.lower(col) == name.strip().lower())
    if exclude_id is not None:
        query = query.where(model.id != exclude_id)
    return db.session.scalar(query.limit(1)) is not None


def _check_unique(model: Any, name: str, exclude_id: int | None, field: str = "name") -> None:
    if name_taken(model, name, exclude_id, field):
        raise Invalid({field: _("“%(name)s” is already used; pick another.", name=name.strip())})


def _changes(obj: Any, values: dict[str, Any]) -> list[str]:
    """Set the attributes that differ and name them (for the audit entry)."""
    changed = []
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed.append(key)
    return changed


# -- users ---------------------------------------------------------------------------------
def save_user(user: User | None, values: dict[str, Any], actor: User) -> User:
    """Create or update a user. An empty password on edit keeps the old one; a new password or a
    deactivation ends the user's open sessions and closes their sockets at once."""
    values = dict(values)
    password = values.pop("password", "") or ""
    group_ids = set(values.pop("security_group_ids", []) or [])
    _check_unique(User, values["username"], user.id if user else None, "username")
    if user is None and not password:
        raise Invalid({"password": _("Set a password for the new user.")})
    if user is not None and user.id == actor.id:
        if not values.get("active", True):
            raise Invalid({"active": _("You cannot deactivate yourself.")})
        if values.get("role") != Role.ADMIN.value:
            raise Invalid({"role": _("You cannot take the administrator role from yourself.")})
    creating = user is None
    if creating:
        user = User(password_hash="!")
        db.session.add(user)
    was_active = user.active
    changed = _changes(user, values)
    groups = list(db.session.scalars(sa.select(SecurityGroup).where(SecurityGroup.id.in_(group_ids or {-1}))))
    if {g.id for g in user.security_groups} != {g.id for g in groups}:
        user.security_groups = groups
        changed.append("security_groups")
    if password:
        user.set_password(password)
        changed.append("password")
        if not creating:
            accounts.end_all_sessions(user)
    elif not creating and was_active and not user.active:
        accounts.end_all_sessions(user)
    db.session.flush()
    audit.record(actor, "user.create" if creating else "user.update", "user", user.id,
                 username=user.username, changed=sorted(changed))
    return user


def delete_user(user: User, actor: User) -> None:
    if user.id == actor.id:
        raise Refused(_("You cannot delete yourself."))
    audit.record(actor, "user.delete", "user", user.id, username=user.username)
    accounts.end_all_sessions(user)  # the sockets close now too
    db.session.delete(user)


# -- security groups, break types, voice campaigns --------------------------------------------
def save_group(group: SecurityGroup | None, values: dict[str, Any], actor: User) -> SecurityGroup:
    _check_unique(SecurityGroup, values["name"], group.id if group else None)
    return _save_simple(SecurityGroup, group, values, actor, "security_group")


def delete_group(group: SecurityGroup, actor: User) -> None:
    campaigns = db.session.scalars(sa.select(Campaign.name).where(Campaign.security_group_id == group.id)).all()
    dialers = db.session.scalars(sa.select(Dialer.name).where(Dialer.security_group_id == group.id)).all()
    if campaigns or dialers:
        raise Refused(_in_use(_("The security group “%(name)s” is in use", name=group.name), campaigns, dialers))
    audit.record(actor, "security_group.delete", "security_group", group.id, name=group.name)
    db.session.delete(group)


def save_break_type(break_type: BreakType | None, values: dict[str, Any], actor: User) -> BreakType:
    _check_unique(BreakType, values["name"], break_type.id if break_type else None)
    return _save_simple(BreakType, break_type, values, actor, "break_type")


def delete_break_type(break_type: BreakType, actor: User) -> None:
    # Agents in this break keep their state; the foreign key forgets the type (ON DELETE SET NULL).
    audit.record(actor, "break_type.delete", "break_type", break_type.id, name=break_type.name)
    db.session.delete(break_type)


def save_voice_campaign(voice: VoiceCampaign | None, values: dict[str, Any], actor: User) -> VoiceCampaign:
    values = dict(values)
    member_ids = set(values.pop("member_ids", []) or [])
    _check_unique(VoiceCampaign, values["name"], voice.id if voice else None)
    voice = _save_simple(VoiceCampaign, voice, values, actor, "voice_campaign", audit_now=False)
    members = list(db.session.scalars(sa.select(User).where(User.id.in_(member_ids or {-1}),
                                                            User.role == Role.AGENT.value)))
    voice.members = members
    db.session.flush()
    audit.record(actor, "voice_campaign.save", "voice_campaign", voice.id, name=voice.name,
                 members=sorted(u.username for u in members))
    return voice


def delete_voice_campaign(voice: VoiceCampaign, actor: User) -> None:
    audit.record(actor, "voice_campaign.delete", "voice_campaign", voice.id, name=voice.name)
    db.session.delete(voice)


def _save_simple(model: Any, obj: Any, values: dict[str, Any], actor: User, kind: str,
                 audit_now: bool = True) -> Any:
    creating = obj is None
    if creating:
        obj = model()
        db.session.add(obj)
    changed = _changes(obj, values)
    db.session.flush()
    if audit_now:
        audit.record(actor, f"{kind}.{'create' if creating else 'update'}", kind, obj.id,
                     name=getattr(obj, "name", None), changed=sorted(changed))
    return obj


def _in_use(head: str, campaigns: list[str], dialers: list[str]) -> str:
    parts = []
    if campaigns:
        parts.append(_("campaigns: %(names)s", names=", ".join(campaigns)))
    if dialers:
        parts.append(_("dialers: %(names)s", names=", ".join(dialers)))
    return _("%(head)s by %(what)s. Move or delete them first.", head=head, what="; ".join(parts))


# -- providers -------------------------------------------------------------------------------
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
    errors: dict[str, str] = {}
    if name_taken(Provider, values["name"], provider.id if provider else None):
        errors["name"] = _("“%(name)s” is already used; pick another.", name=values["name"].strip())
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
    changed = _changes(provider, {**values, "options": opts})
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
        raise Refused(_in_use(_("The provider “%(name)s” is in use", name=provider.name), campaigns, dialers))
    audit.record(actor, "provider.delete", "provider", provider.id, name=provider.name, type=provider.type)
    db.session.delete(provider)
