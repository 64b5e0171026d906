"""S4 dialer monitoring: the list with live state, each dialer's dashboard, its buttons and uploads.

Buttons and forms are plain POST forms (CSRF, then redirect with a message), so the pages work
without JavaScript; the state and counter blocks follow the dialer's live topic and poll when the
socket is down. The pages' contexts are in `context.py`; the rules in services.dialer and security.py.
"""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import db
from ..models import Dialer
from ..security import get_dialer_or_404, get_spool_message_or_404, supervisor_required
from ..services import bulk_loads, phones
from ..services.dialer import actions
from ..services.dialer.actions import awaiting_review
from ..services.ingest.do_not_contact import load_dnc
from ..services.ingest.files import FileRejected
from ..templating import render_page, respond
from . import bp, live, staging
from .context import confirm_notice, dashboard_context, list_context, list_page_context
from .forms import ActionForm, SingleMessageForm, UploadForm, rejected_message


def dashboard_url(dialer: Dialer) -> str:
    return url_for("dialers.dashboard", dialer_id=dialer.id)


def back(dialer: Dialer) -> Any:
    return redirect(dashboard_url(dialer))


def checked_action(dialer_id: int) -> Dialer:
    """The dialer a button acts on, after its CSRF check (400 without)."""
    dialer = get_dialer_or_404(dialer_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    return dialer


def refused(dialer: Dialer, message: str) -> Any:
    """An action refused: nothing of it stays, the dashboard says why."""
    db.session.rollback()
    flash(message, "error")
    return back(dialer)


def done(dialer: Dialer, message: str) -> Any:
    db.session.commit()
    flash(message, "ok")
    return back(dialer)


# -- list ---------------------------------------------------------------------------------
@bp.get("/dialers")
@supervisor_required
def index() -> Any:
    return render_page("dialers/index.html", "dialers/_list.html", **list_context(current_user),
                       page_context=lambda: list_page_context(current_user))


@bp.get("/dialers/pick")
@supervisor_required
def pick() -> Any:
    """The picker at the top of the dashboard, for browsers without JavaScript."""
    return back(get_dialer_or_404(request.args.get("dialer_id", type=int) or 0))


# -- dashboard ----------------------------------------------------------------------------
@bp.get("/dialers/<int:dialer_id>")
@supervisor_required
def dashboard(dialer_id: int) -> Any:
    return render_template("dialers/dashboard.html", **dashboard_context(get_dialer_or_404(dialer_id), current_user))


@bp.get("/dialers/<int:dialer_id>/counts")
@supervisor_required
def counts(dialer_id: int) -> Any:
    """The counters block alone: the polling fallback of the dashboard."""
    return live.counts_block(get_dialer_or_404(dialer_id))


@bp.get("/dialers/<int:dialer_id>/state")
@supervisor_required
def state(dialer_id: int) -> Any:
    return live.state_block(get_dialer_or_404(dialer_id))


@bp.get("/dialers/<int:dialer_id>/review")
@supervisor_required
def review(dialer_id: int) -> Any:
    dialer = get_dialer_or_404(dialer_id)
    return render_template("dialers/_review.html", dialer=dialer, review=awaiting_review(dialer.id))


# -- buttons ------------------------------------------------------------------------------
@bp.post("/dialers/<int:dialer_id>/start")
@supervisor_required
def start(dialer_id: int) -> Any:
    dialer = checked_action(dialer_id)
    try:
        actions.start(dialer, user_id=current_user.id)
    except actions.DialerError as exc:
        return refused(dialer, _("The dialer did not start: %(reason)s", reason=str(exc)))
    return done(dialer, _("Dialer started."))


@bp.post("/dialers/<int:dialer_id>/stop")
@supervisor_required
def stop(dialer_id: int) -> Any:
    dialer = checked_action(dialer_id)
    actions.stop(dialer, user_id=current_user.id)
    return done(dialer, _("Dialer stopped."))


@bp.post("/dialers/<int:dialer_id>/cancel")
@supervisor_required
def cancel(dialer_id: int) -> Any:
    """Delete: cancels every message not yet processed, errored and blocked ones included."""
    dialer = checked_action(dialer_id)
    cancelled = actions.cancel_pending(dialer, user_id=current_user.id)
    return done(dialer, ngettext("%(num)s message not yet processed was cancelled.",
                                 "%(num)s messages not yet processed were cancelled.", cancelled))


@bp.post("/dialers/<int:dialer_id>/review/<int:message_id>")
@supervisor_required
def resolve(dialer_id: int, message_id: int) -> Any:
    dialer = checked_action(dialer_id)
    message = get_spool_message_or_404(dialer, message_id)
    action = request.form.get("action")
    if action not in actions.REVIEW_ACTIONS:
        abort(400)
    try:
        actions.resolve_review(message.id, action, current_user.id)
    except actions.DialerError as exc:
        return refused(dialer, str(exc))
    return done(dialer, _("Message to %(number)s will be sent again.", number=message.destination)
                if action == "resend" else _("Message to %(number)s cancelled.", number=message.destination))


# -- single message -----------------------------------------------------------------------
def single_notice(dialer: Dialer, number: str) -> str:
    """What a queued single message will do: go out now, or wait for Start on a stopped dialer."""
    if dialer.running:
        return _("Message to %(number)s queued on this dialer.", number=number)
    return _("Message to %(number)s queued. The dialer is stopped: it will go out when you press %(start)s.",
             number=number, start=_("Start"))


@bp.post("/dialers/<int:dialer_id>/single")
@supervisor_required
def single(dialer_id: int) -> Any:
    dialer = get_dialer_or_404(dialer_id)
    form = SingleMessageForm()
    if form.validate_on_submit():
        try:
            message = actions.queue_single(dialer, form.phone.data.strip(), form.text.data, user_id=current_user.id)
            return done(dialer, single_notice(dialer, message.destination))
        except actions.DialerError as exc:
            db.session.rollback()
            form.phone.errors = [str(exc)]
    return render_template("dialers/dashboard.html", **dashboard_context(dialer, current_user, single_form=form)), 422


# -- uploads ------------------------------------------------------------------------------
def uploaded_file() -> Any:
    """The posted CSV after CSRF, presence and file-name checks; flashes and returns None when refused."""
    form = UploadForm()
    if form.validate_on_submit():
        return form.file.data
    if "csrf_token" in form.errors:
        abort(400)
    flash(str(form.file.errors[0]), "error")
    return None


@bp.post("/dialers/<int:dialer_id>/dnc")
@supervisor_required
def dnc(dialer_id: int) -> Any:
    dialer = get_dialer_or_404(dialer_id)
    upload = uploaded_file()
    if upload is None:
        return back(dialer)
    try:
        summary = load_dnc(upload.stream, upload.filename, user_id=current_user.id, only_dialer_id=dialer.id)
    except FileRejected as exc:
        return refused(dialer, rejected_message(exc))
    return done(dialer, _("Do-not-contact list: %(added)s numbers added, %(already)s already there.",
                          added=summary.added, already=summary.already))


@bp.post("/dialers/<int:dialer_id>/bulk")
@supervisor_required
def bulk_preview(dialer_id: int) -> Any:
    """Step 1: keep the file, show what it would load. Nothing is written to the spool yet."""
    dialer = get_dialer_or_404(dialer_id)
    upload = uploaded_file()
    if upload is None:
        return back(dialer)
    try:
        token, filename, preview = staging.preview(upload.stream, upload.filename, dialer.id, phones.default_region())
    except FileRejected as exc:
        return refused(dialer, rejected_message(exc))
    return render_template("dialers/bulk_preview.html", dialer=dialer, preview=preview, token=token,
                           filename=filename)


@bp.post("/dialers/<int:dialer_id>/bulk/<token>/confirm")
@supervisor_required
def bulk_confirm(dialer_id: int, token: str) -> Any:
    """Step 2: claim the kept file (only one confirm can) and hand it to a worker; the dashboard shows
    its progress and then its summary."""
    dialer = checked_action(dialer_id)
    outcome = staging.claim(token, dialer.id, current_user.id, str(get_locale()))
    if outcome == "claimed":
        bulk_loads.enqueue(token, 1)
    flash(*confirm_notice(outcome))
    return back(dialer)


@bp.post("/dialers/<int:dialer_id>/bulk/<token>/cancel")
@supervisor_required
def bulk_cancel(dialer_id: int, token: str) -> Any:
    dialer = checked_action(dialer_id)
    if staging.discard(token, dialer.id):
        flash(_("Upload discarded; nothing was loaded."), "ok")
    else:
        flash(_("That upload has expired; upload the file again."), "error")
    return back(dialer)


@bp.get("/dialers/<int:dialer_id>/loads")
@supervisor_required
def loads(dialer_id: int) -> Any:
    """The bulk loads block alone: the polling fallback of its progress bars."""
    return live.loads_block(get_dialer_or_404(dialer_id))


@bp.post("/dialers/<int:dialer_id>/loads/<token>/dismiss")
@supervisor_required
def dismiss_load(dialer_id: int, token: str) -> Any:
    """Take a finished load's summary off the dashboard: htmx gets the loads block, a browser the page."""
    dialer = checked_action(dialer_id)
    bulk_loads.dismiss(token, dialer.id)
    return respond("dialers/_loads.html", dashboard_url(dialer), dialer=dialer, loads=bulk_loads.loads_for(dialer.id))
