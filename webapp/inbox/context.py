"""What the agent workspace's templates show: one builder per pane (workspace, conversation, transfer
menu, state picker, supervisor chat), shared by the views and the socket's renderers."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import db
from ..models import AgentState, BreakType, Campaign, Interaction, User, WhatsAppTemplate
from ..security import transfer_choices
from ..services import agents, outbound_media, template_sends
from ..services import interactions as conversations
from . import queries
from .forms import ChatForm, CloseForm, SendForm, TemplateSendForm, TransferForm, choices, outbound_form


def conversation_context(interaction: Interaction, send_form: SendForm | None = None) -> dict[str, Any]:
    """What the conversation pane shows; the transfer choices load when their menu opens (transfer_form).
    `send_form` is a rejected reply shown again; without one the composer starts empty (no form built)."""
    items, names = queries.messages_with_names(interaction.id)
    mine = interaction.agent_id == current_user.id
    window = window_context(interaction)
    canned = queries.canned_responses(interaction.campaign_id)
    offered = template_sends.offered(interaction) if mine and not window["window_open"] and interaction.is_open else []
    return dict(messages=items, names=names, mine=mine, **window, canned=canned,
                templates=[c for c in canned if c.template_ref], offered=offered, send_form=send_form,
                close_form=CloseForm(formdata=None), campaign=interaction.campaign,
                link_days=round(outbound_media.sms_seconds() / 86400))


def window_context(interaction: Interaction) -> dict[str, Any]:
    """WhatsApp's 24-hour window: whether free text may go, and until (or since) when."""
    return dict(interaction=interaction, window_closes=conversations.window_closes_at(interaction),
                window_open=conversations.whatsapp_window_open(interaction))


def templates_context(interaction: Interaction) -> dict[str, Any]:
    """W3: the templates the agent may send in this conversation."""
    return dict(interaction=interaction, offered=template_sends.offered(interaction),
                language=template_sends.conversation_language(interaction))


def template_context(interaction: Interaction, template: WhatsAppTemplate,
                     values: dict[str, str] | None = None) -> dict[str, Any]:
    """W3: one template's form (its variables, its header picture) and the message as the customer sees it."""
    values = values or {}
    return dict(interaction=interaction, template=template, values=values,
                preview=template_sends.render(template, values), header_kind=template_sends.header_media(template),
                template_form=TemplateSendForm(formdata=None))


def transfer_label(agent: User) -> str:
    """A line of the transfer menu: the agent and their state (only free and busy ones are listed)."""
    return f"{agent.display_name} · {_('Free') if agent.state == AgentState.FREE else _('Busy')}"


def transfer_context(interaction: Interaction, campaigns: list[Campaign] | None = None) -> dict[str, Any]:
    transfer = TransferForm(formdata=None)
    transfer.agent_id.choices = choices([(0, "—")] + [(u.id, transfer_label(u)) for u in
                                                      transfer_choices(interaction, current_user.id)])
    campaigns = queries.agent_campaigns(current_user.id) if campaigns is None else campaigns
    transfer.campaign_id.choices = choices([(0, "—")] + [(c.id, c.name) for c in campaigns
                                                         if c.id != interaction.campaign_id])
    return dict(interaction=interaction, transfer_form=transfer)


def workspace_context(interaction: Interaction | None = None, q: str = "") -> dict[str, Any]:
    """The full page around the panes: the list, the offers, the bar (state, softphone, chat), the
    socket's topics; the open conversation's own pane is conversation_context's."""
    agent_id = current_user.id
    campaigns = queries.agent_campaigns(agent_id)
    topics = [f"offers:{c.id}" for c in campaigns]
    if interaction is not None:
        topics.append(f"interaction:{interaction.id}")
    outbound = outbound_form(campaigns, formdata=None)
    ctx = dict(items=queries.inbox_items(agent_id, q), q=q, offers=queries.offers(agent_id, campaigns),
               ws_topics=",".join(topics), outbound_form=outbound, **state_context(current_user),
               **chat_context(agent_id))
    # A full page works without JavaScript: the transfer menu is inline.
    if interaction is not None and interaction.agent_id == agent_id and interaction.is_open:
        ctx.update(transfer_context(interaction, campaigns))
    ctx["current"] = interaction
    return ctx


def state_context(user: User) -> dict[str, Any]:
    types = queries.break_types()
    current_break = None
    if user.break_type_id:
        current_break = next((b for b in types if b.id == user.break_type_id), None) or db.session.get(
            BreakType, user.break_type_id)
    return dict(agent=user, break_types=types, current_break=current_break, handback=agents.leave_notice(user.id))


def chat_context(agent_id: int) -> dict[str, Any]:
    lines, unread = queries.chat_lines_and_unread(agent_id)
    others = {c.author_id for c in lines if c.author_id and c.author_id != agent_id}  # own lines say "You"
    authors = {u.id: u.display_name for u in db.session.query(User).filter(User.id.in_(others))} if others else {}
    return dict(chat_lines=lines, chat_authors=authors, chat_unread=unread, chat_form=ChatForm(formdata=None))
