"""Voice campaigns (admins only): the voice platform's campaigns and the agents in each."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import Role, User, VoiceCampaign
from . import audit
from .records import check_unique, save_simple


def save_voice_campaign(voice: VoiceCampaign | None, values: dict[str, Any], actor: User) -> VoiceCampaign:
    values = dict(values)
    member_ids = set(values.pop("member_ids", []) or [])
    check_unique(VoiceCampaign, values["name"], voice.id if voice else None)
    voice = save_simple(VoiceCampaign, voice, values, actor, "voice_campaign", audit_now=False)
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
