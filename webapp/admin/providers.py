"""Providers (P1/P2): the form shows the credential and option fields of the chosen type only.

Credentials are write-only: inputs are password fields never filled in; the edit page only says a
secret is set (Provider.masked_credentials) and an empty input keeps the stored one.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from ..campaigns.forms import apply_errors, choices
from ..extensions import db
from ..models import Provider
from ..providers import TYPES
from ..security import admin_required
from ..services import provider_config, templates
from ..services.records import Invalid
from ..templating import render_page
from ..views import confirm_and_delete
from . import bp
from .forms import ProviderForm, provider_data


def _form(provider: Provider | None) -> ProviderForm:
    if provider is not None and request.method == "GET":
        form = ProviderForm(formdata=None, data=provider_data(provider))
    else:
        form = ProviderForm()
    form.type.choices = choices((key, _(meta.label)) for key, meta in TYPES.items())
    if form.type.data not in TYPES:
        form.type.data = "sandbox"
    form.channel.choices = choices((c, "WhatsApp" if c == "whatsapp" else "SMS")
                                   for c in TYPES[form.type.data].channels)
    return form


def _posted(prefix: str) -> dict[str, str]:
    return {k[len(prefix):]: v for k, v in request.form.items() if k.startswith(prefix)}


def _type_context(form: ProviderForm, provider: Provider | None, errors: dict[str, str] | None = None) -> dict:
    """What the per-type fragment needs: metadata, option values (typed, stored or default), secrets set."""
    meta = TYPES[form.type.data]
    same_type = provider is not None and provider.type == meta.key
    if request.method == "POST":
        options = _posted("opt-")
    elif same_type:
        options = {k: provider_config.option_text(v) for k, v in (provider.options or {}).items()}
    else:
        options = {}
    for field in meta.options:
        if field.key not in options and field.default is not None:
            options[field.key] = provider_config.option_text(field.default)
    try:
        masked = provider.masked_credentials() if same_type else {}
    except RuntimeError:
        masked = {}
    return {"meta": meta, "options": options, "masked": masked, "type_errors": errors or {}}


def _webhook_urls(provider: Provider | None) -> dict[str, str]:
    if provider is None or provider.id is None:
        return {}
    base = (current_app.config.get("PUBLIC_BASE_URL") or request.url_root).rstrip("/")
    token = (provider.options or {}).get("webhook_token")
    # A gateway that does not sign is recognised by the token in the URL it calls: the URL to copy has it.
    query = f"?{urlencode({'token': token})}" if token and not TYPES[provider.type].signs_webhooks else ""
    return {"inbound": f"{base}/webhooks/{provider.id}/inbound{query}",
            "status": f"{base}/webhooks/{provider.id}/status{query}"}


def _page(form: ProviderForm, provider: Provider | None, errors: dict[str, str] | None, status: int) -> Any:
    items = db.session.scalars(sa.select(Provider).order_by(Provider.name)).all()
    in_use = provider_config.provider_users(provider) if provider is not None else ([], [])
    catalog = templates.catalog(provider.id) if provider is not None and templates.has_catalog(provider) else None
    return render_page("admin/providers.html", "admin/_providers.html", status, form=form, obj=provider,
                       items=items, webhooks=_webhook_urls(provider), in_use=in_use, catalog=catalog,
                       **_type_context(form, provider, errors))


def provider_page(provider: Provider | None) -> Any:
    form = _form(provider)
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            saved = provider_config.save_provider(provider, form.values(), _posted("cred-"), _posted("opt-"),
                                                current_user)
            db.session.commit()
            flash(_("Saved."), "ok")
            return redirect(url_for("admin.provider_edit", provider_id=saved.id))
        except Invalid as exc:
            db.session.rollback()
            errors = {k: v for k, v in exc.errors.items() if k.startswith(("cred-", "opt-"))}
            apply_errors(form, {k: v for k, v in exc.errors.items() if k not in errors})
        except IntegrityError:
            db.session.rollback()
            apply_errors(form, {"name": _("Already used; pick another.")})
    return _page(form, provider, errors, 422 if request.method == "POST" else 200)


@bp.route("/admin/providers", methods=["GET", "POST"])
@admin_required
def providers() -> Any:
    return provider_page(None)


@bp.route("/admin/providers/<int:provider_id>", methods=["GET", "POST"])
@admin_required
def provider_edit(provider_id: int) -> Any:
    return provider_page(db.get_or_404(Provider, provider_id))


@bp.post("/admin/providers/fields")
@admin_required
def provider_fields() -> Any:
    """htmx: the type changed; answer the channel, credential and option fields of the new type."""
    provider_id = request.form.get("provider_id", "")
    provider = db.session.get(Provider, int(provider_id)) if provider_id.isdigit() else None
    form = _form(provider)
    context = _type_context(form, provider)
    if provider is None or provider.type != form.type.data:
        # A different type: its options start from their defaults, not the other type's values.
        context["options"] = {f.key: provider_config.option_text(f.default) for f in context["meta"].options
                              if f.default is not None}
    return render_template("admin/_provider_type_fields.html", form=form, obj=provider, **context)


@bp.post("/admin/providers/<int:provider_id>/templates/sync")
@admin_required
def provider_templates_sync(provider_id: int) -> Any:
    """W2: pull the provider's WhatsApp template catalog now, in a worker job."""
    provider = db.get_or_404(Provider, provider_id)
    if not templates.has_catalog(provider):
        flash(_("This provider has no WhatsApp template catalog (only WhatsApp providers do)."), "error")
    elif templates.request_sync(provider.id):
        flash(_("Template sync started; the list updates in a few seconds (reload the page)."), "ok")
    else:
        flash(_("The sync could not be started: the job queue is not answering. Try again in a moment."), "error")
    return redirect(url_for("admin.provider_edit", provider_id=provider.id) + "#provider-templates")


@bp.route("/admin/providers/<int:provider_id>/delete", methods=["GET", "POST"])
@admin_required
def provider_delete(provider_id: int) -> Any:
    provider = db.get_or_404(Provider, provider_id)
    return confirm_and_delete(provider, label=provider.name, delete=provider_config.delete_provider,
                              done_url=url_for("admin.providers"),
                              back_url=url_for("admin.provider_edit", provider_id=provider.id))
