"""Who may do what: one decorator per role, and lookups that apply the security groups.

A guessed URL for an object outside the user's groups answers 404, never the object.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import abort
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload

from .extensions import db
from .models import (
    RINGALL_MODES,
    SUPERVISING_ROLES,
    AgentState,
    BreakType,
    Campaign,
    CannedResponse,
    Dialer,
    Interaction,
    Membership,
    Role,
    SecurityGroup,
    SpoolMessage,
    User,
    WhatsAppTemplate,
    user_security_groups_table,
)
from .services import routing, template_sends

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
supervisor_required = roles_required(*SUPERVISING_ROLES)
agent_required = roles_required(Role.AGENT)


def visible_groups(user: User | None = None) -> sa.Select:
    """The security groups the user sees (`User.seen_group_ids`: admins every group), by name."""
    user = user or current_user
    query = sa.select(SecurityGroup).order_by(SecurityGroup.name)
    groups = user.seen_group_ids
    return query if groups is None else query.where(SecurityGroup.id.in_(groups or {-1}))


def visible_group_ids(user: User | None = None) -> list[int]:
    """The ids of `visible_groups`, in id order (the live topics a page follows per group)."""
    statement = visible_groups(user).with_only_columns(SecurityGroup.id).order_by(None).order_by(SecurityGroup.id)
    return list(db.session.scalars(statement))


def visible_campaigns(user: User | None = None) -> sa.Select:
    user = user or current_user
    query = sa.select(Campaign).order_by(Campaign.name)
    groups = user.seen_group_ids
    if groups is None:
        return query
    if user.is_agent:
        return query.join(Membership, Membership.campaign_id == Campaign.id).where(Membership.user_id == user.id)
    return query.where(Campaign.security_group_id.in_(groups or {-1}))


def visible_dialers(user: User | None = None) -> sa.Select:
    user = user or current_user
    query = sa.select(Dialer).order_by(Dialer.name)
    groups = user.seen_group_ids
    if groups is None:
        return query
    if user.is_agent:
        return query.where(sa.false())
    return query.where(Dialer.security_group_id.in_(groups or {-1}))


def visible_agents(user: User | None = None) -> sa.Select:
    """Agents a supervisor may watch: those sharing one of the supervisor's groups."""
    user = user or current_user
    query = sa.select(User).where(User.role == Role.AGENT).order_by(User.username)
    groups = user.seen_group_ids
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


def get_spool_message_or_404(dialer: Dialer, message_id: int) -> SpoolMessage:
    """A message of this dialer's spool (the dialer looked up with get_dialer_or_404 first)."""
    message = db.session.get(SpoolMessage, message_id)
    if message is None or message.dialer_id != dialer.id:
        abort(404)
    return message


def get_agent_or_404(agent_id: int) -> User:
    agent = db.session.scalar(visible_agents().where(User.id == agent_id))
    if agent is None:
        abort(404)
    return agent


def get_membership_or_404(membership_id: int) -> Membership:
    """A membership of a campaign the user sees (another group's campaign answers 404)."""
    membership = db.session.get(Membership, membership_id)
    if membership is None:
        abort(404)
    get_campaign_or_404(membership.campaign_id)
    return membership


def get_interaction_or_404(interaction_id: int) -> Interaction:
    """Agents reach their own interactions (and ringall offers of their campaigns); supervisors their groups'."""
    interaction = db.session.get(Interaction, interaction_id)
    if interaction is None or not can_see_interaction(current_user, interaction):
        abort(404)
    return interaction


def can_see_interaction(user: User, interaction: Interaction) -> bool:
    """The rule behind get_interaction_or_404, for callers without a request (the live socket's topic check)."""
    if user.is_agent:
        if interaction.agent_id == user.id:
            return True
        return interaction.agent_id is None and interaction.is_open and _is_member(user, interaction.campaign_id)
    return user.sees_group(interaction.campaign.security_group_id)


def _is_member(user: User, campaign_id: int) -> bool:
    return bool(db.session.scalar(sa.select(Membership.id).where(Membership.campaign_id == campaign_id,
                                                                 Membership.user_id == user.id)))


# -- the agent workspace ------------------------------------------------------------------
def get_viewed_interaction_or_404(interaction_id: int) -> Interaction:
    """get_interaction_or_404's rule, with the interaction's campaign read in the same query (the
    conversation pane shows it)."""
    interaction = db.session.scalar(_viewed_statement(), {"interaction_id": interaction_id})
    if interaction is None or not can_see_interaction(current_user, interaction):
        abort(404)
    return interaction


@functools.cache
def _viewed_statement() -> sa.Select:
    """Built once (every request opening a conversation runs it): parameter interaction_id."""
    return (sa.select(Interaction).options(joinedload(Interaction.campaign))
            .where(Interaction.id == sa.bindparam("interaction_id")))


def get_own_interaction_or_404(interaction_id: int) -> Interaction:
    """Acting on a conversation (send, close, transfer) needs it to be the agent's own."""
    interaction = get_interaction_or_404(interaction_id)
    if interaction.agent_id != current_user.id:
        abort(404)
    return interaction


def get_offer_or_404(interaction_id: int) -> Interaction:
    """What an agent may try to take: a conversation of one of their ringall campaigns (taken or not:
    the loser of the race hears so), or one they may see."""
    interaction = db.session.get(Interaction, interaction_id)
    if interaction is None or not (
            (interaction.campaign.mode in RINGALL_MODES and _is_member(current_user, interaction.campaign_id))
            or can_see_interaction(current_user, interaction)):
        abort(404)
    return interaction


def get_canned_response_or_404(canned_id: str, interaction: Interaction) -> CannedResponse:
    """A canned response (a WhatsApp template) of the conversation's own campaign."""
    canned = db.session.get(CannedResponse, int(canned_id)) if canned_id.isdigit() else None
    if canned is None or canned.campaign_id != interaction.campaign_id:
        abort(404)
    return canned


def get_template_or_404(interaction: Interaction, template_id: int) -> WhatsAppTemplate:
    """W3: a template the composer offers for this conversation (its provider's, approved, its language)."""
    template = template_sends.offered_one(interaction, template_id)
    if template is None:
        abort(404)
    return template


def transfer_choices(interaction: Interaction, agent_id: int) -> list[User]:
    """Who the conversation may go to: the other agents of its campaign who can take it now (routing's
    rule, capacity aside: active, signed in, not in a break, in a voice campaign), free ones first."""
    members = routing.eligible_members(interaction.campaign, check_capacity=False)
    agents = [u for _, u in members if u.id != agent_id and u.role == Role.AGENT]
    return sorted(agents, key=lambda u: (u.state != AgentState.FREE, u.display_name.casefold()))


def handback_choices(agent: User) -> list[User]:
    """Who a supervisor may hand a leaving agent's conversations to: agents they see, of one of the
    agent's campaigns, signed in and not in break (per conversation, routing.hand_back checks the
    campaign is theirs too, else it goes to the queue)."""
    campaigns = sa.select(Membership.campaign_id).where(Membership.user_id == agent.id)
    members = sa.select(Membership.user_id).where(Membership.campaign_id.in_(campaigns))
    return list(db.session.scalars(visible_agents().where(
        User.id.in_(members), User.id != agent.id, User.active.is_(True),
        User.state.in_((AgentState.FREE.value, AgentState.BUSY.value)))))


def get_handback_agent_or_404(raw: str | None) -> User | None:
    """The agent a supervisor chose to hand the conversations to (None: the queue); another group's is 404."""
    if not raw:
        return None
    try:
        return get_agent_or_404(int(raw))
    except ValueError:
        abort(404)


def get_transfer_agent_or_404(interaction: Interaction, agent_id: int) -> User:
    """One of the agents the transfer menu offers (transfer_choices)."""
    agent = next((u for u in transfer_choices(interaction, current_user.id) if u.id == agent_id), None)
    if agent is None:
        abort(404)
    return agent


def get_break_type_or_404(break_type_id: int | None) -> BreakType:
    """A break an agent may start: an enabled break type."""
    break_type = db.session.get(BreakType, break_type_id)
    if break_type is None or not break_type.enabled:
        abort(404)
    return break_type
