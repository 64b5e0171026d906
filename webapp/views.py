"""View helpers shared by the areas."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from .extensions import db
from .services.records import Refused


def confirm_and_delete(obj: Any, *, label: str, delete: Callable[[Any, Any], Any], done_url: str,
                       back_url: str, **context: Any) -> Any:
    """GET asks for confirmation; POST deletes and goes to `done_url`, or says why it cannot and goes back."""
    if request.method == "GET":
        return render_template("admin/confirm.html", obj=obj, label=label, cancel=back_url, **context)
    try:
        delete(obj, current_user)
        db.session.commit()
        flash(_("Deleted."), "ok")
        return redirect(done_url)
    except Refused as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back_url)
