"""A1-A5: the agent workspace. Thin views over services.interactions and services.agents.

Every page works as plain links and forms; htmx swaps fragments, the socket pushes the same fragments.
The panes' contexts are in `context.py`, the lookups that apply who may do what in `security.py`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, g, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import db
from ..models import Interaction
from ..security import (
    agent_required,
    get_break_type_or_404,
    get_campaign_or_404,
    get_canned_response_or_404,
    get_interaction_or_404,
    get_offer_or_404,
    get_own_interaction_or_404,
    get_template_or_404,
    get_transfer_agent_or_404,
    get_viewed_interaction_or_404,
)
from ..services import agents, template_sends
from ..services import chat as agent_chat
from ..services import interactions as conversations
from ..templating import render_page, respond
from . import bp, live, queries  # noqa: F401 - live registers the socket's renderers and handlers
from .context import (
    chat_context,
    conversation_context,
    state_context,
    template_context,
    templates_context,
    transfer_context,
    window_context,
    workspace_context,
)
from .forms import (
    BreakForm,
    ChatForm,
    CloseForm,
    SendForm,
    TemplateSendForm,
    TransferForm,
    error_text,
    outbound_form,
    template_values,
)

T = TypeVar("T")


@bp.before_request
def page_is_live() -> None:
    """Every workspace request (the polling fallback included) says one of the agent's pages is live."""
    if current_user.is_authenticated:
        agents.page_alive(current_user, f"http:{g.get('user_session_id')}")


def page_url(interaction: Interaction | None = None) -> str:
    """Where a plain browser goes back to: the conversation's page, or the inbox."""
    return url_for("inbox.conversation", interaction_id=interaction.id) if interaction else url_for("inbox.index")


def committed(action: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T | None, str | None]:
    """A conversation service's result, committed; or its refusal (InteractionError), rolled back, as text."""
    try:
        result = action(*args, **kwargs)
        db.session.commit()
    except conversations.InteractionError as exc:
        db.session.rollback()
        return None, str(exc)
    return result, None


def refused(interaction: Interaction, error: str, where: str = "conv-notice") -> Any:
    """The refusal, in the conversation's notice (or composer) line; flashed on its page without htmx."""
    return respond("inbox/_error.html", page_url(interaction), flashed=error, category="error",
                   target=f"#{where}-{interaction.id}", error=error)


def left_conversation(interaction: Interaction, notice: str) -> Any:
    """After a close or a transfer: the right pane empties and the list item updates."""
    return respond("inbox/_left.html", page_url(), flashed=notice, target="#conversation", push=page_url(),
                   notice=notice, item=None, interaction_id=interaction.id)


def state_response() -> Any:
    return respond("inbox/_state.html", page_url(), **state_context(current_user))


# -- inbox and conversation ------------------------------------------------------------
@bp.get("/inbox")
@agent_required
def index() -> Any:
    q = request.args.get("q", "")[:80]
    return render_page("inbox/page.html", "inbox/_list.html", **workspace_context(q=q))


@bp.get("/inbox/list")
@agent_required
def inbox_list() -> Any:
    q = request.args.get("q", "")[:80]
    return render_template("inbox/_list.html", items=queries.inbox_items(current_user.id, q), q=q,
                           current_id=request.args.get("current", type=int))


@bp.get("/inbox/offers")
@agent_required
def offers() -> Any:
    return render_template("inbox/_offers.html", offers=queries.offers(current_user.id))


@bp.get("/inbox/<int:interaction_id>")
@agent_required
def conversation(interaction_id: int) -> Any:
    interaction = get_viewed_interaction_or_404(interaction_id)
    return render_page("inbox/page.html", "inbox/_conversation.html",
                       page_context=lambda: workspace_context(interaction), **conversation_context(interaction))


@bp.get("/inbox/<int:interaction_id>/messages")
@agent_required
def messages(interaction_id: int) -> Any:
    interaction = get_interaction_or_404(interaction_id)
    items, names = queries.messages_with_names(interaction.id)
    return render_template("inbox/_messages.html", interaction=interaction, messages=items, names=names)


@bp.post("/inbox/<int:interaction_id>/open")
@agent_required
def mark_open(interaction_id: int) -> Any:
    """Opening a conversation answers it and marks it read; the list item follows."""
    interaction = get_own_interaction_or_404(interaction_id)
    conversations.open_for_agent(interaction, current_user)
    db.session.commit()
    return respond("inbox/_item_oob.html", page_url(interaction), item=queries.inbox_item(interaction.id), move=False)


@bp.post("/inbox/<int:interaction_id>/send")
@agent_required
def send(interaction_id: int) -> Any:
    interaction = get_own_interaction_or_404(interaction_id)
    status_before, form = interaction.status, SendForm()
    canned = get_canned_response_or_404(form.canned_id.data, interaction) if form.canned_id.data else None
    if canned is not None:
        form.body.data = canned.body
    if not form.validate_on_submit():
        return refused(interaction, error_text(form) or _("Write a message first."), "composer-error")
    message, error = committed(conversations.send_agent_message, interaction, current_user, form.text(),
                               template_ref=canned and canned.template_ref, uploads=form.uploads())
    if error:
        return refused(interaction, error, "composer-error")
    # The first reply also turns "New" into "Active" in the header.
    return respond("inbox/_sent.html", page_url(interaction), m=message, names=conversations.sender_names([message]),
                   interaction=interaction, status_oob=interaction.status != status_before)


@bp.get("/inbox/<int:interaction_id>/window")
@agent_required
def window(interaction_id: int) -> Any:
    """The header's window state, asked again by the page when the customer writes."""
    interaction = get_interaction_or_404(interaction_id)
    return render_template("inbox/_window.html", **window_context(interaction))


# -- templates in the composer (W3) ----------------------------------------------------------------
@bp.get("/inbox/<int:interaction_id>/templates")
@agent_required
def templates(interaction_id: int) -> Any:
    interaction = get_own_interaction_or_404(interaction_id)
    return render_template("inbox/_templates.html", **templates_context(interaction))


@bp.get("/inbox/<int:interaction_id>/templates/<int:template_id>")
@agent_required
def template_form(interaction_id: int, template_id: int) -> Any:
    interaction = get_own_interaction_or_404(interaction_id)
    template = get_template_or_404(interaction, template_id)
    return render_template("inbox/_template_form.html", **template_context(interaction, template))


@bp.get("/inbox/<int:interaction_id>/templates/<int:template_id>/preview")
@agent_required
def template_preview(interaction_id: int, template_id: int) -> Any:
    """The filled template as the customer will see it (the form asks as the agent types)."""
    interaction = get_own_interaction_or_404(interaction_id)
    template = get_template_or_404(interaction, template_id)
    values = template_values(template, request.args)
    return render_template("inbox/_template_preview.html", **template_context(interaction, template, values))


@bp.post("/inbox/<int:interaction_id>/templates/<int:template_id>")
@agent_required
def template_send(interaction_id: int, template_id: int) -> Any:
    interaction = get_own_interaction_or_404(interaction_id)
    template, form = get_template_or_404(interaction, template_id), TemplateSendForm()
    if not form.validate_on_submit():
        abort(400)
    message, error = committed(template_sends.send, interaction, current_user, template,
                               template_values(template, request.form), form.header_upload())
    if error:
        return refused(interaction, error, "template-error")
    return respond("inbox/_template_sent.html", page_url(interaction), m=message, interaction=interaction,
                   names=conversations.sender_names([message]), status_oob=True)


@bp.get("/inbox/<int:interaction_id>/history")
@agent_required
def history(interaction_id: int) -> Any:
    """A2's three dots: the customer's earlier conversations with their messages."""
    interaction = get_interaction_or_404(interaction_id)
    earlier = conversations.earlier_interactions(interaction, limit=20)
    threads = [(e, queries.messages(e.id, limit=50)) for e in earlier]
    return render_page("inbox/history.html", "inbox/_history.html", interaction=interaction, threads=threads)


@bp.post("/inbox/<int:interaction_id>/close")
@agent_required
def close(interaction_id: int) -> Any:
    interaction = get_own_interaction_or_404(interaction_id)
    form = CloseForm()
    if not form.validate_on_submit():
        abort(400)
    _closed, error = committed(conversations.close, interaction, current_user, form.disposition_text())
    if error:
        return refused(interaction, error)
    return left_conversation(interaction, _("Conversation closed."))


@bp.get("/inbox/<int:interaction_id>/transfer")
@agent_required
def transfer_form(interaction_id: int) -> Any:
    """The transfer menu's form, loaded when the menu opens (a full page has it inline)."""
    interaction = get_own_interaction_or_404(interaction_id)
    return render_template("inbox/_transfer.html", iid=interaction.id, **transfer_context(interaction))


@bp.post("/inbox/<int:interaction_id>/transfer")
@agent_required
def transfer(interaction_id: int) -> Any:
    interaction = get_own_interaction_or_404(interaction_id)
    form = TransferForm()
    form.validate_on_submit()  # the lookups check the choices, against what the agent may see
    if form.agent_id.data:
        agent = get_transfer_agent_or_404(interaction, form.agent_id.data)
        _done, error = committed(conversations.transfer_to_agent, interaction, current_user, agent)
        notice = _("Transferred to %(name)s.", name=agent.display_name)
    elif form.campaign_id.data:
        campaign = get_campaign_or_404(form.campaign_id.data)
        _done, error = committed(conversations.transfer_to_campaign, interaction, current_user, campaign)
        notice = _("Transferred to campaign %(name)s.", name=campaign.name)
    else:
        error = _("Choose an agent or a campaign.")
    return refused(interaction, error) if error else left_conversation(interaction, notice)


@bp.post("/inbox/<int:interaction_id>/take")
@agent_required
def take(interaction_id: int) -> Any:
    """Ringall: the first agent to take it wins; the others are told so."""
    interaction = get_offer_or_404(interaction_id)
    # Someone else's by now: the loser of the race hears so (only members of the campaign ever saw it).
    taken, error = (False, None) if interaction.agent_id else committed(conversations.take_offer, interaction,
                                                                       current_user)
    if error:  # not theirs to take now (one at a time, a break): they hear why and the offer stays
        return respond("inbox/_offer_refused.html", page_url(interaction), flashed=error, category="error",
                       swap="none", interaction_id=interaction.id, error=error)
    if not taken:  # both Take forms (the offer's, the waiting conversation's) target #conversation themselves
        notice = _("Another agent already took this conversation.")
        return respond("inbox/_left.html", page_url(), flashed=notice, category="error", notice=notice,
                       notice_class="error", offer_id=interaction.id, item=None, interaction_id=None)
    return respond("inbox/_conversation.html", page_url(interaction), push=page_url(interaction),
                   item=queries.inbox_item(interaction.id), offer_id=interaction.id,
                   **conversation_context(interaction))


# -- softphone (A3) ----------------------------------------------------------------------------
@bp.post("/inbox/outbound")
@agent_required
def outbound() -> Any:
    campaigns = queries.agent_campaigns(current_user.id)
    form = outbound_form(campaigns)
    campaign = next((c for c in campaigns if c.id == form.campaign_id.data), None)
    interaction, error = None, None if campaign else _("Choose one of your campaigns.")
    if form.validate_on_submit() and campaign is not None:
        interaction, error = committed(conversations.start_outbound, current_user, campaign, form.number.data.strip(),
                                       form.body.data.replace("\r\n", "\n"))
    if interaction is None:
        return respond("inbox/_softphone.html", page_url(), flashed=error or _("Check the number and the message."),
                       category="error", target="#softphone", outbound_form=form, outbound_error=error)
    return respond("inbox/_conversation.html", page_url(interaction), target="#conversation",
                   push=page_url(interaction), item=queries.inbox_item(interaction.id),
                   **conversation_context(interaction))


@bp.post("/inbox/on-call")
@agent_required
def on_call() -> Any:
    """Demo only: the voice platform sets this through the API."""
    agents.set_on_call(current_user, not current_user.on_call)
    db.session.commit()
    return state_response()


# -- state and breaks (A4) --------------------------------------------------------------------
@bp.get("/inbox/state")
@agent_required
def state() -> Any:
    return render_template("inbox/_state.html", **state_context(current_user))


@bp.post("/inbox/break")
@agent_required
def start_break() -> Any:
    form = BreakForm()
    if not form.validate_on_submit():
        abort(400)
    agents.start_break(current_user, get_break_type_or_404(form.break_type_id.data).id)
    db.session.commit()
    return state_response()


@bp.post("/inbox/notice/dismiss")
@agent_required
def dismiss_notice() -> Any:
    """The agent read what went where when they left."""
    agents.dismiss_notice(current_user.id)
    return state_response()


@bp.post("/inbox/back")
@agent_required
def end_break() -> Any:
    if current_user.agent_state.in_break:
        agents.end_break(current_user)
        db.session.commit()
    return state_response()


# -- chat with a supervisor (S2, the agent's side) ---------------------------------------------------
@bp.get("/inbox/chat")
@agent_required
def chat() -> Any:
    return render_template("inbox/_chat_log.html", **chat_context(current_user.id))


@bp.post("/inbox/chat")
@agent_required
def chat_send() -> Any:
    form = ChatForm()
    if not form.validate_on_submit():
        abort(400)
    line = agent_chat.write_line(current_user, current_user, form.body.data)
    db.session.commit()
    return respond("inbox/_chat_line.html", page_url(), line=line,
                   chat_authors={current_user.id: current_user.display_name})


@bp.post("/inbox/chat/read")
@agent_required
def chat_read() -> Any:
    agent_chat.mark_chat_read(current_user.id)
    db.session.commit()
    return respond("inbox/_chat_badge.html", page_url(), chat_unread=0)
