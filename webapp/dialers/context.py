"""What the dialer pages show: the list, a dialer's dashboard, and the words for a bulk confirm's outcome."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from ..extensions import db
from ..models import Dialer, LoadState, User
from ..security import visible_dialers
from ..services import bulk_loads
from ..services.dialer.actions import awaiting_review
from ..services.dialer.counts import status
from . import live
from .forms import SingleMessageForm, UploadForm


def list_context(user: User) -> dict[str, Any]:
    """The list of the dialers the user sees, each with its live state."""
    return {"rows": [(d, status(d)) for d in db.session.scalars(visible_dialers(user))]}


def list_page_context(user: User) -> dict[str, Any]:
    """Around the list on the full page: the socket's topics."""
    return {"topics": ",".join(live.list_topics(user))}


def dashboard_context(dialer: Dialer, user: User, single_form: SingleMessageForm | None = None,
                      upload_form: UploadForm | None = None) -> dict[str, Any]:
    """A dialer's dashboard; a rejected form is shown again, otherwise the forms start empty."""
    current = status(dialer)
    return {"dialer": dialer, "status": current, "cancellable": current.counts.cancellable,
            "dialers": db.session.scalars(visible_dialers(user)).all(), "review": awaiting_review(dialer.id),
            "loads": bulk_loads.loads_for(dialer.id),
            "single_form": single_form or SingleMessageForm(formdata=None),
            "upload_form": upload_form or UploadForm(formdata=None)}


def confirm_notice(outcome: str) -> tuple[str, str]:
    """The flash (text, category) for what staging.claim answered to a bulk confirm."""
    if outcome == "claimed":
        return _("Loading the file in the background; its progress shows below."), "ok"
    if outcome == LoadState.QUEUED:
        return _("That file is already being loaded; it will not load twice."), "error"
    if outcome in LoadState.FINISHED:
        return _("That file was already loaded; it will not load twice."), "error"
    return _("That upload has expired; upload the file again."), "error"
