"""Users (admins only): create, edit (password, role, groups, deactivation) and delete.

A new password, a deactivation or a deletion ends the user's open sessions and closes their sockets at once.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from ..extensions import db
from ..models import Role, SecurityGroup, User
from . import accounts, audit
from .records import Invalid, Refused, apply_changes, check_unique


def save_user(user: User | None, values: dict[str, Any], actor: User) -> User:
    """Create or update a user. An empty password on edit keeps the old one; a new password or a
    deactivation ends the user's open sessions and closes their sockets at once."""
    values = dict(values)
    password = values.pop("password", "") or ""
    group_ids = set(values.pop("security_group_ids", []) or [])
    check_unique(User, values["username"], user.id if user else None, "username")
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
    changed = apply_changes(user, values)
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
