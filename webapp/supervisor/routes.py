"""S1-S3: campaign monitor, actions on an agent, transcripts. Thin views over services."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import (
    Response,
    abort,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from .. import queues
from ..extensions import db
from ..models import BreakType, Campaign, User
from ..security import (
    get_agent_or_404,
    get_handback_agent_or_404,
    get_interaction_or_404,
    handback_choices,
    supervisor_required,
    visible_agents,
    visible_campaigns,
    visible_group_ids,
)
from ..services import interactions, stats, supervision, transcripts
from ..services.supervision import SupervisionError
from ..templating import render_page, respond
from . import bp
from . import live as _live  # noqa: F401 - registers topic checks and renderers
from .forms import ChatForm, MonitorCampaignsForm, PauseForm, TranscriptSearchForm

MONITOR_KEY = "monitor_campaigns"
# A wallboard lists the longest waits (more rows than a screen shows, fewer than make the page slow and
# heavy on a supervisor's connection); the campaign blocks count every waiting customer.
WAITING_SHOWN = 100


# -- S1 campaign monitor ------------------------------------------------------------
def _monitor_campaigns() -> tuple[list[int], list[Any]]:
    """(chosen campaign ids, every visible campaign as (id, name)); the choice lives in the session."""
    visible = db.session.execute(visible_campaigns().with_only_columns(Campaign.id, Campaign.name)).all()
    ids = [row.id for row in visible]
    saved = session.get(MONITOR_KEY)
    chosen = [i for i in saved if i in set(ids)] if saved else ids
    return chosen, visible


def _waiting_context(ids: list[int], campaign_stats: list[stats.CampaignStats] | None = None) -> dict[str, Any]:
    total = sum(s.waiting for s in campaign_stats) if campaign_stats is not None else None
    waiting = stats.waiting_rows(ids, limit=WAITING_SHOWN)
    return {"waiting": waiting, "waiting_total": total if total is not None else len(waiting),
            "waiting_limit": WAITING_SHOWN}


def _backlog_context() -> dict[str, Any]:
    labels = {queues.ROUTING: _("Routing"), queues.INBOUND: _("Incoming and replies"),
              queues.DIALER: _("Dialer sends"), queues.HOUSEKEEPING: _("Housekeeping")}
    return {"backlog": queues.backlog(), "queue_labels": labels}


def _monitor_context(ids: list[int]) -> dict[str, Any]:
    campaign_stats = stats.campaign_stats(ids)
    return {"campaign_stats": campaign_stats, **_backlog_context(),
            "agents": stats.agent_rows(viewer_agents=visible_agents(), campaign_ids=ids),
            **_waiting_context(ids, campaign_stats)}


def _group_topics() -> list[str]:
    return [f"group:{gid}" for gid in visible_group_ids()]


@bp.get("/monitor")
@supervisor_required
def monitor() -> Any:
    ids, visible = _monitor_campaigns()
    form = MonitorCampaignsForm(campaigns=ids)
    form.campaigns.choices = [(row.id, row.name) for row in visible]
    topics = [f"campaign:{i}" for i in ids] + _group_topics()
    return render_template("supervisor/monitor.html", form=form, topics=",".join(topics), **_monitor_context(ids))


@bp.post("/monitor/campaigns")
@supervisor_required
def monitor_select() -> Any:
    form = MonitorCampaignsForm()
    if form.validate_on_submit():
        visible = set(db.session.scalars(visible_campaigns().with_only_columns(Campaign.id)).all())
        session[MONITOR_KEY] = [i for i in form.campaigns.data or [] if i in visible]
    return redirect(url_for(".monitor"))


@bp.get("/monitor/stats")
@supervisor_required
def monitor_stats() -> Any:
    ids, _visible = _monitor_campaigns()
    return render_template("supervisor/_stats.html", campaign_stats=stats.campaign_stats(ids))


@bp.get("/monitor/backlog")
@supervisor_required
def monitor_backlog() -> Any:
    return render_template("supervisor/_backlog.html", **_backlog_context())


@bp.get("/monitor/agents")
@supervisor_required
def monitor_agents() -> Any:
    ids, _visible = _monitor_campaigns()
    return render_template("supervisor/_agents.html",
                           agents=stats.agent_rows(viewer_agents=visible_agents(), campaign_ids=ids))


@bp.get("/monitor/waiting")
@supervisor_required
def monitor_waiting() -> Any:
    ids, _visible = _monitor_campaigns()
    context = _waiting_context(ids)
    if len(context["waiting"]) >= WAITING_SHOWN:
        context["waiting_total"] = sum(s.waiting for s in stats.campaign_stats(ids))
    return render_template("supervisor/_waiting.html", **context)


# -- S2 actions on an agent -------------------------------------------------------------
def _panel(agent: User, fragment: str, status: int = 200, **context: Any) -> Any:
    return render_page("supervisor/panel_page.html", fragment, status=status, agent=agent, panel_fragment=fragment,
                       **context)


def _panel_context(agent: User) -> dict[str, Any]:
    row = stats.agent_rows(agent_ids=[agent.id])
    breaks = db.session.scalars(sa.select(BreakType).where(BreakType.enabled).order_by(BreakType.name)).all()
    pause = PauseForm()
    pause.break_type_id.choices = [(b.id, f"{b.icon} {b.name}") for b in breaks]
    return {"row": row[0] if row else None, "pause_form": pause,
            "open_interactions": supervision.open_interactions(agent), "handback_choices": handback_choices(agent)}


@bp.get("/monitor/agents/<int:agent_id>")
@supervisor_required
def agent_panel(agent_id: int) -> Any:
    agent = get_agent_or_404(agent_id)
    return _panel(agent, "supervisor/_agent_panel.html", **_panel_context(agent))


@bp.get("/monitor/agents/<int:agent_id>/spy")
@supervisor_required
def agent_spy(agent_id: int) -> Any:
    agent = get_agent_or_404(agent_id)
    conversations = [(i, supervision.recent_messages(i)) for i in supervision.open_interactions(agent)]
    supervision.record_view(current_user, agent, "spy", interactions=[i.id for i, _m in conversations])
    db.session.commit()
    names = interactions.sender_names([m for _i, messages in conversations for m in messages])
    return _panel(agent, "supervisor/_spy.html", conversations=conversations, names=names)


@bp.get("/monitor/agents/<int:agent_id>/spy/<int:interaction_id>")
@supervisor_required
def spy_messages(agent_id: int, interaction_id: int) -> Any:
    """Polling fallback of one spied conversation."""
    agent = get_agent_or_404(agent_id)
    interaction = get_interaction_or_404(interaction_id)
    if interaction.agent_id != agent.id:
        abort(404)
    messages = supervision.recent_messages(interaction)
    return render_template("supervisor/_spy_messages.html", interaction=interaction, messages=messages,
                           names=interactions.sender_names(messages))


@bp.get("/monitor/agents/<int:agent_id>/screen")
@supervisor_required
def agent_screen(agent_id: int) -> Any:
    agent = get_agent_or_404(agent_id)
    try:
        supervision.ensure_screen_allowed(agent)
    except SupervisionError as exc:
        return _panel(agent, "supervisor/_refused.html", status=403, message=str(exc))
    if request.args.get("poll") != "1":
        supervision.record_view(current_user, agent, "screen")
        db.session.commit()
    state = supervision.screen_state(agent)
    messages = supervision.recent_messages(state.interaction, limit=20) if state.interaction else []
    return _panel(agent, "supervisor/_screen.html", screen=state, messages=messages,
                  names=interactions.sender_names(messages))


@bp.get("/monitor/agents/<int:agent_id>/info")
@supervisor_required
def agent_info(agent_id: int) -> Any:
    agent = get_agent_or_404(agent_id)
    supervision.record_view(current_user, agent, "info")
    db.session.commit()
    return _panel(agent, "supervisor/_info.html", info=supervision.agent_info(agent))


def _after_action(agent: User, message: str | None, error: str | None = None) -> Any:
    """The agent's panel again, with what the action did (or why it did not)."""
    return respond("supervisor/_agent_panel.html", url_for(".agent_panel", agent_id=agent.id), flashed=error or message,
                   category="error" if error else "message", status=400 if error else 200, agent=agent,
                   panel_fragment="supervisor/_agent_panel.html", notice=message, error=error, **_panel_context(agent))


@bp.post("/monitor/agents/<int:agent_id>/pause")
@supervisor_required
def agent_pause(agent_id: int) -> Any:
    agent = get_agent_or_404(agent_id)
    form = PauseForm()
    form.break_type_id.choices = [(b.id, b.name) for b in db.session.scalars(sa.select(BreakType))]
    if not form.validate_on_submit():
        return _after_action(agent, None, _("Choose a break type."))
    try:
        break_type, moved = supervision.pause_agent(current_user, agent, form.break_type_id.data,
                                                    get_handback_agent_or_404(request.form.get("to_agent_id")))
    except SupervisionError as exc:
        db.session.rollback()
        return _after_action(agent, None, str(exc))
    db.session.commit()
    return _after_action(agent, " ".join([_("%(agent)s is now in break: %(name)s.", agent=agent.display_name,
                                            name=break_type.name), *supervision.moved_text(moved)]))


@bp.post("/monitor/agents/<int:agent_id>/resume")
@supervisor_required
def agent_resume(agent_id: int) -> Any:
    agent = get_agent_or_404(agent_id)
    try:
        supervision.resume_agent(current_user, agent)
    except SupervisionError as exc:
        db.session.rollback()
        return _after_action(agent, None, str(exc))
    db.session.commit()
    return _after_action(agent, _("%(agent)s is back from break.", agent=agent.display_name))


@bp.post("/monitor/agents/<int:agent_id>/logout")
@supervisor_required
def agent_logout(agent_id: int) -> Any:
    agent = get_agent_or_404(agent_id)
    try:
        moved = supervision.logout_agent(current_user, agent, get_handback_agent_or_404(request.form.get("to_agent_id")))
    except SupervisionError as exc:
        db.session.rollback()
        return _after_action(agent, None, str(exc))
    db.session.commit()
    return _after_action(agent, " ".join([_("%(agent)s was logged out.", agent=agent.display_name),
                                          *supervision.moved_text(moved)]))


@bp.get("/monitor/agents/<int:agent_id>/chat")
@supervisor_required
def agent_chat(agent_id: int) -> Any:
    agent = get_agent_or_404(agent_id)
    return _panel(agent, "supervisor/_chat.html", form=ChatForm(), chat=supervision.chat_history(agent))


@bp.post("/monitor/agents/<int:agent_id>/chat")
@supervisor_required
def agent_chat_send(agent_id: int) -> Any:
    agent = get_agent_or_404(agent_id)
    form, back = ChatForm(), url_for(".agent_chat", agent_id=agent.id)
    if not form.validate_on_submit():
        return respond("supervisor/_chat_form.html", back, status=400, agent=agent, form=form)
    supervision.send_chat(current_user, agent, form.body.data)
    db.session.commit()
    # The new line reaches every open chat over the socket (or the log's polling, told by chat-sent).
    return respond("supervisor/_chat_form.html", back, trigger="chat-sent", agent=agent, form=ChatForm(formdata=None))


@bp.get("/monitor/agents/<int:agent_id>/chat/log")
@supervisor_required
def agent_chat_log(agent_id: int) -> Any:
    agent = get_agent_or_404(agent_id)
    return render_template("supervisor/_chat_log.html", agent=agent, chat=supervision.chat_history(agent))


# -- S3 transcripts ---------------------------------------------------------------------
def _transcript_form() -> tuple[TranscriptSearchForm, transcripts.TranscriptFilter]:
    form = TranscriptSearchForm(request.args)
    form.campaigns.choices = [(c.id, c.name) for c in db.session.scalars(visible_campaigns())]
    form.agents.choices = [(a.id, a.display_name) for a in db.session.scalars(visible_agents())]
    form.validate()
    flt = transcripts.TranscriptFilter(
        start=form.start.data if not form.start.errors else None,
        end=form.end.data if not form.end.errors else None,
        origin=form.origin.data or "", campaign_ids=list(form.campaigns.data or []),
        agent_ids=list(form.agents.data or []))
    return form, flt


def _query_without(*names: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.args.items(multi=True) if k not in names]


@bp.get("/transcripts", endpoint="transcripts")
@supervisor_required
def transcripts_page() -> Any:
    form, flt = _transcript_form()
    page = None if form.errors else transcripts.search(current_user, flt, page=request.args.get("page", 1, type=int))
    return render_page("supervisor/transcripts.html", "supervisor/_transcript_results.html", form=form,
                       results=page, query=_query_without("page"))


@bp.get("/transcripts/export.csv")
@supervisor_required
def transcripts_export() -> Any:
    _form, flt = _transcript_form()
    user = current_user._get_current_object()
    response = Response(stream_with_context(transcripts.export_csv(user, flt)), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="transcripts.csv"'
    return response


@bp.get("/transcripts/<int:interaction_id>")
@supervisor_required
def transcript(interaction_id: int) -> Any:
    interaction = get_interaction_or_404(interaction_id)
    messages = transcripts.messages(interaction)
    return render_page("supervisor/transcript.html", "supervisor/_transcript.html", interaction=interaction,
                       messages=messages, sender_label=transcripts.sender_label)


@bp.get("/transcripts/<int:interaction_id>.<fmt>")
@supervisor_required
def transcript_download(interaction_id: int, fmt: str) -> Any:
    interaction = get_interaction_or_404(interaction_id)
    if fmt == "txt":
        body, mimetype = transcripts.conversation_text(interaction), "text/plain"
    elif fmt == "csv":
        body, mimetype = transcripts.conversation_csv(interaction), "text/csv"
    else:
        abort(404)
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="interaction-{interaction.id}.{fmt}"'
    return response
