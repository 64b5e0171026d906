"""Dialer configuration (D1, D2). The list and dashboard live at /dialers (the dialers blueprint)."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..providers import TYPES
from ..security import get_dialer_or_404, supervisor_required
from ..services import campaign_config
from ..services.records import Invalid
from ..templating import render_page
from ..views import confirm_and_delete
from . import bp, forms
from .routes import build_form, choose_groups_and_providers


def dialer_page(dialer: Any) -> Any:
    form, rows_kind, note = build_form(forms.DialerForm, forms.dialer_data(dialer) if dialer else None)
    choose_groups_and_providers(form, new=dialer is None)
    if rows_kind is None and form.validate_on_submit():
        try:
            saved = campaign_config.save_dialer(dialer, form.values(), forms.schedule_rows(form.schedule),
                                                current_user)
            db.session.commit()
            flash(_("Dialer “%(name)s” saved.", name=saved.name), "ok")
            return redirect(url_for("dialers.dashboard", dialer_id=saved.id))  # where it is watched and run
        except Invalid as exc:
            db.session.rollback()
            forms.apply_errors(form, exc.errors)
        except IntegrityError:
            db.session.rollback()
            forms.apply_errors(form, {"name": _("Already used; pick another.")})
    status = 422 if request.method == "POST" and rows_kind is None else 200
    port_types = sorted(k for k, t in TYPES.items() if t.uses_ports)
    return render_page("campaigns/dialer.html", "campaigns/_dialer.html", status, form=form, dialer=dialer,
                       notes={rows_kind: note} if rows_kind else {}, port_types=port_types)


@bp.route("/dialers/new", methods=["GET", "POST"])
@supervisor_required
def dialer_new() -> Any:
    return dialer_page(None)


@bp.route("/dialers/<int:dialer_id>/edit", methods=["GET", "POST"])
@supervisor_required
def dialer_edit(dialer_id: int) -> Any:
    return dialer_page(get_dialer_or_404(dialer_id))


@bp.route("/dialers/<int:dialer_id>/delete", methods=["GET", "POST"])
@supervisor_required
def dialer_delete(dialer_id: int) -> Any:
    dialer = get_dialer_or_404(dialer_id)
    return confirm_and_delete(dialer, label=dialer.name, delete=campaign_config.delete_dialer,
                              done_url=url_for("dialers.index"),
                              back_url=url_for("campaigns.dialer_edit", dialer_id=dialer.id))
