"""S4 dialer monitoring: the list with live state, each dialer's dashboard, its buttons and uploads.

Buttons and forms are plain POST forms (CSRF, then redirect with a message), so the pages work
without JavaScript; the state and counter blocks follow the dialer's live topic and poll when the
socket is down.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.routing import BuildError

from ..extensions import db
from ..models import Dialer, LoadState, SpoolMessage
from ..security import get_dialer_or_404, supervisor_required, visible_dialers
from ..services import bulk_loads
from ..services import dialer_engine as engine
from ..services import spool_ingest as ingest
from ..templating import render_page
from . import bp, live, staging
from .forms import ActionForm, SingleMessageForm, UploadForm

REVIEW_LIMIT = 100


def optional_url(endpoint: str, **values: Any) -> str | None:
    """The URL of another area's page, or None while that page does not exist yet."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def back(dialer: Dialer) -> Any:
    return redirect(url_for("dialers.dashboard", dialer_id=dialer.id))


def rejected_message(exc: Exception) -> str:
    """The service's refusal says where (line, field) and why, already in the user's language."""
    return _("File refused: %(message)s", message=str(exc))


# -- list ---------------------------------------------------------------------------------
@bp.get("/dialers")
@supervisor_required
def index() -> Any:
    dialers = db.session.scalars(visible_dialers()).all()
    rows = [(d, engine.status(d)) for d in dialers]
    return render_page("dialers/index.html", "dialers/_list.html", rows=rows,
                       topics=",".join(live.list_topics(current_user)),
                       new_url=optional_url("campaigns.dialer_new"))


@bp.get("/dialers/pick")
@supervisor_required
def pick() -> Any:
    """The picker at the top of the dashboard, for browsers without JavaScript."""
    dialer = get_dialer_or_404(request.args.get("dialer_id", type=int) or 0)
    return back(dialer)


# -- dashboard ----------------------------------------------------------------------------
def review_messages(dialer: Dialer) -> list[SpoolMessage]:
    return db.session.scalars(sa.select(SpoolMessage).where(
        SpoolMessage.dialer_id == dialer.id, SpoolMessage.needs_review.is_(True)
    ).order_by(SpoolMessage.id).limit(REVIEW_LIMIT)).all()


def cancellable(counts: Any) -> int:
    """What Delete would cancel now (messages in flight or waiting for review are left alone)."""
    waiting = max(0, counts.not_processed - counts.in_flight - counts.needs_review)
    return waiting + counts.other + counts.blocked + counts.failed


def dashboard_page(dialer: Dialer, status: int = 200, **context: Any) -> Any:
    context.setdefault("single_form", SingleMessageForm(formdata=None))
    context.setdefault("upload_form", UploadForm(formdata=None))
    dialer_status = engine.status(dialer)
    return render_template(
        "dialers/dashboard.html", dialer=dialer, status=dialer_status, cancellable=cancellable(dialer_status.counts),
        dialers=db.session.scalars(visible_dialers()).all(), review=review_messages(dialer),
        loads=bulk_loads.loads_for(dialer.id),
        edit_url=optional_url("campaigns.dialer_edit", dialer_id=dialer.id), **context), status


@bp.get("/dialers/<int:dialer_id>")
@supervisor_required
def dashboard(dialer_id: int) -> Any:
    return dashboard_page(get_dialer_or_404(dialer_id))


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
    return render_template("dialers/_review.html", dialer=dialer, review=review_messages(dialer))


# -- buttons ------------------------------------------------------------------------------
def checked_action(dialer_id: int) -> Dialer:
    dialer = get_dialer_or_404(dialer_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    return dialer


@bp.post("/dialers/<int:dialer_id>/start")
@supervisor_required
def start(dialer_id: int) -> Any:
    dialer = checked_action(dialer_id)
    try:
        engine.start(dialer, user_id=current_user.id)
    except engine.DialerError as exc:
        db.session.rollback()
        flash(_("The dialer did not start: %(reason)s", reason=str(exc)), "error")
        return back(dialer)
    db.session.commit()
    flash(_("Dialer started."), "ok")
    return back(dialer)


@bp.post("/dialers/<int:dialer_id>/stop")
@supervisor_required
def stop(dialer_id: int) -> Any:
    dialer = checked_action(dialer_id)
    engine.stop(dialer, user_id=current_user.id)
    db.session.commit()
    flash(_("Dialer stopped."), "ok")
    return back(dialer)


@bp.post("/dialers/<int:dialer_id>/cancel")
@supervisor_required
def cancel(dialer_id: int) -> Any:
    """Delete: cancels every message not yet processed, errored and blocked ones included."""
    dialer = checked_action(dialer_id)
    cancelled = engine.cancel_pending(dialer, user_id=current_user.id)
    db.session.commit()
    flash(_("%(count)s messages not yet processed were cancelled.", count=cancelled), "ok")
    return back(dialer)


@bp.post("/dialers/<int:dialer_id>/review/<int:message_id>")
@supervisor_required
def resolve(dialer_id: int, message_id: int) -> Any:
    dialer = checked_action(dialer_id)
    action = request.form.get("action")
    message = db.session.get(SpoolMessage, message_id)
    if message is None or message.dialer_id != dialer.id:
        abort(404)
    if action not in ("resend", "cancel"):
        abort(400)
    try:
        engine.resolve_review(message.id, action, current_user.id)
    except engine.DialerError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return back(dialer)
    db.session.commit()
    flash(_("Message to %(number)s will be sent again.", number=message.destination) if action == "resend"
          else _("Message to %(number)s cancelled.", number=message.destination), "ok")
    return back(dialer)


# -- single message -----------------------------------------------------------------------
@bp.post("/dialers/<int:dialer_id>/single")
@supervisor_required
def single(dialer_id: int) -> Any:
    dialer = get_dialer_or_404(dialer_id)
    form = SingleMessageForm()
    if not form.validate_on_submit():
        return dashboard_page(dialer, 422, single_form=form)
    try:
        message = engine.queue_single(dialer, form.phone.data.strip(), form.text.data, user_id=current_user.id)
    except engine.DialerError as exc:
        db.session.rollback()
        form.phone.errors = [str(exc)]
        return dashboard_page(dialer, 422, single_form=form)
    db.session.commit()
    flash(_("Message to %(number)s queued on this dialer.", number=message.destination), "ok")
    return back(dialer)


# -- uploads ------------------------------------------------------------------------------
def uploaded_file(dialer: Dialer) -> Any:
    """The posted CSV after CSRF, presence and file-name checks; flashes and returns None when refused."""
    form = UploadForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        flash(_("Choose a .csv file first."), "error")
        return None
    upload = form.file.data
    try:
        ingest.check_filename(upload.filename or "")
    except ingest.FileRejected as exc:
        flash(rejected_message(exc), "error")
        return None
    return upload


@bp.post("/dialers/<int:dialer_id>/dnc")
@supervisor_required
def dnc(dialer_id: int) -> Any:
    dialer = get_dialer_or_404(dialer_id)
    upload = uploaded_file(dialer)
    if upload is None:
        return back(dialer)
    try:
        summary = ingest.load_dnc(upload.stream, upload.filename, user_id=current_user.id,
                                  only_dialer_id=dialer.id)
    except ingest.FileRejected as exc:
        db.session.rollback()
        flash(rejected_message(exc), "error")
        return back(dialer)
    db.session.commit()
    flash(_("Do-not-contact list: %(added)s numbers added, %(already)s already there.",
            added=summary.added, already=summary.already), "ok")
    return back(dialer)


@bp.post("/dialers/<int:dialer_id>/bulk")
@supervisor_required
def bulk_preview(dialer_id: int) -> Any:
    """Step 1: keep the file, show what it would load. Nothing is written to the spool yet."""
    dialer = get_dialer_or_404(dialer_id)
    upload = uploaded_file(dialer)
    if upload is None:
        return back(dialer)
    token = staging.stage(upload.stream, upload.filename, dialer.id)
    stream, filename = staging.lookup(token, dialer.id)
    try:
        with stream:
            preview = ingest.preview_bulk(stream, filename, region=current_app.config["DEFAULT_REGION"],
                                          only_dialer_id=dialer.id)
    except ingest.FileRejected as exc:
        db.session.rollback()
        staging.discard(token, dialer.id)
        flash(rejected_message(exc), "error")
        return back(dialer)
    db.session.rollback()  # a preview writes nothing to the spool
    staging.counted(token, preview.total)
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
        flash(_("Loading the file in the background; its progress shows below."), "ok")
    elif outcome == LoadState.QUEUED:
        flash(_("That file is already being loaded; it will not load twice."), "error")
    elif outcome in LoadState.FINISHED:
        flash(_("That file was already loaded; it will not load twice."), "error")
    else:
        flash(_("That upload has expired; upload the file again."), "error")
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
    """Take a finished load's summary off the dashboard."""
    dialer = checked_action(dialer_id)
    bulk_loads.dismiss(token, dialer.id)
    if request.headers.get("HX-Request"):
        return live.loads_block(dialer)
    return back(dialer)
