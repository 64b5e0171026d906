"""Administration pages (admins only): users, security groups, break types, voice campaigns, providers.

Each page is the form on the left and the list on the right; /<thing> creates, /<thing>/<id> edits,
/<thing>/<id>/delete asks and deletes. The rules live in services/users.py, security_groups.py,
break_types.py, voice_campaigns.py and provider_config.py (errors and the plain save: services/records.py).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from ..campaigns.forms import apply_errors, choices
from ..extensions import db
from ..models import AuditEntry, BreakType, Role, SecurityGroup, User, VoiceCampaign
from ..security import admin_required
from ..services import break_types, security_groups, users, voice_campaigns
from ..services.records import Invalid
from ..templating import render_page
from ..views import confirm_and_delete
from . import audit_labels, bp, forms, providers  # noqa: F401 (providers registers its routes)


@dataclass(frozen=True)
class Section:
    """One administered thing: how to list, load, fill and save it."""

    key: str  # endpoint stem: "user" → admin.users, admin.user_edit, admin.user_delete
    url: str
    model: Any
    form: Any
    data: Callable[[Any], dict[str, Any]]
    save: Callable[[Any, dict[str, Any], User], Any]
    delete: Callable[[Any, User], None]
    order: Any
    title: Any
    new_title: Any
    template: str
    setup: Callable[[Any], None] = lambda form: None

    def get_or_404(self, object_id: int) -> Any:
        return db.get_or_404(self.model, object_id)


def _groups_choices(form: Any) -> None:
    form.security_group_ids.choices = choices((g.id, g.name) for g in db.session.scalars(
        sa.select(SecurityGroup).order_by(SecurityGroup.name)))


def _agent_choices(form: Any) -> None:
    form.member_ids.choices = choices((u.id, f"{u.display_name} ({u.username})") for u in db.session.scalars(
        sa.select(User).where(User.role == Role.AGENT.value).order_by(User.username)))


SECTIONS = {
    "user": Section("user", "/admin/users", User, forms.UserForm, forms.user_data, users.save_user,
                    users.delete_user, User.username, _l("Users"), _l("New user"), "admin/_users.html",
                    _groups_choices),
    "group": Section("group", "/admin/groups", SecurityGroup, forms.GroupForm, forms.group_data,
                     security_groups.save_group, security_groups.delete_group, SecurityGroup.name,
                     _l("Security groups"), _l("New security group"), "admin/_groups.html"),
    "break_type": Section("break_type", "/admin/breaks", BreakType, forms.BreakTypeForm, forms.break_type_data,
                          break_types.save_break_type, break_types.delete_break_type, BreakType.name,
                          _l("Break types"), _l("New break type"), "admin/_breaks.html"),
    "voice_campaign": Section("voice_campaign", "/admin/voice-campaigns", VoiceCampaign, forms.VoiceCampaignForm,
                              forms.voice_campaign_data, voice_campaigns.save_voice_campaign,
                              voice_campaigns.delete_voice_campaign, VoiceCampaign.name, _l("Voice campaigns"),
                              _l("New voice campaign"), "admin/_voice.html", _agent_choices),
}


def edit_page(section: Section, obj: Any) -> Any:
    """The form (new or edit) beside the list; a valid post saves in one transaction and redirects."""
    form = section.form(formdata=None, data=section.data(obj)) if obj and request.method == "GET" else section.form()
    section.setup(form)
    status = 200
    if form.validate_on_submit():
        try:
            saved = section.save(obj, form.values(), current_user)
            db.session.commit()
            flash(_("Saved."), "ok")
            return redirect(url_for(f"admin.{section.key}_edit", object_id=saved.id))
        except Invalid as exc:
            db.session.rollback()
            apply_errors(form, exc.errors)
        except IntegrityError:  # a concurrent save took the name between our check and the commit
            db.session.rollback()
            apply_errors(form, {"name": _("Already used; pick another.")})
    if request.method == "POST":
        status = 422
    items = db.session.scalars(sa.select(section.model).order_by(section.order)).all()
    return render_page("admin/section.html", section.template, status, section=section, form=form, obj=obj,
                       items=items)


def delete_page(section: Section, obj: Any) -> Any:
    """GET asks; POST deletes (or says why it cannot) and goes back to the list."""
    return confirm_and_delete(obj, label=getattr(obj, "name", None) or getattr(obj, "username", ""),
                              delete=section.delete, section=section,
                              done_url=url_for(f"admin.{_list_endpoint(section)}"),
                              back_url=url_for(f"admin.{section.key}_edit", object_id=obj.id))


LIST_ENDPOINTS = {"user": "users", "group": "groups", "break_type": "break_types",
                  "voice_campaign": "voice_campaigns"}


def _list_endpoint(section: Section) -> str:
    return LIST_ENDPOINTS[section.key]


def _register(section: Section) -> None:
    def new_view() -> Any:
        return edit_page(section, None)

    def edit_view(object_id: int) -> Any:
        return edit_page(section, section.get_or_404(object_id))

    def delete_view(object_id: int) -> Any:
        return delete_page(section, section.get_or_404(object_id))

    methods = ["GET", "POST"]
    bp.add_url_rule(section.url, _list_endpoint(section), admin_required(new_view), methods=methods)
    bp.add_url_rule(f"{section.url}/<int:object_id>", f"{section.key}_edit", admin_required(edit_view),
                    methods=methods)
    bp.add_url_rule(f"{section.url}/<int:object_id>/delete", f"{section.key}_delete",
                    admin_required(delete_view), methods=methods)


for _section in SECTIONS.values():
    _register(_section)


@bp.get("/admin/audit")
@admin_required
def audit_log() -> Any:
    """The latest changes, newest first."""
    entries = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(200)).all()
    return render_page("admin/audit.html", "admin/_audit.html", entries=audit_labels.rows(entries))


@bp.get("/admin")
@admin_required
def index() -> Any:
    return redirect(url_for("admin.users"))
