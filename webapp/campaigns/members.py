"""Members (M1, M2): campaigns on the left, agents beside them, Add / Remove, and who is in each campaign."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import render_template, request
from flask_babel import ngettext
from flask_login import current_user

from ..extensions import db
from ..models import Campaign, Membership, User
from ..security import get_membership_or_404, supervisor_required, visible_agents, visible_campaigns
from ..services import campaign_config
from ..services.records import Invalid, Refused
from ..templating import failure_status, render_page
from . import bp
from .forms import MembershipForm, apply_errors


def _ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()]


def _selection(source: Any) -> tuple[list[Campaign], list[User]]:
    """The picked campaigns and agents, kept to those the user may see."""
    campaign_ids, agent_ids = _ids(source.getlist("campaign")), _ids(source.getlist("agent"))
    campaigns = db.session.scalars(visible_campaigns().where(Campaign.id.in_(campaign_ids or [-1]))).all()
    agents = db.session.scalars(visible_agents().where(User.id.in_(agent_ids or [-1]))).all()
    return list(campaigns), list(agents)


def _context(campaigns: list[Campaign], agents: list[User], **extra: Any) -> dict[str, Any]:
    all_agents = db.session.scalars(visible_agents()).all()
    no_voice = {a.id for a in campaign_config.agents_without_voice(all_agents)}
    return {"all_campaigns": db.session.scalars(visible_campaigns()).all(), "all_agents": all_agents,
            "no_voice": no_voice, "picked_campaigns": campaigns, "picked_agents": {a.id for a in agents}, **extra}


@bp.get("/members")
@supervisor_required
def members() -> Any:
    campaigns, agents = _selection(request.args)
    return render_page("campaigns/members.html", "campaigns/_members.html", **_context(campaigns, agents))


@bp.get("/members/column")
@supervisor_required
def members_column() -> Any:
    """htmx: the members column for the campaigns just picked."""
    campaigns, _agents = _selection(request.args)
    return render_template("campaigns/_members_column.html", picked_campaigns=campaigns)


def _change(action: Any, done_message: Callable[[int], str]) -> Any:
    campaigns, agents = _selection(request.form)
    message, error = None, None
    try:
        count = action(campaigns, agents, current_user)
        db.session.commit()
        message = done_message(count)
    except Refused as exc:
        db.session.rollback()
        error = str(exc)
    return render_page("campaigns/members.html", "campaigns/_members.html", failure_status(bool(error)),
                       **_context(campaigns, agents, message=message, error=error))


@bp.post("/members/add")
@supervisor_required
def members_add() -> Any:
    return _change(campaign_config.add_members,
                   lambda n: ngettext("%(num)s membership added.", "%(num)s memberships added.", n))


@bp.post("/members/remove")
@supervisor_required
def members_remove() -> Any:
    return _change(campaign_config.remove_members,
                   lambda n: ngettext("%(num)s membership removed.", "%(num)s memberships removed.", n))


@bp.post("/members/<int:membership_id>")
@supervisor_required
def membership_update(membership_id: int) -> Any:
    """htmx: order and penalty edited in place; the row comes back (with its errors)."""
    membership = get_membership_or_404(membership_id)
    form = MembershipForm()
    saved = form.validate_on_submit() and _update(membership, form)
    return render_template("campaigns/_membership_row.html", m=membership, form=form,
                           saved=saved), failure_status(not saved)


def _update(membership: Membership, form: MembershipForm) -> bool:
    """The new order and penalty, committed; or the form's fields marked with what the service refused."""
    try:
        campaign_config.update_membership(membership, form.position.data, form.penalty.data, current_user)
        db.session.commit()
    except Invalid as exc:
        db.session.rollback()
        apply_errors(form, exc.errors)
        return False
    return True
