"""Break types (admins only): the breaks an agent may take (A4)."""
from __future__ import annotations

from typing import Any

from ..extensions import db
from ..models import BreakType, User
from . import audit
from .records import check_unique, save_simple


def save_break_type(break_type: BreakType | None, values: dict[str, Any], actor: User) -> BreakType:
    check_unique(BreakType, values["name"], break_type.id if break_type else None)
    return save_simple(BreakType, break_type, values, actor, "break_type")


def delete_break_type(break_type: BreakType, actor: User) -> None:
    # Agents in this break keep their state; the foreign key forgets the type (ON DELETE SET NULL).
    audit.record(actor, "break_type.delete", "break_type", break_type.id, name=break_type.name)
    db.session.delete(break_type)
