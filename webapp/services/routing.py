"""C1.1: which agent gets an interaction. (Release is here; the distributions come with the inbox.)"""
from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from ..live.events import publish
from ..models import Interaction, InteractionStatus, User
from .time import now


def release_unanswered(user: User) -> list[int]:
    """An agent leaving (sign-out, break) hands back what they have not answered yet."""
    interactions = db.session.scalars(
        sa.select(Interaction).where(Interaction.agent_id == user.id,
                                     Interaction.status == InteractionStatus.ASSIGNED)).all()
    for interaction in interactions:
        interaction.agent_id = None
        interaction.status = InteractionStatus.WAITING
        interaction.assigned_at = None
        interaction.queued_at = interaction.created_at  # keeps its place: arrival order
        publish(f"campaign:{interaction.campaign_id}", "interaction.changed", interaction_id=interaction.id)
        publish(f"user:{user.id}", "interaction.removed", interaction_id=interaction.id)
    if interactions:
        publish("routing", "routing.requeued", ids=[i.id for i in interactions], at=str(now()))
    return [i.id for i in interactions]
