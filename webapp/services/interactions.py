"""A and C2: the life of a conversation, from the customer's first message to its close.

Every function adds to `db.session` and lets the caller (view or job) commit; live
events and jobs (sends, routing) go out only after that commit.

Decisions the manual leaves open, stated once here:
- A message to a *disabled* campaign is kept only when the customer already has an
  open interaction there (the agent may finish the conversation); otherwise it is
  dropped with a log line and nothing is stored.
- A STOP keyword (app.config["STOP_KEYWORDS"], the whole message, case and accents
  ignored) puts the number on the campaign's do-not-contact list; the bot confirms
  once (only when the number was not already listed). With an open interaction the
  message joins it (the agent sees it); otherwise it is stored in a new interaction
  closed at once with disposition "opt-out", so it is in the transcripts but never
  routed.
- Outside the campaign's schedule the bot sends the out-of-hours message once per
  interaction; the interaction is still queued and routed (an agent who is signed
  in may answer).
- Opening an interaction marks it read (unread = 0) and leaves it ASSIGNED; the
  agent's (or a supervisor's) first reply makes it ACTIVE and sets first_reply_at.
- Manual transfers to an agent check eligibility (member, signed in, not in break,
  in a voice campaign) but not the routing capacity: a person decided.
"""
from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..extensions import db
from ..live.events import publish
from ..models import (
    Campaign,
    Interaction,
    InteractionStatus,
    Membership,
    Message,
    Provider,
    SenderKind,
    User,
)
from ..providers.base import STATUS_ORDER, InboundMessage, StatusUpdate
from . import agents, dialer_engine, dnc, phones
from . import time as clock
from .schedules import in_schedule

log = logging.getLogger(__name__)

MAX_BODY = 1600
WHATSAPP_WINDOW = timedelta(hours=24)
OPT_OUT_DISPOSITION = "opt-out"
# Provider refs of inbox messages live above the spool's ids: Dinstar echoes one integer
# `user_id` for both, and this keeps a chat reply's receipt from matching a spool message.
MESSAGE_REF_OFFSET = 1_000_000_000
# A delivery status may only move forwards; "sending" is our claim while a send job runs.
_RANK = {**STATUS_ORDER, "sending": 0}
_FINAL_FAILURES = ("failed", "undelivered")
OPTED_OUT_CODES = ("21610",)


class InteractionError(Exception):
    """A rule refused the action; str(error) is a translated sentence for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@contextmanager
def translating() -> Iterator[None]:
    """gettext in a job (no request): the center's default language."""
    if has_request_context():
        yield
    else:
        with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "es")):
            yield


# -- jobs after commit -------------------------------------------------------------
_JOBS = "conversa_jobs_after_commit"


def enqueue_after_commit(func: str, *args: Any, delay: float | None = None) -> None:
    """Queue an RQ job once the current transaction commits (dropped on rollback)."""
    db.session.info.setdefault(_JOBS, []).append((func, args, delay))


def take_jobs_after_commit(func: str) -> list[tuple[Any, ...]]:
    """Withdraw the queued-for-commit jobs of `func` (the caller runs that work itself); their args."""
    jobs = db.session.info.get(_JOBS) or []
    taken = [args for f, args, delay in jobs if f == func and not delay]
    jobs[:] = [job for job in jobs if not (job[0] == func and not job[2])]
    return taken


@event.listens_for(Session, "after_commit")
def _enqueue_jobs(session: Session) -> None:
    jobs = session.info.pop(_JOBS, None)
    if not jobs:
        return
    queue = current_app.extensions["conversa_queue"]
    seen = set()
    for func, args, delay in jobs:
        if (func, args, delay) in seen:
            continue
        seen.add((func, args, delay))
        try:  # fire and forget: nobody reads a result, so RQ keeps none (fewer writes per job)
            if delay:
                queue.enqueue_in(timedelta(seconds=delay), func, *args, result_ttl=0)
            else:
                queue.enqueue(func, *args, result_ttl=0)
        except Exception as exc:  # Redis down: the periodic tasks catch up on routing
            log.warning("job %s%r not queued: %s", func, args, exc)


@event.listens_for(Session, "after_rollback")
def _drop_jobs(session: Session) -> None:
    session.info.pop(_JOBS, None)


# -- helpers -------------------------------------------------------------------------
def normalise_number(raw: str, region: str | None = None) -> str | None:
    """E.164 for a number typed or reported in any usual form, or None when invalid."""
    raw = (raw or "").strip().removeprefix("whatsapp:")
    region = region or current_app.config.get("DEFAULT_REGION", "UY")
    return phones.to_e164(raw, region)


def _customer_number(raw: str) -> str:
    raw = (raw or "").strip().removeprefix("whatsapp:")
    if raw.startswith("+"):
        return raw
    return normalise_number(raw) or raw


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")


def did_matches(did: str, to: str) -> int:
    """2 for the same DID, 1 for the same number written national vs international, 0 otherwise."""
    did = (did or "").strip().removeprefix("whatsapp:")
    to = (to or "").strip().removeprefix("whatsapp:")
    if not did or not to:
        return 0
    a, b = _digits(did), _digits(to)
    if not a or not b or re.search(r"[A-Za-z]", did):
        return 2 if did.casefold() == to.casefold() else 0  # alphanumeric sender ids
    if a == b:
        return 2
    a, b = a.lstrip("0"), b.lstrip("0")
    short, long_ = sorted((a, b), key=len)
    return 1 if len(short) >= 7 and long_.endswith(short) else 0


def find_campaign(provider: Provider, to: str) -> Campaign | None:
    """The provider's campaign whose DID is `to`; a provider with one campaign takes everything."""
    campaigns = db.session.scalars(sa.select(Campaign).where(Campaign.provider_id == provider.id)
                                   .order_by(Campaign.id)).all()
    scored = sorted(((did_matches(c.did, to), -c.id, c) for c in campaigns), key=lambda t: t[:2], reverse=True)
    if scored and scored[0][0] > 0:
        return scored[0][2]
    if len(campaigns) == 1:
        return campaigns[0]
    return None


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[\s.!¡?¿,;:]+", " ", text).strip().upper()


def is_stop_keyword(body: str) -> bool:
    keywords = {_fold(k) for k in current_app.config.get("STOP_KEYWORDS", ())}
    return _fold(body) in keywords


def on_do_not_contact(number: str, campaign_id: int) -> bool:
    """Listed for this campaign, or for everyone."""
    return dnc.is_blocked(number, campaign_id=campaign_id)


def add_do_not_contact(number: str, campaign_id: int, source: str) -> bool:
    """Put a number on the campaign's do-not-contact list; False when it was already there."""
    if on_do_not_contact(number, campaign_id):
        return False
    return dnc.add(number, campaign_id=campaign_id, source=source)


def _lock_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def lock_customer(campaign_id: int, number: str) -> None:
    """Serialise messages of one customer in one campaign (so two at once open one interaction)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(f"cust:{campaign_id}:{number}"))))
    else:  # SQLite: taking the write lock serialises every writer
        db.session.execute(sa.update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id)
                           .values(rr_last_user_id=Campaign.__table__.c.rr_last_user_id))


def open_interaction(campaign_id: int, number: str) -> Interaction | None:
    return db.session.scalar(sa.select(Interaction).where(
        Interaction.campaign_id == campaign_id, Interaction.customer_number == number,
        Interaction.status.in_(InteractionStatus.OPEN)).order_by(Interaction.id.desc()).limit(1)
        .execution_options(populate_existing=True))


def _announce(interaction: Interaction, agent_kind: str = "interaction.updated") -> None:
    if interaction.agent_id:
        publish(f"user:{interaction.agent_id}", agent_kind, interaction_id=interaction.id)
    publish(f"campaign:{interaction.campaign_id}", "interaction.changed", interaction_id=interaction.id)


def _request_routing(campaign_id: int | None) -> None:
    from . import routing

    routing.request_routing(campaign_id)


# -- inbound -----------------------------------------------------------------------------
def receive_inbound(provider: Provider, inbound: InboundMessage) -> Message | None:
    """Store one customer message (once, however often the gateway delivers it) and move its
    conversation on: open or continue, opt-out, out-of-hours reply, then routing after commit."""
    if not inbound.provider_message_id:
        log.warning("provider %s: inbound message without an id dropped", provider.id)
        return None
    exists = db.session.scalar(sa.select(Message.id).where(
        Message.provider_id == provider.id, Message.provider_message_id == inbound.provider_message_id))
    if exists is not None:
        return None
    campaign = find_campaign(provider, inbound.to)
    if campaign is None:
        log.warning("provider %s: no campaign for DID %r; message %s dropped",
                    provider.id, inbound.to, inbound.provider_message_id)
        return None
    number = _customer_number(inbound.from_number)
    lock_customer(campaign.id, number)
    now = clock.now()
    try:
        with db.session.begin_nested():
            interaction = open_interaction(campaign.id, number)
            if interaction is None and not campaign.enabled:
                log.info("campaign %s is disabled: message %s from %s dropped",
                         campaign.id, inbound.provider_message_id, number)
                return None
            stop = is_stop_keyword(inbound.body)
            if interaction is None:
                interaction = Interaction(
                    campaign_id=campaign.id, customer_number=number, customer_name=inbound.profile_name or "",
                    channel="whatsapp" if "whatsapp" in (provider.channel, inbound.channel) else "sms",
                    direction="inbound", status=InteractionStatus.WAITING, created_at=now, queued_at=now,
                    last_message_at=now, unread=0)
                if stop:
                    interaction.status = InteractionStatus.CLOSED
                    interaction.closed_at = now
                    interaction.disposition = OPT_OUT_DISPOSITION
                db.session.add(interaction)
            elif inbound.profile_name and not interaction.customer_name:
                interaction.customer_name = inbound.profile_name
            message = Message(interaction=interaction, sender_kind=SenderKind.CUSTOMER, body=inbound.body or "",
                              media=list(inbound.media) or None, provider_id=provider.id,
                              provider_message_id=inbound.provider_message_id, status="received", created_at=now)
            db.session.add(message)
            interaction.last_message_at = now
            interaction.last_customer_message_at = now
            interaction.unread = (interaction.unread or 0) + 1
            db.session.flush()
    except IntegrityError:  # the same message, delivered twice at once: the other delivery has it
        log.info("provider %s: duplicate inbound %s ignored", provider.id, inbound.provider_message_id)
        return None
    if inbound.media:  # W1 hook (issue 13): keep the media; files are downloaded after the commit
        from . import media

        media.attach_inbound(message, provider, inbound.media)
    publish(f"interaction:{interaction.id}", "message.new", message_id=message.id)
    _announce(interaction)
    if stop:
        if add_do_not_contact(number, campaign.id, "keyword"):
            with translating():
                text = _("You will not receive more messages from us. Thank you.")
            send_bot_message(interaction, text)
    elif not interaction.out_of_hours_sent and not in_schedule(campaign.schedule, clock.to_center(now)):
        interaction.out_of_hours_sent = True
        send_bot_message(interaction, campaign.out_of_hours_message)
    if interaction.status == InteractionStatus.WAITING:
        _request_routing(campaign.id)
    return message


def apply_status(provider: Provider, update: StatusUpdate) -> bool:
    """Move an outbound message's delivery status forwards (callbacks may come in any order);
    a receipt that is no chat message goes to the dialer's spool engine when there is one."""
    message = None
    if update.provider_message_id:
        message = db.session.scalar(sa.select(Message).where(
            Message.provider_id == provider.id, Message.provider_message_id == update.provider_message_id))
    if message is None and update.ref is not None and update.ref >= MESSAGE_REF_OFFSET:
        message = db.session.get(Message, update.ref - MESSAGE_REF_OFFSET)
        if message is not None and message.provider_id != provider.id:
            message = None
    if message is None:
        return bool(dialer_engine.apply_delivery(provider.id, update))
    if not can_move(message.status, update.status):
        return False
    message.status = update.status
    if update.status in _FINAL_FAILURES:
        message.error = _error_text(update.error_code, update.error_message)
        if update.error_code in OPTED_OUT_CODES:
            interaction = message.interaction
            add_do_not_contact(interaction.customer_number, interaction.campaign_id, "provider")
    publish(f"interaction:{message.interaction_id}", "message.status", message_id=message.id)
    return True


def can_move(current: str, new: str) -> bool:
    """queued < sent < delivered < read; failed/undelivered only from queued or sent; never back."""
    if new not in _RANK or current == new:
        return False
    if current not in _RANK:  # "received" (inbound) or unknown: not ours to move
        return False
    if new in _FINAL_FAILURES:
        return _RANK[current] <= _RANK["sent"]
    if current in _FINAL_FAILURES:
        return False
    return _RANK[new] > _RANK[current]


def _error_text(code: str | None, text: str | None) -> str | None:
    if not code and not text:
        return None
    return (f"{code}: {text}" if code and text else (code or text or ""))[:500]


# -- outbound ----------------------------------------------------------------------------
def whatsapp_window_open(interaction: Interaction, now: datetime | None = None) -> bool:
    """Free text on WhatsApp only within 24 h of the customer's last message; SMS always."""
    if interaction.channel != "whatsapp":
        return True
    last = interaction.last_customer_message_at
    if last is None:
        return False
    return (now or clock.now()) - last < WHATSAPP_WINDOW


def _validate(interaction: Interaction, body: str, template_ref: str | None) -> str:
    body = (body or "").strip()
    with translating():
        if not body and not template_ref:
            raise InteractionError(_("Write a message first."))
        if len(body) > MAX_BODY:
            raise InteractionError(_("The message is too long (%(max)d characters at most).", max=MAX_BODY))
        if not interaction.is_open:
            raise InteractionError(_("This conversation is closed."))
        if not template_ref and not whatsapp_window_open(interaction):
            raise InteractionError(_("More than 24 hours have passed since the customer's last WhatsApp "
                                     "message: choose an approved template to write again."))
    return body


def _new_message(interaction: Interaction, kind: str, body: str, user: User | None,
                 template_ref: str | None = None) -> Message:
    now = clock.now()
    message = Message(interaction=interaction, sender_kind=kind, sender_user_id=user.id if user else None,
                      body=body, status="queued", provider_id=interaction.campaign.provider_id,
                      template_ref=template_ref, created_at=now)
    db.session.add(message)
    interaction.last_message_at = now
    db.session.flush()
    enqueue_after_commit("workers.inbound.send_message", message.id)
    publish(f"interaction:{interaction.id}", "message.new", message_id=message.id)
    return message


def _first_reply(interaction: Interaction) -> None:
    if interaction.first_reply_at is None:
        interaction.first_reply_at = clock.now()
    if interaction.status == InteractionStatus.ASSIGNED:
        interaction.status = InteractionStatus.ACTIVE
    interaction.unread = 0


def send_agent_message(interaction: Interaction, agent: User, body: str, *,
                       template_ref: str | None = None) -> Message:
    """The agent's reply: queued for sending; the first one makes the interaction ACTIVE."""
    body = _validate(interaction, body, template_ref)
    if interaction.agent_id != agent.id:
        with translating():
            raise InteractionError(_("This conversation is not assigned to you."))
    message = _new_message(interaction, SenderKind.AGENT, body, agent, template_ref)
    _first_reply(interaction)
    _announce(interaction)
    return message


def send_supervisor_message(interaction: Interaction, supervisor: User, body: str, *,
                            template_ref: str | None = None) -> Message:
    """A supervisor writes into a conversation (it counts as a reply, like an agent's)."""
    body = _validate(interaction, body, template_ref)
    message = _new_message(interaction, SenderKind.SUPERVISOR, body, supervisor, template_ref)
    if interaction.agent_id is not None:
        _first_reply(interaction)
    _announce(interaction)
    return message


def send_bot_message(interaction: Interaction, body: str) -> Message:
    """An automatic message (out-of-hours, opt-out confirmation); it is no reply for statistics."""
    return _new_message(interaction, SenderKind.BOT, (body or "").strip()[:MAX_BODY], None)


# -- the agent's actions -------------------------------------------------------------------
def open_for_agent(interaction: Interaction, agent: User) -> None:
    """The agent opened it: it is read now; it stays ASSIGNED until the first reply."""
    if interaction.agent_id == agent.id and interaction.unread:
        interaction.unread = 0
        publish(f"user:{agent.id}", "interaction.updated", interaction_id=interaction.id)


def _may_handle(interaction: Interaction, user: User) -> None:
    with translating():
        if not interaction.is_open:
            raise InteractionError(_("This conversation is closed."))
        if interaction.agent_id != user.id and not (user.is_admin or user.is_supervisor):
            raise InteractionError(_("This conversation is not assigned to you."))


def take_offer(interaction: Interaction, agent: User) -> bool:
    """Ringall: the first agent to take an offered interaction gets it; anyone later gets False."""
    from . import routing

    campaign = interaction.campaign
    if campaign.mode not in ("ringall", "ringallmultiple"):
        return False
    routing.lock_routing(campaign.id)
    if not routing.is_eligible(agent, campaign):
        return False
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
    agents.refresh_busy(agent)
    publish(f"offers:{campaign.id}", "interaction.taken", interaction_id=interaction.id)
    _announce(interaction, "interaction.assigned")
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
        publish(f"user:{owner.id}", "interaction.removed", interaction_id=interaction.id)
        agents.refresh_busy(owner)
    publish(f"campaign:{interaction.campaign_id}", "interaction.changed", interaction_id=interaction.id)
    _request_routing(None)


def transfer_to_agent(interaction: Interaction, agent: User, target_agent: User) -> None:
    """A5: hand the conversation to another agent of the campaign who is signed in and not in break."""
    from . import routing

    _may_handle(interaction, agent)
    with translating():
        if target_agent.id == interaction.agent_id:
            raise InteractionError(_("The conversation is already with that agent."))
        if not routing.is_eligible(target_agent, interaction.campaign, check_capacity=False):
            raise InteractionError(_("%(name)s cannot take conversations of this campaign now.",
                                     name=target_agent.display_name))
    previous = interaction.agent
    interaction.agent_id = target_agent.id
    interaction.status = InteractionStatus.ASSIGNED
    interaction.assigned_at = clock.now()
    db.session.flush()
    if previous is not None:
        publish(f"user:{previous.id}", "interaction.removed", interaction_id=interaction.id)
        agents.refresh_busy(previous)
    agents.refresh_busy(target_agent)
    _announce(interaction, "interaction.assigned")
    _request_routing(None)


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
    interaction.status = InteractionStatus.WAITING
    interaction.assigned_at = None
    interaction.queued_at = clock.now()
    db.session.flush()
    db.session.expire(interaction, ["campaign", "agent"])
    if previous is not None:
        publish(f"user:{previous.id}", "interaction.removed", interaction_id=interaction.id)
        agents.refresh_busy(previous)
    publish(f"campaign:{old_campaign}", "interaction.changed", interaction_id=interaction.id)
    publish(f"campaign:{campaign.id}", "interaction.changed", interaction_id=interaction.id)
    _request_routing(campaign.id)
    _request_routing(None)


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
    agents.refresh_busy(agent)
    _announce(interaction, "interaction.assigned")
    return interaction


# -- housekeeping -------------------------------------------------------------------------
def abandon_overdue(now: datetime | None = None) -> int:
    """C2: a customer left WAITING longer than the campaign's abandon threshold counts as abandoned."""
    now = now or clock.now()
    rows = db.session.execute(
        sa.select(Interaction.id, Interaction.campaign_id, Interaction.queued_at,
                  Campaign.abandon_threshold_seconds)
        .join(Campaign, Campaign.id == Interaction.campaign_id)
        .where(Interaction.status == InteractionStatus.WAITING)).all()
    count = 0
    for interaction_id, campaign_id, queued_at, threshold in rows:
        if queued_at > now - timedelta(seconds=threshold):
            continue
        result = db.session.execute(
            sa.update(Interaction).where(Interaction.id == interaction_id,
                                         Interaction.status == InteractionStatus.WAITING,
                                         Interaction.agent_id.is_(None))
            .values(status=InteractionStatus.ABANDONED, closed_at=now)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            count += 1
            publish(f"campaign:{campaign_id}", "interaction.changed", interaction_id=interaction_id)
            publish(f"offers:{campaign_id}", "interaction.taken", interaction_id=interaction_id)
    if count:
        db.session.expire_all()
    return count


def earlier_interactions(interaction: Interaction, limit: int = 20) -> list[Interaction]:
    """A2: the same customer's other conversations, newest first, in campaigns of the same security group."""
    return list(db.session.scalars(
        sa.select(Interaction).join(Campaign, Campaign.id == Interaction.campaign_id)
        .where(Interaction.customer_number == interaction.customer_number, Interaction.id != interaction.id,
               Campaign.security_group_id == interaction.campaign.security_group_id)
        .order_by(Interaction.created_at.desc(), Interaction.id.desc()).limit(limit)))
