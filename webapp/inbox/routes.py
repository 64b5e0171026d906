"""A1-A5: the agent workspace. Thin views over services.interactions and services.agents.

Every page works as plain links and forms; htmx swaps fragments, the socket pushes the same fragments.
"""
from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..live.events import publish
from ..models import (
    RINGALL_MODES,
    AgentChatMessage,
    BreakType,
    Campaign,
    CannedResponse,
    Interaction,
    User,
    utcnow,
)
from ..security import agent_required, can_see_interaction, get_interaction_or_404
from ..services import agents
from ..services import interactions as conversations
from ..templating import is_htmx, render_page
from . import bp, live, queries  # noqa: F401 - live registers the socket's renderers and handlers
from .forms import DISPOSITIONS, BreakForm, ChatForm, CloseForm, OutboundForm, SendForm, TransferForm, choices


@bp.app_template_filter("epoch")
def epoch(moment: datetime | None) -> float:
    """A naive UTC time as epoch seconds, for the ticking `data-since` timers."""
    return round(moment.replace(tzinfo=UTC).timestamp(), 1) if moment else 0


@functools.cache
def _center_tz(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@bp.app_template_filter("clock")
def clock(moment: datetime | None, full: bool = False) -> str:
    """Center time, cheaply (no Babel: a list renders dozens): HH:MM today, dd/mm before; full for titles."""
    if moment is None:
        return ""
    tz = _center_tz(current_app.config["CENTER_TIMEZONE"])
    local = moment.replace(tzinfo=UTC).astimezone(tz)
    if full:
        return local.strftime("%d/%m/%Y %H:%M:%S")
    today = datetime.now(tz).date()
    return local.strftime("%H:%M" if local.date() == today else "%d/%m")


@bp.app_template_global("item_labels")
def item_labels() -> dict[str, str]:
    """A list item's words, translated once per list (gettext per item was a third of a list's time)."""
    return {"waiting": _("Waiting for your answer"), "unread": _("Unread messages"), "closed": _("Closed"),
            "abandoned": _("Abandoned"), "you": _("You:"), "bot": _("Bot:"), "supervisor": _("Supervisor:")}


@bp.app_template_global("now_epoch")
def now_epoch() -> float:
    return epoch(utcnow())


# -- contexts --------------------------------------------------------------------
def conversation_context(interaction: Interaction, send_form: SendForm | None = None) -> dict[str, Any]:
    """What the conversation pane shows; the transfer choices load when their menu opens (transfer_form).
    `send_form` is a rejected reply shown again; without one the composer starts empty (no form built)."""
    items, names = queries.messages_with_names(interaction.id)
    mine = interaction.agent_id == current_user.id
    window_open = interaction.channel != "whatsapp" or conversations.whatsapp_window_open(interaction)
    canned = queries.canned_responses(interaction.campaign_id)
    return dict(interaction=interaction, messages=items, names=names, mine=mine,
                window_open=window_open, canned=canned, templates=[c for c in canned if c.template_ref],
                send_form=send_form, close_form=CloseForm(formdata=None),
                campaign=interaction.campaign)


def transfer_context(interaction: Interaction, campaigns: list[Campaign] | None = None) -> dict[str, Any]:
    transfer = TransferForm(formdata=None)
    transfer.agent_id.choices = choices([(0, "—")] + queries.transfer_choices(interaction, current_user.id))
    campaigns = queries.agent_campaigns(current_user.id) if campaigns is None else campaigns
    transfer.campaign_id.choices = choices([(0, "—")] + [(c.id, c.name) for c in campaigns
                                                         if c.id != interaction.campaign_id])
    return dict(interaction=interaction, transfer_form=transfer)


def workspace_context(interaction: Interaction | None = None, q: str = "") -> dict[str, Any]:
    agent_id = current_user.id
    campaigns = queries.agent_campaigns(agent_id)
    topics = [f"offers:{c.id}" for c in campaigns]
    if interaction is not None:
        topics.append(f"interaction:{interaction.id}")
    outbound = OutboundForm(formdata=None)
    outbound.campaign_id.choices = choices((c.id, c.name) for c in campaigns)
    ctx = dict(items=queries.inbox_items(agent_id, q), q=q, offers=queries.offers(agent_id, campaigns),
               ws_topics=",".join(topics), outbound_form=outbound, **state_context(current_user),
               **chat_context(agent_id))
    if interaction is not None:
        ctx.update(conversation_context(interaction))
        if ctx["mine"] and interaction.is_open:  # a full page works without JavaScript: the menu is inline
            ctx.update(transfer_context(interaction, campaigns))
    ctx["current"] = interaction
    return ctx


def state_context(user: User) -> dict[str, Any]:
    types = queries.break_types()
    current_break = None
    if user.break_type_id:
        current_break = next((b for b in types if b.id == user.break_type_id), None) or db.session.get(
            BreakType, user.break_type_id)
    return dict(agent=user, break_types=types, current_break=current_break)


def chat_context(agent_id: int) -> dict[str, Any]:
    lines, unread = queries.chat_lines_and_unread(agent_id)
    others = {c.author_id for c in lines if c.author_id and c.author_id != agent_id}  # own lines say "You"
    authors = {u.id: u.display_name for u in db.session.query(User).filter(User.id.in_(others))} if others else {}
    return dict(chat_lines=lines, chat_authors=authors, chat_unread=unread, chat_form=ChatForm(formdata=None))


def viewed_interaction(interaction_id: int) -> Interaction:
    """get_interaction_or_404's rule, with the interaction's campaign read in the same query."""
    interaction = db.session.scalar(_viewed_statement(), {"interaction_id": interaction_id})
    if interaction is None or not can_see_interaction(current_user, interaction):
        abort(404)
    return interaction


@functools.cache
def _viewed_statement() -> sa.Select:
    """Built once (every request opening a conversation runs it): parameter interaction_id."""
    return (sa.select(Interaction).options(joinedload(Interaction.campaign))
            .where(Interaction.id == sa.bindparam("interaction_id")))


def own_interaction(interaction_id: int) -> Interaction:
    """Acting on a conversation (send, close, transfer) needs it to be the agent's own."""
    interaction = get_interaction_or_404(interaction_id)
    if interaction.agent_id != current_user.id:
        abort(404)
    return interaction


def back_to(interaction: Interaction | None = None) -> Any:
    return redirect(url_for("inbox.conversation", interaction_id=interaction.id) if interaction
                    else url_for("inbox.index"))


def htmx_into(template: str, target: str | None, push: str | None = None, **ctx: Any) -> Any:
    """The fragment, swapped into `target`; None keeps the requesting element's own hx-target. htmx looks
    a retarget up from the requesting element, so a request from an element that a socket message may
    remove meanwhile (an offer's Take: the offer leaves for everyone once taken) must not retarget."""
    response = make_response(render_template(template, **ctx))
    if target is not None:
        response.headers.update({"HX-Retarget": target, "HX-Reswap": "innerHTML"})
    if push:
        response.headers["HX-Push-Url"] = push
    return response


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
    interaction = viewed_interaction(interaction_id)
    if is_htmx():
        return render_template("inbox/_conversation.html", **conversation_context(interaction))
    return render_template("inbox/page.html", **workspace_context(interaction))


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
    interaction = own_interaction(interaction_id)
    conversations.open_for_agent(interaction, current_user)
    db.session.commit()
    if not is_htmx():
        return back_to(interaction)
    return render_template("inbox/_item_oob.html", item=queries.inbox_item(interaction.id), move=False)


@bp.post("/inbox/<int:interaction_id>/send")
@agent_required
def send(interaction_id: int) -> Any:
    interaction = own_interaction(interaction_id)
    status_before = interaction.status
    form = SendForm()
    template_ref = None
    if form.canned_id.data:
        canned = db.session.get(CannedResponse, int(form.canned_id.data)) if form.canned_id.data.isdigit() else None
        if canned is None or canned.campaign_id != interaction.campaign_id:
            abort(404)
        template_ref, form.body.data = canned.template_ref, canned.body
    error = None
    if form.validate_on_submit():
        try:
            message = conversations.send_agent_message(interaction, current_user, form.body.data.replace("\r\n", "\n"),
                                                         template_ref=template_ref)
            db.session.commit()
        except conversations.InteractionError as exc:
            db.session.rollback()
            error = str(exc)
    else:
        error = "; ".join(e for errors in form.errors.values() for e in errors) or _("Write a message first.")
    if not is_htmx():
        if error:
            flash(error, "error")
        return back_to(interaction)
    if error:
        return htmx_into("inbox/_error.html", f"#composer-error-{interaction.id}", error=error)
    html = render_template("inbox/_message.html", m=message, names=queries.sender_names([message]),
                           interaction=interaction)
    if interaction.status != status_before:  # the first reply: "New" becomes "Active" in the header
        html += render_template("inbox/_status_label.html", interaction=interaction, status_oob=True)
    return html


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
    interaction = own_interaction(interaction_id)
    form = CloseForm()
    if not form.validate_on_submit():
        abort(400)
    disposition = (form.note.data or "").strip() or dict(DISPOSITIONS).get(
        form.disposition.data, form.disposition.data) or ""
    try:
        conversations.close(interaction, current_user, str(disposition)[:80])
        db.session.commit()
    except conversations.InteractionError as exc:
        db.session.rollback()
        if is_htmx():
            return htmx_into("inbox/_error.html", f"#conv-notice-{interaction.id}", error=str(exc))
        flash(str(exc), "error")
        return back_to(interaction)
    return left_conversation(interaction, _("Conversation closed."))


@bp.get("/inbox/<int:interaction_id>/transfer")
@agent_required
def transfer_form(interaction_id: int) -> Any:
    """The transfer menu's form, loaded when the menu opens (a full page has it inline)."""
    interaction = own_interaction(interaction_id)
    return render_template("inbox/_transfer.html", iid=interaction.id, **transfer_context(interaction))


@bp.post("/inbox/<int:interaction_id>/transfer")
@agent_required
def transfer(interaction_id: int) -> Any:
    interaction = own_interaction(interaction_id)
    form = TransferForm()
    form.validate_on_submit()  # choices are checked below, against what the agent may see
    agent_id, campaign_id = form.agent_id.data or 0, form.campaign_id.data or 0
    try:
        if agent_id:
            if agent_id not in dict(queries.transfer_choices(interaction, current_user.id)):
                abort(404)
            target = db.session.get(User, agent_id)
            conversations.transfer_to_agent(interaction, current_user, target)
            done = _("Transferred to %(name)s.", name=target.display_name)
        elif campaign_id:
            target_campaign = next((c for c in queries.agent_campaigns(current_user.id) if c.id == campaign_id), None)
            if target_campaign is None:
                abort(404)
            conversations.transfer_to_campaign(interaction, current_user, target_campaign)
            done = _("Transferred to campaign %(name)s.", name=target_campaign.name)
        else:
            done = None
        db.session.commit()
    except conversations.InteractionError as exc:
        db.session.rollback()
        done, agent_id, campaign_id = str(exc), 0, 0
    if not done or not (agent_id or campaign_id):
        message = done or _("Choose an agent or a campaign.")
        if is_htmx():
            return htmx_into("inbox/_error.html", f"#conv-notice-{interaction.id}", error=message)
        flash(message, "error")
        return back_to(interaction)
    return left_conversation(interaction, done)


def left_conversation(interaction: Interaction, notice: str) -> Any:
    """After a close or a transfer: the right pane empties and the list item updates."""
    if not is_htmx():
        flash(notice)
        return back_to(None)
    return htmx_into("inbox/_left.html", "#conversation", push=url_for("inbox.index"), notice=notice,
                     item=None, interaction_id=interaction.id)


@bp.post("/inbox/<int:interaction_id>/take")
@agent_required
def take(interaction_id: int) -> Any:
    """Ringall: the first agent to take it wins; the others are told so."""
    interaction = db.session.get(Interaction, interaction_id)
    member = interaction is not None and interaction.campaign.mode in RINGALL_MODES and any(
        c.id == interaction.campaign_id for c in queries.agent_campaigns(current_user.id))
    if interaction is None or not (member or can_see_interaction(current_user, interaction)):
        abort(404)
    # Someone else's by now: the loser of the race hears so (only members of the campaign ever saw it).
    taken = interaction.agent_id is None and conversations.take_offer(interaction, current_user)
    db.session.commit()
    if not taken:
        notice = _("Another agent already took this conversation.")
        if not is_htmx():
            flash(notice, "error")
            return back_to(None)
        # Both Take forms (the offer's, the waiting conversation's) target #conversation themselves.
        return htmx_into("inbox/_left.html", None, notice=notice, notice_class="error",
                         offer_id=interaction.id, item=None, interaction_id=None)
    if not is_htmx():
        return back_to(interaction)
    return htmx_into("inbox/_conversation.html", None,
                     push=url_for("inbox.conversation", interaction_id=interaction.id),
                     item=queries.inbox_item(interaction.id), offer_id=interaction.id,
                     **conversation_context(interaction))


# -- softphone (A3) ----------------------------------------------------------------------------
@bp.post("/inbox/outbound")
@agent_required
def outbound() -> Any:
    form = OutboundForm()
    campaigns = queries.agent_campaigns(current_user.id)
    form.campaign_id.choices = choices((c.id, c.name) for c in campaigns)
    campaign = next((c for c in campaigns if c.id == form.campaign_id.data), None)
    error = None
    if form.validate_on_submit() and campaign is not None:
        try:
            interaction = conversations.start_outbound(current_user, campaign, form.number.data.strip(),
                                                       form.body.data.replace("\r\n", "\n"))
            db.session.commit()
        except conversations.InteractionError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            if not is_htmx():
                return back_to(interaction)
            return htmx_into("inbox/_conversation.html", "#conversation",
                             push=url_for("inbox.conversation", interaction_id=interaction.id),
                             item=queries.inbox_item(interaction.id), **conversation_context(interaction))
    elif campaign is None:
        error = _("Choose one of your campaigns.")
    if not is_htmx():
        flash(error or _("Check the number and the message."), "error")
        return back_to(None)
    return htmx_into("inbox/_softphone.html", "#softphone", outbound_form=form, outbound_error=error)


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
    break_type = db.session.get(BreakType, form.break_type_id.data)
    if break_type is None or not break_type.enabled:
        abort(404)
    agents.start_break(current_user, break_type.id)
    db.session.commit()
    return state_response()


@bp.post("/inbox/back")
@agent_required
def end_break() -> Any:
    if current_user.agent_state.in_break:
        agents.end_break(current_user)
        db.session.commit()
    return state_response()


def state_response() -> Any:
    if not is_htmx():
        return back_to(None)
    return render_template("inbox/_state.html", **state_context(current_user))


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
    line = AgentChatMessage(agent_id=current_user.id, author_id=current_user.id, body=form.body.data.strip())
    db.session.add(line)
    mark_chat_read(current_user.id)
    db.session.flush()
    publish(f"chat:{current_user.id}", "chat.message", chat_id=line.id)
    publish(f"user:{current_user.id}", "chat.message", chat_id=line.id)
    db.session.commit()
    if not is_htmx():
        return back_to(None)
    return render_template("inbox/_chat_line.html", line=line, chat_authors={current_user.id: current_user.display_name})


@bp.post("/inbox/chat/read")
@agent_required
def chat_read() -> Any:
    mark_chat_read(current_user.id)
    db.session.commit()
    if not is_htmx():
        return back_to(None)
    return render_template("inbox/_chat_badge.html", chat_unread=0)


def mark_chat_read(agent_id: int) -> None:
    db.session.query(AgentChatMessage).filter(
        AgentChatMessage.agent_id == agent_id, AgentChatMessage.read_at.is_(None),
        sa.or_(AgentChatMessage.author_id.is_(None), AgentChatMessage.author_id != agent_id)).update({"read_at": utcnow()}, synchronize_session=False)

