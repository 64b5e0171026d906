"""Inbound campaigns (C1-C3): the form on the left, the campaigns of the user's groups on the right."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Provider
from ..security import get_campaign_or_404, supervisor_required, visible_campaigns, visible_groups
from ..services import campaign_config, templates
from ..services.records import Invalid
from ..templating import render_page
from ..views import confirm_and_delete
from . import bp, forms
from .forms import choices


def choose_groups_and_providers(form: Any, new: bool) -> None:
    """Providers: all of them (they are not group-bound); groups: the user's own unless admin. A new
    campaign or dialer starts in the creator's own group (the first by name), not the first of all."""
    form.provider_id.choices = choices((p.id, f"{p.name} ({p.type}, {p.channel})") for p in db.session.scalars(
        sa.select(Provider).order_by(Provider.name)))
    form.security_group_id.choices = choices((g.id, g.name) for g in db.session.scalars(visible_groups()))
    own = [c.value for c in form.security_group_id.choices if c.value in current_user.security_group_ids]
    if new and request.method == "GET" and own:
        form.security_group_id.data = own[0]


def build_form(form_cls: Any, data: dict[str, Any] | None) -> tuple[Any, str | None, str | None]:
    """The form from the post (with a "+"/"-" applied when that is what was pressed) or from `data`.
    Returns (form, row kind acted on or None, note)."""
    if request.method == "POST":
        formdata, kind, note = forms.edit_rows(request.form)
        return form_cls(formdata=formdata), kind, note
    return form_cls(formdata=None, data=data) if data else form_cls(formdata=None), None, None


def saved_or_none(form: Any, save: Callable[[], Any], recheck: Callable[[], dict[str, str]]) -> Any:
    """`save()` committed; or None with the refusal on the form's fields. A save the database refused
    (a simultaneous one took the name or DID first) hears what `recheck()` now finds."""
    try:
        saved = save()
        db.session.commit()
        return saved
    except Invalid as exc:
        db.session.rollback()
        forms.apply_errors(form, exc.errors)
    except IntegrityError:
        db.session.rollback()
        forms.apply_errors(form, recheck() or {"name": _("Already used; pick another.")})
    return None


def campaign_page(campaign: Any) -> Any:
    form, rows_kind, note = build_form(forms.CampaignForm, forms.campaign_data(campaign) if campaign else None)
    form.strategy.choices = forms.strategy_choices()
    choose_groups_and_providers(form, new=campaign is None)
    forms.template_choices(form.canned, templates.choices())
    if rows_kind is None and form.validate_on_submit():
        saved = saved_or_none(form, lambda: campaign_config.save_campaign(
            campaign, form.values(), forms.schedule_rows(form.schedule), forms.canned_rows(form.canned),
            current_user), lambda: campaign_config.campaign_errors(campaign, form.values(), current_user))
        if saved is not None:
            flash(_("Campaign “%(name)s” saved.", name=saved.name), "ok")
            return redirect(url_for("campaigns.edit", campaign_id=saved.id))
    status = 422 if request.method == "POST" and rows_kind is None else 200
    campaigns = db.session.scalars(visible_campaigns()).all()
    return render_page("campaigns/index.html", "campaigns/_page.html", status, form=form, campaign=campaign,
                       campaigns=campaigns, notes={rows_kind: note} if rows_kind else {})


@bp.route("/campaigns", methods=["GET", "POST"])
@supervisor_required
def index() -> Any:
    return campaign_page(None)


@bp.route("/campaigns/<int:campaign_id>", methods=["GET", "POST"])
@supervisor_required
def edit(campaign_id: int) -> Any:
    return campaign_page(get_campaign_or_404(campaign_id))


@bp.route("/campaigns/<int:campaign_id>/delete", methods=["GET", "POST"])
@supervisor_required
def delete(campaign_id: int) -> Any:
    """GET asks for confirmation; POST deletes, or says why not (open interactions)."""
    campaign = get_campaign_or_404(campaign_id)
    return confirm_and_delete(campaign, label=campaign.name, delete=campaign_config.delete_campaign,
                              done_url=url_for("campaigns.index"),
                              back_url=url_for("campaigns.edit", campaign_id=campaign.id))


@bp.post("/forms/rows")
@supervisor_required
def rows() -> Any:
    """htmx "+"/"-" on the unsaved form: the same rows back with one added or the selected one removed."""
    formdata, kind, note = forms.edit_rows(request.form)
    if kind is None:
        abort(400)
    form = forms.RowsForm(formdata=formdata)
    forms.template_choices(form.canned, templates.choices())
    return render_template("campaigns/_rows_fragment.html", form=form, kind=kind, note=note)


from . import dialer_config, members  # noqa: E402,F401  (their routes join this blueprint)
