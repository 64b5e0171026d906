"""P1/P2: providers with per-type fields, write-only credentials, webhook URLs, refused deletes."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.helpers import csrf_token, login


@pytest.fixture
def token(make, client):
    make.user("root", role="admin")
    login(client, "root")
    return csrf_token(client, "/admin/providers")


def twilio_form(token, **over):
    data = {"csrf_token": token, "name": "Twilio UY", "type": "twilio", "channel": "whatsapp",
            "sender": "+59829001234", "base_url": "", "max_per_second": "5", "enabled": "y",
            "cred-account_sid": "AC0123456789", "cred-auth_token": "super-secret-token",
            "opt-messaging_service_sid": "", "opt-status_callback_url": ""}
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def providers(db):
    from webapp.models import Provider

    db.session.expire_all()
    return db.session.scalars(sa.select(Provider)).all()


def test_create_twilio_provider_and_see_webhooks_but_no_secret(client, token, db):
    from webapp.models import AuditEntry

    response = client.post("/admin/providers", data=twilio_form(token))
    [provider] = providers(db)
    assert response.headers["Location"] == f"/admin/providers/{provider.id}"
    assert (provider.type, provider.channel, provider.sender, provider.max_per_second) == (
        "twilio", "whatsapp", "+59829001234", 5.0)
    assert provider.credentials == {"account_sid": "AC0123456789", "auth_token": "super-secret-token"}
    page = client.get(f"/admin/providers/{provider.id}").get_data(as_text=True)
    assert "super-secret-token" not in page and "AC0123456789" not in page
    assert re.search(r'type="password" name="cred-auth_token" value=""', page)
    assert "••••••en" in page  # masked: set, last two characters
    assert f"http://localhost/webhooks/{provider.id}/inbound" in page
    assert f"http://localhost/webhooks/{provider.id}/status" in page
    assert "?token=" not in page  # Twilio signs its requests: no token in its URLs
    entry = db.session.scalar(sa.select(AuditEntry))
    assert entry.action == "provider.create"
    assert "super-secret-token" not in str(entry.detail)
    assert entry.detail["credentials_changed"] == ["account_sid", "auth_token"]


def test_empty_credential_on_edit_keeps_the_stored_one(client, token, make, db):
    provider = make.provider(type="twilio", name="Twilio UY", credentials={"account_sid": "AC1", "auth_token": "old"})
    client.post(f"/admin/providers/{provider.id}", data=twilio_form(token, **{
        "cred-account_sid": "", "cred-auth_token": "", "sender": "+59829009999"}))
    [provider] = providers(db)
    assert provider.sender == "+59829009999"
    assert provider.credentials == {"account_sid": "AC1", "auth_token": "old"}
    client.post(f"/admin/providers/{provider.id}", data=twilio_form(token, **{
        "cred-account_sid": "", "cred-auth_token": "new-token"}))
    assert providers(db)[0].credentials == {"account_sid": "AC1", "auth_token": "new-token"}


@pytest.mark.parametrize("over, field, message", [
    ({"name": ""}, "name", "Ingrese un nombre."),
    ({"cred-auth_token": ""}, "cred-auth_token", "Obligatorio para este tipo de proveedor."),
    ({"type": "dinstar", "channel": "whatsapp", "cred-username": "u", "cred-password": "p",
      "base_url": "http://10.0.0.5"}, "channel", "Opción inválida."),
    ({"type": "dinstar", "channel": "sms", "cred-username": "u", "cred-password": "p"}, "base_url",
     "Este tipo de proveedor necesita la URL base del gateway."),
    ({"type": "dinstar", "channel": "sms", "cred-username": "u", "cred-password": "p", "base_url": "http://10.0.0.5",
      "opt-port_numbers": "{0: 1"}, "opt-port_numbers", "JSON no válido"),
    ({"type": "http", "channel": "sms", "cred-username": "u", "cred-password": "p", "base_url": "http://agg",
      "opt-params": '["to"]', "opt-method": "POST", "opt-auth": "none", "opt-success_status": "200"},
     "opt-params", "Escriba un objeto JSON"),
    ({"base_url": "ftp://x"}, "base_url", "Debe comenzar con http:// o https://."),
    ({"max_per_second": "mucho"}, "max_per_second", ""),
])
def test_provider_errors(client, token, db, over, field, message):
    response = client.post("/admin/providers", data=twilio_form(token, **over))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(rf'name="{field}".*?class="error"[^>]*>[^<]*{re.escape(message)}', page, re.S), field
    assert providers(db) == []
    assert "super-secret-token" not in page  # credentials are never echoed, even on errors


def test_dinstar_needs_ports_option_json_and_stores_it(client, token, db):
    client.post("/admin/providers", data={
        "csrf_token": token, "name": "GSM", "type": "dinstar", "channel": "sms", "base_url": "http://10.0.0.5",
        "max_per_second": "2", "cred-username": "admin", "cred-password": "pw", "opt-country_code": "598",
        "opt-port_numbers": '{"0": "+59899000001"}', "opt-webhook_token": ""})
    [provider] = providers(db)
    token = provider.options.pop("webhook_token")
    assert provider.options == {"country_code": "598", "port_numbers": {"0": "+59899000001"}}
    # Left empty, a token is generated: a gateway that does not sign is known by it alone.
    assert len(token) >= 32
    page = client.get(f"/admin/providers/{provider.id}").get_data(as_text=True)
    assert f"http://localhost/webhooks/{provider.id}/inbound?token={token}" in page
    assert f"http://localhost/webhooks/{provider.id}/status?token={token}" in page
    # Saved again with the token the form shows: it stays the same.
    client.post(f"/admin/providers/{provider.id}", data={
        "csrf_token": csrf_token(client, f"/admin/providers/{provider.id}"), "name": "GSM", "type": "dinstar",
        "channel": "sms", "base_url": "http://10.0.0.5", "max_per_second": "2", "cred-username": "",
        "cred-password": "", "opt-country_code": "598", "opt-port_numbers": '{"0": "+59899000001"}',
        "opt-webhook_token": token})
    assert providers(db)[0].options["webhook_token"] == token


def test_type_switch_renders_that_types_fields(client, token):
    fragment = client.post("/admin/providers/fields", data={"csrf_token": token, "type": "dinstar"},
                           headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.startswith('<div id="provider-type-fields"')
    assert 'name="cred-username"' in fragment and 'name="opt-port_numbers"' in fragment
    assert 'name="cred-auth_token"' not in fragment
    assert '<option selected value="sms">' in fragment and "whatsapp" not in fragment
    fragment = client.post("/admin/providers/fields", data={"csrf_token": token, "type": "whatsapp_cloud"}
                           ).get_data(as_text=True)
    assert 'name="cred-access_token"' in fragment and 'name="opt-phone_number_id"' in fragment


def test_delete_refused_while_in_use_names_users(client, token, make, db):
    provider = make.provider(name="Compartido")
    group = make.group()
    make.campaign(group, provider, name="Soporte")
    make.dialer(group, provider, name="marcadortest")
    response = client.post(f"/admin/providers/{provider.id}/delete", data={"csrf_token": token},
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "El proveedor “Compartido” está en uso en campañas: Soporte; marcadores: marcadortest." in page
    assert len(providers(db)) == 1
    # The form says the same before anyone tries: which campaigns, which dialers.
    form = client.get(f"/admin/providers/{provider.id}").get_data(as_text=True)
    assert "En uso por campañas: Soporte; marcadores: marcadortest" in form


def test_delete_unused_provider(client, token, make, db):
    provider = make.provider(name="Libre")
    assert "¿Eliminar “Libre”?" in client.get(f"/admin/providers/{provider.id}/delete").get_data(as_text=True)
    response = client.post(f"/admin/providers/{provider.id}/delete", data={"csrf_token": token})
    assert response.headers["Location"] == "/admin/providers"
    assert providers(db) == []
