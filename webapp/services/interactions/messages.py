"""What Conversa writes to a customer (A3, C2): the agent's and the supervisor's replies and the bot's
automatic messages, each queued for the send job after commit; the announcement of an interaction's
change to its agent's page and the campaign's monitor; and the names its writers are shown by."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _

from ...after_commit import enqueue_after_commit
from ...extensions import db
from ...i18n import translating
from ...live.events import publish
from ...models import Interaction, InteractionStatus, Message, SenderKind, User
from ...providers.gsm import MAX_MESSAGE_LENGTH
from .. import outbound_media
from .. import time as clock
from .errors import InteractionError

WHATSAPP_WINDOW = timedelta(hours=24)
SEND_JOB = "workers.inbound.send_message"


def sender_names(messages: Iterable[Message]) -> dict[int, str]:
    """{user id: display name} of the agents and supervisors who wrote these messages, as every page
    labels them. A sender loaded with the messages (joinedload, contains_eager) costs no query; the
    others one query each (a conversation has one or two)."""
    return {m.sender_user_id: m.sender.display_name for m in messages
            if m.sender_user_id is not None and m.sender is not None}


def announce(interaction: Interaction, agent_kind: str = "interaction.updated") -> None:
    """The interaction changed: its agent's inbox (as `agent_kind`) and the campaign's monitor."""
    if interaction.agent_id:
        publish(f"user:{interaction.agent_id}", agent_kind, interaction_id=interaction.id)
    publish(f"campaign:{interaction.campaign_id}", "interaction.changed", interaction_id=interaction.id)


def whatsapp_window_open(interaction: Interaction, now: datetime | None = None) -> bool:
    """Free text on WhatsApp only within 24 h of the customer's last message; SMS always."""
    return window_open(interaction.channel, interaction.last_customer_message_at, now or clock.now())


def window_open(channel: str, last_customer_message_at: datetime | None, now: datetime) -> bool:
    """The rule behind `whatsapp_window_open`, on a row's values (lists read them without the object)."""
    if channel != "whatsapp":
        return True
    return last_customer_message_at is not None and now - last_customer_message_at < WHATSAPP_WINDOW


def window_closes_at(interaction: Interaction) -> datetime | None:
    """When free text on WhatsApp stops being allowed (None: never written, or not WhatsApp)."""
    if interaction.channel != "whatsapp" or interaction.last_customer_message_at is None:
        return None
    return interaction.last_customer_message_at + WHATSAPP_WINDOW


def _validate(interaction: Interaction, body: str, template_ref: str | None, has_files: bool = False) -> str:
    body = (body or "").strip()
    with translating():
        if not body and not template_ref and not has_files:
            raise InteractionError(_("Write a message first."))
        if len(body) > MAX_MESSAGE_LENGTH:
            raise InteractionError(_("The message is too long (%(max)d characters at most).", max=MAX_MESSAGE_LENGTH))
        if not interaction.is_open:
            raise InteractionError(_("This conversation is closed."))
        if not template_ref and not whatsapp_window_open(interaction):
            raise InteractionError(_("More than 24 hours have passed since the customer's last WhatsApp "
                                     "message: choose an approved template to write again."))
    return body


def _new_message(interaction: Interaction, kind: str, body: str, user: User | None,
                 template_ref: str | None = None, *, template_params: dict[str, Any] | None = None,
                 files: list[dict[str, Any]] | None = None, header: bool = False) -> Message:
    """One outbound message, queued for the send job after commit; `files` (kept by outbound_media) are its
    attachments (a template's header image when `header`)."""
    now = clock.now()
    message = Message(interaction=interaction, sender_kind=kind, sender_user_id=user.id if user else None,
                      body=body, status="queued", provider_id=interaction.campaign.provider_id,
                      template_ref=template_ref, template_params=template_params, created_at=now)
    db.session.add(message)
    interaction.last_message_at = now
    db.session.flush()
    for kept in files or []:
        outbound_media.attach(message, kept, header=header)
    enqueue_after_commit(SEND_JOB, message.id)
    publish(f"interaction:{interaction.id}", "message.new", message_id=message.id)
    return message


def _first_reply(interaction: Interaction) -> None:
    if interaction.first_reply_at is None:
        interaction.first_reply_at = clock.now()
    if interaction.status == InteractionStatus.ASSIGNED:
        interaction.status = InteractionStatus.ACTIVE
    interaction.unread = 0


def send_agent_message(interaction: Interaction, agent: User, body: str, *, template_ref: str | None = None,
                       uploads: list[outbound_media.Upload] | None = None) -> Message:
    """The agent's reply: queued for sending; the first one makes the interaction ACTIVE. Files (W1) go one
    message each, the text as the first one's caption (before them when it is a voice note, which takes
    none); the first message is returned."""
    body = _validate(interaction, body, template_ref, bool(uploads))
    _check_own(interaction, agent)
    kept = outbound_media.keep_uploads(uploads or [])
    sent = []
    if body and (not kept or kept[0]["kind"] not in outbound_media.CAPTIONED):
        sent.append(_new_message(interaction, SenderKind.AGENT, body, agent, template_ref))
        body = ""
    for index, file in enumerate(kept):
        sent.append(_new_message(interaction, SenderKind.AGENT, body if index == 0 else "", agent, files=[file]))
    _first_reply(interaction)
    announce(interaction)
    return sent[0]


def send_template(interaction: Interaction, agent: User, template_ref: str, rendered: str,
                  params: dict[str, Any], header_file: dict[str, Any] | None = None) -> Message:
    """W3: an approved template with its variables filled (and its header image), by the conversation's agent;
    the bubble shows it as the customer will see it."""
    _validate(interaction, rendered or template_ref, template_ref)
    _check_own(interaction, agent)
    message = _new_message(interaction, SenderKind.AGENT, rendered[:MAX_MESSAGE_LENGTH], agent, template_ref,
                           template_params=params, files=[header_file] if header_file else None, header=True)
    _first_reply(interaction)
    announce(interaction)
    return message


def _check_own(interaction: Interaction, agent: User) -> None:
    if interaction.agent_id != agent.id:
        with translating():
            raise InteractionError(_("This conversation is not assigned to you."))


def send_supervisor_message(interaction: Interaction, supervisor: User, body: str, *,
                            template_ref: str | None = None) -> Message:
    """A supervisor writes into a conversation (it counts as a reply, like an agent's)."""
    body = _validate(interaction, body, template_ref)
    message = _new_message(interaction, SenderKind.SUPERVISOR, body, supervisor, template_ref)
    if interaction.agent_id is not None:
        _first_reply(interaction)
    announce(interaction)
    return message


def send_bot_message(interaction: Interaction, body: str) -> Message:
    """An automatic message (out-of-hours, opt-out confirmation); it is no reply for statistics."""
    return _new_message(interaction, SenderKind.BOT, (body or "").strip()[:MAX_MESSAGE_LENGTH], None)
