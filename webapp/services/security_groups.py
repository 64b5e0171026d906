"""Security groups (admins only): what campaigns, dialers and supervisors are grouped by."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from ..extensions import db
from ..models import Campaign, Dialer, SecurityGroup, User
from . import audit
from .records import Refused, check_unique, in_use, save_simple


def save_group(group: SecurityGroup | None, values: dict[str, Any], actor: User) -> SecurityGroup:
    check_unique(SecurityGroup, values["name"], group.id if group else None)
    return save_simple(SecurityGroup, group, values, actor, "security_group")


def delete_group(group: SecurityGroup, actor: User) -> None:
    campaigns = db.session.scalars(sa.select(Campaign.name).where(Campaign.security_group_id == group.id)).all()
    dialers = db.session.scalars(sa.select(Dialer.name).where(Dialer.security_group_id == group.id)).all()
    if campaigns or dialers:
        raise Refused(in_use(_("The security group “%(name)s” is in use", name=group.name), campaigns, dialers))
    audit.record(actor, "security_group.delete", "security_group", group.id, name=group.name)
    db.session.delete(group)
