"""Who may do what: one decorator per role, and lookups that apply the security groups.

A guessed URL for an object outside the user's groups answers 404, never the object.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import abort
from flask_login import current_user, login_required

from .extensions import db
from .models import (
    Campaign,
    Dialer,
    Interaction,
    Membership,
    Role,
    User,
    user_security_groups_table,
)

F = TypeVar("F", bound=Callable[..., Any])


def roles_required(*roles: str) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped  # type: ignore[return-value]
    return decorator


admin_required = roles_required(Role.ADMIN)
supervisor_required = roles_required(Role.ADMIN, Role.SUPERVISOR)
agent_required = roles_required(Role.AGENT)


def user_group_ids(user: User) -> set[int] | None:
    """The security groups a user sees; None means all (admins)."""
    if user.is_admin:
        return None
    return user.security_group_ids


def visible_campaigns(user: User | None = None) -> sa.Select:
    user = user or current_user
    query = sa.select(Campaign).order_by(Campaign.name)
    groups = user_group_ids(user)
    if groups is None:
        return query
    if user.is_agent:
        return query.join(Membership, Membership.campaign_id == Campaign.id).where(Membership.user_id == user.id)
    return query.where(Campaign.security_group_id.in_(groups or {-1}))


def visible_dialers(user: User | None = None) -> sa.Select:
    user = user or current_user
    query = sa.select(Dialer).order_by(Dialer.name)
    groups = user_group_ids(user)
    if groups is None:
        return query
    if user.is_agent:
        return query.where(sa.false())
    return query.where(Dialer.security_group_id.in_(groups or {-1}))


def visible_agents(user: User | None = None) -> sa.Select:
    """Agents a supervisor may watch: those sharing one of the supervisor's groups."""
    user = user or current_user
    query = sa.select(User).where(User.role == Role.AGENT).order_by(User.username)
    groups = user_group_ids(user)
    if groups is None:
        return query
    members = sa.select(user_security_groups_table.c.user_id).where(
        user_security_groups_table.c.security_group_id.in_(groups or {-1}))
    return query.where(User.id.in_(members))


def get_campaign_or_404(campaign_id: int) -> Campaign:
    campaign = db.session.scalar(visible_campaigns().where(Campaign.id == campaign_id))
    if campaign is None:
        abort(404)
    return campaign


def get_dialer_or_404(dialer_id: int) -> Dialer:
    dialer = db.session.scalar(visible_dialers().where(Dialer.id == dialer_id))
    if dialer is None:
        abort(404)
    return dialer


def get_agent_or_404(agent_id: int) -> User:
    agent = db.session.scalar(visible_agents().where(User.id == agent_id))
    if agent is None:
        abort(404)
    return agent


def get_interaction_or_404(interaction_id: int) -> Interaction:
    """Agents reach their own interactions (and ringall offers of their campaigns); supervisors their groups'."""
    interaction = db.session.get(Interaction, interaction_id)
    if interaction is None or not can_see_interaction(current_user, interaction):
        abort(404)
    return interaction


def can_see_interaction(user: User, interaction: Interaction) -> bool:
    """The rule behind get_interaction_or_404, for callers without a request (the live socket's topic check)."""
    if user.is_admin:
        return True
    if user.is_agent:
        if interaction.agent_id == user.id:
            return True
        return bool(interaction.agent_id is None and interaction.is_open and db.session.scalar(
            sa.select(Membership.id).where(Membership.campaign_id == interaction.campaign_id,
                                           Membership.user_id == user.id)))
    return interaction.campaign.security_group_id in user.security_group_ids
