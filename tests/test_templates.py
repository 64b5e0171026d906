"""W2, the template catalog: synced from Meta's message_templates and Twilio's Content API (both fakes, paged),
kept current by Meta's template webhooks, listed on the provider's admin page, and chosen by canned responses."""
from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fakes.whatsapp_cloud import (
    ACCESS_TOKEN,
    APP_SECRET,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WABA_ID,
    sign,
    template_quality_payload,
    template_status_payload,
)
from tests.helpers import csrf_token, login, run_jobs
from webapp.models import CannedResponse, Provider, WhatsAppTemplate
from webapp.services import templates


@pytest.fixture
def meta(make: Any, fake_whatsapp: Any) -> SimpleNamespace:
    provider = make.provider("whatsapp_cloud", name="Meta", channel="whatsapp", sender=DISPLAY_NUMBER,
                             base_url=fake_whatsapp.url,
                             credentials={"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET,
                                          "verify_token": VERIFY_TOKEN},
                             options={"phone_number_id": PHONE_NUMBER_ID, "waba_id": WABA_ID})
    return SimpleNamespace(provider=provider, fake=fake_whatsapp)


@pytest.fixture
def twilio_wa(make: Any, fake_twilio: Any) -> SimpleNamespace:
    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN

    provider = make.provider("twilio", name="Twilio WA", channel="whatsapp", sender="+15005550006",
                             base_url=fake_twilio.url, credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
                             options={"content_api_url": fake_twilio.url})
    return SimpleNamespace(provider=provider, fake=fake_twilio)


def by_name(db: Any, provider: Any) -> dict[str, WhatsAppTemplate]:
    db.session.expire_all()
    return {t.name: t for t in db.session.scalars(sa.select(WhatsAppTemplate).where(
        WhatsAppTemplate.provider_id == provider.id))}


def sync(db: Any, provider: Any) -> templates.SyncResult:
    result = templates.sync(db.session.get(Provider, provider.id))
    db.session.commit()
    return result


def test_meta_templates_are_synced_every_page_with_their_parts(db: Any, meta: SimpleNamespace) -> None:
    fake = meta.fake
    fake.template_page_size = 2
    reminder = fake.add_template("recordatorio_pago", "es", "UTILITY", "APPROVED",
                                 "Hola {{1}}, tu cuota de {{2}} vence el {{3}}.",
                                 header={"format": "TEXT", "text": "Aviso para {{1}}"}, footer="Conversa",
                                 buttons=[{"type": "QUICK_REPLY", "text": "Ya pagué"},
                                          {"type": "URL", "text": "Pagar", "url": "https://pago.example/{{1}}"},
                                          {"type": "PHONE_NUMBER", "text": "Llamar", "phone_number": "+59829001000"}])
    fake.add_template("promo", "es_AR", "MARKETING", "PAUSED", "¡{{1}}, 20% off!", header={"format": "IMAGE"},
                      quality="YELLOW")
    fake.add_template("codigo", "en_US", "AUTHENTICATION", "REJECTED", "Your code is {{1}}.",
                      rejected_reason="INVALID_FORMAT", quality="UNKNOWN")
    fake.add_template("encuesta", "es", "MARKETING", "PENDING", "¿Cómo te atendimos?")
    fake.add_template("baja", "es", "UTILITY", "DISABLED", "Dimos de baja tu número.", quality="RED")

    result = sync(db, meta.provider)
    assert (result.added, result.updated, result.gone) == (5, 0, 0)
    pages = fake.api_requests("/message_templates")
    assert len(pages) == 3 and all(r.header("Authorization") == f"Bearer {ACCESS_TOKEN}" for r in pages)
    assert "quality_score" in pages[0].query["fields"] and "components" in pages[0].query["fields"]
    found = by_name(db, meta.provider)
    t = found["recordatorio_pago"]
    assert (t.external_id, t.language, t.category, t.status, t.quality) == (reminder, "es", "utility", "approved",
                                                                          "green")
    assert t.body == "Hola {{1}}, tu cuota de {{2}} vence el {{3}}." and t.variables == ["1", "2", "3"]
    assert t.header == {"format": "text", "text": "Aviso para {{1}}"} and t.footer == "Conversa"
    assert t.buttons == [{"type": "quick_reply", "text": "Ya pagué"},
                         {"type": "url", "text": "Pagar", "url": "https://pago.example/{{1}}"},
                         {"type": "phone_number", "text": "Llamar", "phone": "+59829001000"}]
    assert t.ref == "recordatorio_pago"
    assert {n: (x.status, x.quality, x.category) for n, x in found.items() if n != "recordatorio_pago"} == {
        "promo": ("paused", "yellow", "marketing"), "codigo": ("rejected", "unknown", "authentication"),
        "encuesta": ("pending", "green", "marketing"), "baja": ("disabled", "red", "utility")}
    assert found["promo"].header == {"format": "image", "text": ""}
    assert found["codigo"].reason == "INVALID_FORMAT"
    provider = db.session.get(Provider, meta.provider.id)
    assert provider.templates_synced_at is not None and provider.templates_sync_error is None


def test_a_second_sync_updates_changed_templates_and_marks_removed_ones_deleted(db: Any, meta: SimpleNamespace,
                                                                                  make: Any) -> None:
    fake = meta.fake
    fake.add_template("uno", body="Hola {{1}}")
    fake.add_template("dos", body="Chau")
    sync(db, meta.provider)
    kept = by_name(db, meta.provider)["dos"]
    campaign = make.campaign(make.group(), meta.provider)
    db.session.add(CannedResponse(campaign_id=campaign.id, title="Chau", body="Chau", template_id=kept.id,
                                  template_ref="dos"))
    db.session.commit()
    with fake.lock:
        fake.templates[0]["status"] = "PAUSED"
        del fake.templates[1]
    result = sync(db, meta.provider)
    assert (result.added, result.updated, result.gone) == (0, 1, 1)
    found = by_name(db, meta.provider)
    assert (found["uno"].status, found["dos"].status) == ("paused", "deleted")
    assert db.session.scalar(sa.select(CannedResponse.template_id)) == kept.id  # the canned response keeps it


def test_a_failed_sync_is_recorded_on_the_provider_and_keeps_the_catalog(db: Any, meta: SimpleNamespace,
                                                                         make: Any) -> None:
    meta.fake.add_template("uno")
    sync(db, meta.provider)
    meta.fake.set_mode("500")
    with pytest.raises(templates.SyncError):
        templates.sync(db.session.get(Provider, meta.provider.id))
    db.session.commit()
    provider = db.session.get(Provider, meta.provider.id)
    assert "HTTP 500" in provider.templates_sync_error
    assert list(by_name(db, meta.provider)) == ["uno"]
    meta.fake.set_mode(None)
    no_waba = make.provider("whatsapp_cloud", channel="whatsapp", base_url=meta.fake.url,
                            credentials={"access_token": ACCESS_TOKEN}, options={"phone_number_id": "1"})
    with pytest.raises(templates.SyncError, match="no WhatsApp Business Account ID"):
        templates.sync(db.session.get(Provider, no_waba.id))


def test_twilio_content_api_templates_are_synced_every_page(db: Any, twilio_wa: SimpleNamespace) -> None:
    from tests.fakes.server import basic_credentials
    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN

    fake = twilio_wa.fake
    fake.content_page_size = 2
    text = fake.add_content("bienvenida", "Hola {{1}}, gracias por escribir.", variables={"1": "nombre"})
    fake.add_content("turno", "Tu turno es el {{1}} a las {{2}}.", status="received", types={
        "twilio/quick-reply": {"body": "Tu turno es el {{1}} a las {{2}}.",
                               "actions": [{"title": "Confirmo", "id": "si"}, {"title": "Cancelar", "id": "no"}]}})
    fake.add_content("promo_foto", "", category="MARKETING", status="rejected",
                     rejection_reason="Promotional content in a utility template", types={
                         "twilio/media": {"body": "¡Oferta {{1}}!", "media": ["https://cdn.example/promo.jpg"]}})
    fake.add_content("pagar", "", types={"twilio/call-to-action": {
        "body": "Pagá tu factura {{1}}", "actions": [{"type": "URL", "title": "Pagar", "url": "https://p.example"},
                                                     {"type": "PHONE_NUMBER", "title": "Llamar", "phone": "+1555"}]}})
    fake.add_content("borrador", "Sin enviar a aprobación", status="unsubmitted")

    result = sync(db, twilio_wa.provider)
    assert result.added == 5
    pages = fake.api_requests("/v1/ContentAndApprovals")
    assert len(pages) == 3 and all(basic_credentials(r) == (ACCOUNT_SID, AUTH_TOKEN) for r in pages)
    found = by_name(db, twilio_wa.provider)
    t = found["bienvenida"]
    assert (t.external_id, t.ref, t.status, t.category, t.variables) == (text, text, "approved", "utility", ["1"])
    assert found["turno"].status == "pending"
    assert found["turno"].buttons == [{"type": "quick_reply", "text": "Confirmo"},
                                      {"type": "quick_reply", "text": "Cancelar"}]
    promo = found["promo_foto"]
    assert (promo.status, promo.reason, promo.body) == ("rejected", "Promotional content in a utility template",
                                                        "¡Oferta {{1}}!")
    assert promo.header == {"format": "media", "text": "https://cdn.example/promo.jpg"}
    assert found["pagar"].buttons == [{"type": "url", "text": "Pagar", "url": "https://p.example"},
                                      {"type": "phone_number", "text": "Llamar", "phone": "+1555"}]
    assert found["borrador"].status == "unsubmitted"


def test_only_whatsapp_providers_have_a_catalog(db: Any, make: Any, meta: SimpleNamespace,
                                                twilio_wa: SimpleNamespace) -> None:
    sms = make.provider("twilio", channel="sms", credentials={"account_sid": "AC1", "auth_token": "t"})
    wa_sandbox = make.provider("sandbox", channel="whatsapp")
    make.provider("sandbox", channel="sms")
    make.provider("whatsapp_cloud", channel="whatsapp", enabled=False)
    assert [p.id for p in templates.providers_with_templates()] == [meta.provider.id, twilio_wa.provider.id,
                                                                     wa_sandbox.id]
    assert not templates.has_catalog(db.session.get(Provider, sms.id))


# -- webhooks ---------------------------------------------------------------------------------------------
def post(client: Any, provider: Any, payload: dict[str, Any]) -> int:
    body = json.dumps(payload).encode()
    return client.post(f"/webhooks/{provider.id}/inbound", data=body, content_type="application/json",
                       headers={"X-Hub-Signature-256": sign(body)}).status_code


def test_status_and_quality_webhooks_update_the_catalog_at_once(client: Any, app: Any, db: Any,
                                                                meta: SimpleNamespace) -> None:
    promo = meta.fake.add_template("promo", "es", "MARKETING", "APPROVED", "Hola {{1}}")
    sync(db, meta.provider)
    assert post(client, meta.provider, template_status_payload(
        promo, "promo", "es", "PAUSED", description="Your WhatsApp message template has been paused for 3 hours.")
    ) == 200
    run_jobs(app)
    t = by_name(db, meta.provider)["promo"]
    assert (t.status, t.reason) == ("paused", "Your WhatsApp message template has been paused for 3 hours.")
    assert post(client, meta.provider, template_quality_payload(promo, "promo", "es", "RED")) == 200
    run_jobs(app)
    assert by_name(db, meta.provider)["promo"].quality == "red"
    assert post(client, meta.provider, template_status_payload(promo, "promo", "es", "REINSTATED")) == 200
    run_jobs(app)
    t = by_name(db, meta.provider)["promo"]
    assert (t.status, t.reason) == ("approved", None)
    assert meta.fake.api_requests("/message_templates") == meta.fake.api_requests("/message_templates")[:1]


def test_a_forged_template_webhook_changes_nothing(client: Any, app: Any, db: Any, meta: SimpleNamespace) -> None:
    promo = meta.fake.add_template("promo")
    sync(db, meta.provider)
    body = json.dumps(template_status_payload(promo, "promo", "es", "DISABLED")).encode()
    answer = client.post(f"/webhooks/{meta.provider.id}/inbound", data=body, content_type="application/json",
                         headers={"X-Hub-Signature-256": sign(body, "not-the-secret")})
    assert answer.status_code == 403
    run_jobs(app)
    assert by_name(db, meta.provider)["promo"].status == "approved"


def test_a_webhook_about_a_new_template_syncs_the_catalog(client: Any, app: Any, db: Any,
                                                          meta: SimpleNamespace) -> None:
    sync(db, meta.provider)
    new = meta.fake.add_template("nueva", status="APPROVED")
    assert post(client, meta.provider, template_status_payload(new, "nueva", "es", "APPROVED")) == 200
    run_jobs(app)
    assert by_name(db, meta.provider)["nueva"].status == "approved"


def test_the_periodic_sync_pulls_catalogs_older_than_the_setting(app: Any, db: Any, meta: SimpleNamespace,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp.services import time as clock
    from workers.whatsapp import template_sync_pass

    monkeypatch.setitem(app.config, "TEMPLATE_SYNC_SECONDS", 600)
    meta.fake.add_template("uno")
    template_sync_pass()
    assert list(by_name(db, meta.provider)) == ["uno"]
    meta.fake.add_template("dos")
    template_sync_pass()  # synced just now: not due
    assert list(by_name(db, meta.provider)) == ["uno"]
    later = clock.now() + timedelta(seconds=601)
    monkeypatch.setattr(clock, "now", lambda: later)
    template_sync_pass()
    assert sorted(by_name(db, meta.provider)) == ["dos", "uno"]


# -- the admin page ----------------------------------------------------------------------------------------
def test_the_provider_page_lists_the_templates_and_its_button_syncs_them(client: Any, app: Any, db: Any,
                                                                         make: Any, meta: SimpleNamespace) -> None:
    make.user("boss", role="admin")
    meta.fake.add_template("recordatorio_pago", body="Hola {{1}} y {{2}}", status="APPROVED")
    meta.fake.add_template("promo", category="MARKETING", status="PAUSED")
    login(client, "boss")
    page = client.get(f"/admin/providers/{meta.provider.id}").get_data(as_text=True)
    assert "Plantillas de WhatsApp" in page and "nunca sincronizada" in page and "0 plantillas" in page

    path = f"/admin/providers/{meta.provider.id}/templates/sync"
    assert client.post(path).status_code == 400  # no CSRF token
    answer = client.post(path, data={"csrf_token": csrf_token(client, f"/admin/providers/{meta.provider.id}")})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("#provider-templates")
    assert app.extensions["conversa_queues"]["housekeeping"].count == 1  # a job, not a request that waits for Meta
    run_jobs(app)
    page = client.get(f"/admin/providers/{meta.provider.id}").get_data(as_text=True)
    assert "2 plantillas" in page and "última sincronización" in page
    assert "recordatorio_pago" in page and "Aprobada" in page and "Pausada" in page and "Marketing" in page
    assert "2 variables: {{1}}, {{2}}" in page

    sms = make.provider("dinstar", base_url="http://127.0.0.1:9")
    assert "Plantillas de WhatsApp" not in client.get(f"/admin/providers/{sms.id}").get_data(as_text=True)
    token = csrf_token(client, f"/admin/providers/{sms.id}")
    queued = app.extensions["conversa_queues"]["housekeeping"].count
    answer = client.post(f"/admin/providers/{sms.id}/templates/sync", data={"csrf_token": token},
                         follow_redirects=True)
    assert "no tiene catálogo de plantillas de WhatsApp" in answer.get_data(as_text=True)
    assert app.extensions["conversa_queues"]["housekeeping"].count == queued


def test_a_sync_error_shows_on_the_provider_page(client: Any, app: Any, db: Any, make: Any,
                                                 meta: SimpleNamespace) -> None:
    make.user("boss", role="admin")
    meta.fake.set_mode("500")
    login(client, "boss")
    client.post(f"/admin/providers/{meta.provider.id}/templates/sync",
                data={"csrf_token": csrf_token(client, f"/admin/providers/{meta.provider.id}")})
    run_jobs(app)
    page = client.get(f"/admin/providers/{meta.provider.id}").get_data(as_text=True)
    assert "La última sincronización falló" in page and "HTTP 500" in page
    assert ACCESS_TOKEN not in page


@pytest.mark.parametrize("role", ["supervisor", "agent"])
def test_only_admins_sync(client: Any, make: Any, meta: SimpleNamespace, role: str) -> None:
    make.user("someone", role=role, groups=[make.group()])
    login(client, "someone")
    token = csrf_token(client, "/campaigns" if role == "supervisor" else "/inbox")
    answer = client.post(f"/admin/providers/{meta.provider.id}/templates/sync", data={"csrf_token": token})
    assert answer.status_code == 403


# -- canned responses ---------------------------------------------------------------------------------------
def campaign_form(campaign: Any, provider: Any, group: Any, **canned: str) -> dict[str, str]:
    data = {"name": campaign.name, "service_level_target": "80", "did": campaign.did, "provider_id": str(provider.id),
            "strategy": "rrmemory_nocall", "security_group_id": str(group.id), "out_of_hours_message": "Fuera",
            "sl_threshold_seconds": "60", "abandon_threshold_seconds": "600", "chat_time_threshold_seconds": "900",
            "acd_max_waiting": "10", "max_interactions_per_agent": "3", "enabled": "y",
            "canned-0-title": "Recordatorio", "canned-0-body": "Hola, te recordamos tu cuota."}
    data.update({f"canned-0-{k}": v for k, v in canned.items()})
    return data


def test_a_canned_response_points_at_a_catalog_template_or_keeps_a_typed_name(
        client: Any, db: Any, make: Any, meta: SimpleNamespace, twilio_wa: SimpleNamespace) -> None:
    group = make.group()
    make.user("sup", role="supervisor", groups=[group])
    campaign = make.campaign(group, meta.provider, name="Cobros", did="+59829001000")
    meta.fake.add_template("recordatorio_pago", body="Hola {{1}}")
    twilio_wa.fake.add_content("otra", "De Twilio")
    sync(db, meta.provider)
    sync(db, twilio_wa.provider)
    ours, theirs = by_name(db, meta.provider)["recordatorio_pago"], by_name(db, twilio_wa.provider)["otra"]
    login(client, "sup")
    path = f"/campaigns/{campaign.id}"
    refused = client.post(path, data={**campaign_form(campaign, meta.provider, group, template_id=str(theirs.id)),
                                      "csrf_token": csrf_token(client, path)})
    assert refused.status_code == 422
    assert "Esa plantilla es de otro proveedor" in refused.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(CannedResponse.id))) == 0  # nothing half saved

    saved = client.post(path, data={**campaign_form(campaign, meta.provider, group, template_id=str(ours.id),
                                                    template_ref="ignored"), "csrf_token": csrf_token(client, path)})
    assert saved.status_code == 302
    db.session.expire_all()
    canned = db.session.scalar(sa.select(CannedResponse))
    assert (canned.template_id, canned.template_ref) == (ours.id, "recordatorio_pago")
    page = client.get(path).get_data(as_text=True)
    assert "Plantilla de WhatsApp del catálogo" in page
    assert '<optgroup label="Meta">' in page and '<optgroup label="Twilio WA">' in page
    assert f'<option selected value="{ours.id}">recordatorio_pago (es) · aprobada</option>' in page

    typed = client.post(path, data={**campaign_form(campaign, meta.provider, group, template_id="",
                                                    template_ref="HXtypedbyhand"),
                                    "csrf_token": csrf_token(client, path)})
    assert typed.status_code == 302
    db.session.expire_all()
    canned = db.session.scalar(sa.select(CannedResponse))
    assert (canned.template_id, canned.template_ref) == (None, "HXtypedbyhand")


def test_adding_a_canned_row_offers_the_catalog(client: Any, db: Any, make: Any, meta: SimpleNamespace) -> None:
    group = make.group()
    make.user("sup", role="supervisor", groups=[group])
    meta.fake.add_template("recordatorio_pago")
    sync(db, meta.provider)
    login(client, "sup")
    answer = client.post("/forms/rows", data={"rows_action": "canned-add",
                                              "csrf_token": csrf_token(client, "/campaigns")})
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert 'name="canned-0-template_id"' in html and "recordatorio_pago (es)" in html


def test_the_sandbox_catalog(db: Any, make: Any) -> None:
    """The demo's WhatsApp sandbox has a small catalog of its own, no account needed."""
    provider = make.provider("sandbox", channel="whatsapp")
    result = sync(db, provider)
    found = by_name(db, provider)
    assert result.added == len(found) >= 3
    assert found["recordatorio_pago"].variables == ["1", "2", "3"] and found["recordatorio_pago"].status == "approved"
    assert found["promo_invierno"].header == {"format": "image", "text": ""}
    assert {t.category for t in found.values()} == {"utility", "marketing", "authentication"}
