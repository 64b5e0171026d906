"""Saving an administered record from form values: the two refusals forms show, unique names, the
changed attributes, the plain save with its audit entry, and the "in use" message.

Each save in `users`, `security_groups`, `break_types`, `voice_campaigns`, `provider_config` and
`campaign_config` takes plain values (a dict from a form), checks the rules that need the database,
adds to the session and records an audit entry; the caller commits.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from ..extensions import db
from ..models import User
from . import audit


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


def name_errors(model: Any, name: str, exclude_id: int | None, field: str = "name") -> dict[str, str]:
    """{field: why} when another record already has this name (case-insensitive), else {}."""
    if name_taken(model, name, exclude_id, field):
        return {field: _("“%(name)s” is already used; pick another.", name=name.strip())}
    return {}


def check_unique(model: Any, name: str, exclude_id: int | None, field: str = "name") -> None:
    errors = name_errors(model, name, exclude_id, field)
    if errors:
        raise Invalid(errors)


def replace_rows(items: list[Any], rows: Sequence[Any], make: Callable[[], Any],
                 fill: Callable[[Any, Any, int], None]) -> None:
    """Make a child collection hold one item per row, in order: existing items are reused in place
    (`fill(item, row, index)`), missing ones made, extra ones removed."""
    existing = list(items)
    for index, row in enumerate(rows):
        item = existing[index] if index < len(existing) else None
        if item is None:
            item = make()
            items.append(item)
        fill(item, row, index)
    for item in existing[len(rows):]:
        items.remove(item)


def apply_changes(obj: Any, values: dict[str, Any]) -> list[str]:
    """Set the attributes that differ and name them (for the audit entry)."""
    changed = []
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed.append(key)
    return changed


def save_simple(model: Any, obj: Any, values: dict[str, Any], actor: User, kind: str,
                audit_now: bool = True) -> Any:
    """Create (`obj` None) or update a record from `values`; the audit entry `<kind>.create|update`."""
    creating = obj is None
    if creating:
        obj = model()
        db.session.add(obj)
    changed = apply_changes(obj, values)
    db.session.flush()
    if audit_now:
        audit.record(actor, f"{kind}.{'create' if creating else 'update'}", kind, obj.id,
                     name=getattr(obj, "name", None), changed=sorted(changed))
    return obj


def in_use(head: str, campaigns: list[str], dialers: list[str]) -> str:
    """Why a delete is refused: "<head> by campaigns: …; dialers: …. Move or delete them first."."""
    parts = []
    if campaigns:
        parts.append(_("campaigns: %(names)s", names=", ".join(campaigns)))
    if dialers:
        parts.append(_("dialers: %(names)s", names=", ".join(dialers)))
    return _("%(head)s by %(what)s. Move or delete them first.", head=head, what="; ".join(parts))
