"""What happens to a conversation once it is there (A3-A5, C2): the agent opens, takes (ringall),
closes and transfers it, starts one from the softphone; the optional rule closing long waits."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from ...extensions import db
from ...i18n import translating
from ...live.events import publish
from ...models import Campaign, Interaction, InteractionStatus, Membership, User
from ...models.campaigns import DEFAULT_AUTO_CLOSE
from .. import presence, routing
from .. import time as clock
from .customers import lock_customer, normalise_number, on_do_not_contact, open_interaction
from .delivery import mark_read_after_commit
from .errors import InteractionError
from .messages import announce, send_agent_message, send_bot_message, whatsapp_window_open


def open_for_agent(interaction: Interaction, agent: User) -> None:
    """The agent opened it: it is read now; it stays ASSIGNED until the first reply."""
    if interaction.agent_id == agent.id and interaction.unread:
        interaction.unread = 0
        publish(f"user:{agent.id}", "interaction.updated", interaction_id=interaction.id)
        mark_read_after_commit(interaction)


def _leaves(interaction: Interaction, agent: User) -> None:
    """The conversation is no longer this agent's: out of their inbox, and they may be free now."""
    publish(f"user:{agent.id}", "interaction.removed", interaction_id=interaction.id)
    presence.refresh_busy(agent)


def _may_handle(interaction: Interaction, user: User) -> None:
    with translating():
        if not interaction.is_open:
            raise InteractionError(_("This conversation is closed."))
        if interaction.agent_id != user.id and not user.may_supervise:
            raise InteractionError(_("This conversation is not assigned to you."))


def take_offer(interaction: Interaction, agent: User) -> bool:
    """Ringall: the first agent to take an offered interaction gets it; anyone later gets False. An agent
    who may not take one now hears why (InteractionError): the offer is still there for them later."""
    campaign = interaction.campaign
    if campaign.mode not in ("ringall", "ringallmultiple"):
        return False
    routing.lock_routing(campaign.id)
    if not routing.is_eligible(agent, campaign):
        with translating():
            if routing.is_eligible(agent, campaign, check_capacity=False):
                raise InteractionError(_("You already have a conversation open and this campaign gives one at a "
                                         "time: close it, then take this one."))
            raise InteractionError(_("You cannot take conversations now (signed out or in a break)."))
    now = clock.now()
    result = db.session.execute(
        sa.update(Interaction).where(Interaction.id == interaction.id,
                                     Interaction.status == InteractionStatus.WAITING,
                                     Interaction.agent_id.is_(None))
        .values(status=InteractionStatus.ASSIGNED, agent_id=agent.id, assigned_at=now)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    db.session.refresh(interaction)
    presence.refresh_busy(agent)
    publish(f"offers:{campaign.id}", "interaction.taken", interaction_id=interaction.id)
    announce(interaction, "interaction.assigned")
    return True


def close(interaction: Interaction, agent: User, disposition: str) -> None:
    """A5: close with a disposition; the agent is free for the next one."""
    _may_handle(interaction, agent)
    disposition = (disposition or "").strip()
    with translating():
        if not disposition:
            raise InteractionError(_("Choose a disposition to close the conversation."))
    owner = interaction.agent
    interaction.status = InteractionStatus.CLOSED
    interaction.closed_at = clock.now()
    interaction.disposition = disposition[:80]
    interaction.unread = 0
    if owner is not None:
        _leaves(interaction, owner)
    publish(f"campaign:{interaction.campaign_id}", "interaction.changed", interaction_id=interaction.id)
    routing.request_routing(None)


def transfer_to_agent(interaction: Interaction, agent: User, target_agent: User) -> None:
    """A5: hand the conversation to another agent of the campaign who is signed in and not in break."""
    _may_handle(interaction, agent)
    with translating():
        if target_agent.id == interaction.agent_id:
            raise InteractionError(_("The conversation is already with that agent."))
        if not routing.is_eligible(target_agent, interaction.campaign, check_capacity=False):
            raise InteractionError(_("%(name)s cannot take conversations of this campaign now.",
                                     name=target_agent.display_name))
    previous = interaction.agent
    interaction.agent_id = target_agent.id
    interaction.transfers = (interaction.transfers or 0) + 1
    interaction.status = InteractionStatus.ASSIGNED
    interaction.assigned_at = clock.now()
    db.session.flush()
    if previous is not None:
        _leaves(interaction, previous)
    presence.refresh_busy(target_agent)
    announce(interaction, "interaction.assigned")
    routing.request_routing(None)


def transfer_to_campaign(interaction: Interaction, agent: User, campaign: Campaign) -> None:
    """A5: requeue the conversation (with its messages) in another campaign, as a new arrival there."""
    _may_handle(interaction, agent)
    with translating():
        if campaign.id == interaction.campaign_id:
            raise InteractionError(_("The conversation is already in that campaign."))
        if not campaign.enabled:
            raise InteractionError(_("That campaign is disabled."))
        if campaign.channel != interaction.channel:
            raise InteractionError(_("That campaign works on another channel."))
    previous = interaction.agent
    old_campaign = interaction.campaign_id
    interaction.campaign_id = campaign.id
    interaction.agent_id = None
    interaction.transfers = (interaction.transfers or 0) + 1
    interaction.status = InteractionStatus.WAITING
    interaction.assigned_at = None
    interaction.queued_at = clock.now()
    db.session.flush()
    db.session.expire(interaction, ["campaign", "agent"])
    if previous is not None:
        _leaves(interaction, previous)
    publish(f"campaign:{old_campaign}", "interaction.changed", interaction_id=interaction.id)
    publish(f"campaign:{campaign.id}", "interaction.changed", interaction_id=interaction.id)
    routing.request_routing(campaign.id)
    routing.request_routing(None)


def start_outbound(agent: User, campaign: Campaign, number: str, body: str, *,
                   template_ref: str | None = None) -> Interaction:
    """A3: the softphone sends an SMS to any number: an outbound interaction, the agent's and ACTIVE."""
    with translating():
        e164 = normalise_number(number)
        if e164 is None:
            raise InteractionError(_("%(number)s is not a valid phone number.", number=number))
        if not campaign.enabled:
            raise InteractionError(_("That campaign is disabled."))
        member = db.session.scalar(sa.select(Membership.id).where(
            Membership.campaign_id == campaign.id, Membership.user_id == agent.id))
        if member is None:
            raise InteractionError(_("You are not a member of that campaign."))
        if on_do_not_contact(e164, campaign.id):
            raise InteractionError(_("%(number)s is on the do-not-contact list.", number=e164))
    lock_customer(campaign.id, e164)
    interaction = open_interaction(campaign.id, e164)
    if interaction is not None and interaction.agent_id not in (None, agent.id):
        with translating():
            raise InteractionError(_("That customer is already talking with another agent."))
    now = clock.now()
    if interaction is None:
        interaction = Interaction(campaign_id=campaign.id, customer_number=e164, channel=campaign.channel,
                                  direction="outbound", created_at=now, queued_at=now, last_message_at=now)
        db.session.add(interaction)
    interaction.agent_id = agent.id
    interaction.status = InteractionStatus.ASSIGNED
    interaction.assigned_at = interaction.assigned_at or now
    db.session.flush()
    db.session.refresh(interaction, ["campaign"])
    send_agent_message(interaction, agent, body, template_ref=template_ref)
    presence.refresh_busy(agent)
    announce(interaction, "interaction.assigned")
    return interaction


# -- housekeeping -------------------------------------------------------------------------
AUTO_CLOSED = "auto-closed"  # the disposition of a conversation the campaign's rule closed


def close_long_waiting(now: datetime | None = None) -> int:
    """C2's optional rule (`Campaign.auto_close_hours`, 0 = off): a conversation left WAITING that long
    (since it was queued and since its last message) is closed with disposition "auto-closed", and the
    campaign's message goes to the customer (not on WhatsApp once the 24 h window is closed: it could not
    be delivered). The abandon threshold never closes anything: past it a waiting customer only counts
    as abandoned (`stats`) and is highlighted; they stay in the queue."""
    now = now or clock.now()
    rows = db.session.execute(
        sa.select(Interaction.id, Interaction.queued_at, Interaction.last_message_at, Campaign.auto_close_hours)
        .join(Campaign, Campaign.id == Interaction.campaign_id)
        .where(Interaction.status == InteractionStatus.WAITING, Campaign.auto_close_hours > 0)).all()
    count = 0
    for interaction_id, queued_at, last_message_at, hours in rows:
        cutoff = now - timedelta(hours=hours)
        if max(queued_at, last_message_at or queued_at) > cutoff:
            continue
        result = db.session.execute(
            sa.update(Interaction).where(Interaction.id == interaction_id,
                                         Interaction.status == InteractionStatus.WAITING,
                                         Interaction.agent_id.is_(None))
            .values(status=InteractionStatus.CLOSED, closed_at=now, disposition=AUTO_CLOSED, unread=0)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            continue
        count += 1
        interaction = db.session.get(Interaction, interaction_id, populate_existing=True)
        message = (interaction.campaign.auto_close_message or "").strip() or DEFAULT_AUTO_CLOSE
        if whatsapp_window_open(interaction, now):
            send_bot_message(interaction, message)
        publish(f"campaign:{interaction.campaign_id}", "interaction.changed", interaction_id=interaction_id)
        publish(f"offers:{interaction.campaign_id}", "interaction.taken", interaction_id=interaction_id)
    return count
