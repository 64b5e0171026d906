"""D1, D2: the dialer form at /dialers/new and /dialers/<id>/edit, dial strings per provider type."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.helpers import csrf_token, login


@pytest.fixture
def setup(make, client):
    group = make.group("ventas")
    make.user("sup", role="supervisor", groups=[group])
    providers = {t: make.provider(type=t, name=f"p-{t}") for t in ("dinstar", "twilio", "quality", "sandbox")}
    login(client, "sup")
    return {"group": group, "providers": providers, "token": csrf_token(client, "/dialers/new")}


def form(setup, provider="dinstar", **over):
    data = {"csrf_token": setup["token"], "name": "marcadortest", "provider_id": str(setup["providers"][provider].id),
            "security_group_id": str(setup["group"].id), "dial_string": "(0.3)", "interval_ms": "500",
            "enabled": "y", "dncr": "y", "schedule-0-days": ["0", "1", "2", "3", "4"], "schedule-0-start": "08:00",
            "schedule-0-end": "20:00"}
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def dialers(db):
    from webapp.models import Dialer

    db.session.expire_all()
    return db.session.scalars(sa.select(Dialer)).all()


def test_create_dinstar_dialer_parses_ports(client, setup, db):
    from webapp.models import AuditEntry

    response = client.post("/dialers/new", data=form(setup))
    [dialer] = dialers(db)
    assert response.status_code == 302 and response.headers["Location"] == f"/dialers/{dialer.id}"  # its dashboard
    assert (dialer.name, dialer.dial_string, dialer.ports, dialer.interval_ms, dialer.enabled, dialer.dncr) == (
        "marcadortest", "(0.3)", [0, 1, 2, 3], 500, True, True)
    assert [(e.days, e.start_time.hour, e.end_time.hour) for e in dialer.schedule] == [(0b11111, 8, 20)]
    assert db.session.scalar(sa.select(AuditEntry.action)) == "dialer.create"


@pytest.mark.parametrize("provider, dial_string, ok, message", [
    ("dinstar", "", False, "Un proveedor por puertos necesita cadena de marcado"),
    ("dinstar", "0.3", False, "Escriba los puertos entre paréntesis"),
    ("dinstar", "(3.0)", False, "está al revés"),
    ("dinstar", "(0.1,5)", True, None),
    ("twilio", "(0.3)", False, "Un proveedor twilio no lleva cadena de marcado"),
    ("quality", "(1)", False, "Un proveedor quality no lleva cadena de marcado"),
    ("twilio", "", True, None),
    ("quality", "  ", True, None),
])
def test_dial_string_per_provider_type(client, setup, db, provider, dial_string, ok, message):
    response = client.post("/dialers/new", data=form(setup, provider=provider, dial_string=dial_string))
    if ok:
        assert response.status_code == 302
        assert len(dialers(db)) == 1
        return
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'name="dial_string".*?class="error"[^>]*>[^<]*' + re.escape(message), page, re.S)
    assert dialers(db) == []
    assert 'value="08:00"' in page  # the schedule typed is still there


@pytest.mark.parametrize("over, field, message", [
    ({"name": ""}, "name", "Ingrese un nombre."),
    ({"interval_ms": "-5"}, "interval_ms", "Entre 0 y 3600000."),
    ({"interval_ms": "rápido"}, "interval_ms", "Escriba un número entero."),
    ({"schedule-0-days": None}, "schedule-0-days", "Marque al menos un día."),
])
def test_field_errors(client, setup, db, over, field, message):
    response = client.post("/dialers/new", data=form(setup, **over))
    assert response.status_code == 422
    assert re.search(rf'name="{field}".*?{re.escape(message)}', response.get_data(as_text=True), re.S)
    assert dialers(db) == []


def test_duplicate_name(client, setup, make, db):
    make.dialer(setup["group"], setup["providers"]["sandbox"], name="marcadortest")
    response = client.post("/dialers/new", data=form(setup))
    assert "“marcadortest” ya está en uso; elija otro." in response.get_data(as_text=True)


def test_edit_and_delete(client, setup, make, db):
    dialer = make.dialer(setup["group"], setup["providers"]["twilio"], name="viejo", enabled=False)
    page = client.get(f"/dialers/{dialer.id}/edit").get_data(as_text=True)
    assert 'value="viejo"' in page
    saved_edit = client.post(f"/dialers/{dialer.id}/edit", data=form(setup, name="nuevo"))
    assert saved_edit.status_code == 302 and saved_edit.headers["Location"] == f"/dialers/{dialer.id}"
    [saved] = dialers(db)
    assert (saved.name, saved.ports, saved.provider.type) == ("nuevo", [0, 1, 2, 3], "dinstar")
    assert "¿Eliminar “nuevo”?" in client.get(f"/dialers/{dialer.id}/delete").get_data(as_text=True)
    # Running (enabled and started) dialers must be stopped first.
    saved.running = True
    db.session.commit()
    refused = client.post(f"/dialers/{dialer.id}/delete", data={"csrf_token": setup["token"]})
    assert refused.headers["Location"] == f"/dialers/{dialer.id}/edit"
    assert len(dialers(db)) == 1
    dialers(db)[0].running = False
    db.session.commit()
    response = client.post(f"/dialers/{dialer.id}/delete", data={"csrf_token": setup["token"]})
    assert response.headers["Location"] == "/dialers"
    assert dialers(db) == []


def test_other_groups_dialer_answers_404(client, setup, make):
    foreign = make.dialer(make.group("otro"), setup["providers"]["sandbox"])
    assert client.get(f"/dialers/{foreign.id}/edit").status_code == 404
    assert client.post(f"/dialers/{foreign.id}/edit", data=form(setup)).status_code == 404
    assert client.post(f"/dialers/{foreign.id}/delete", data={"csrf_token": setup["token"]}).status_code == 404
