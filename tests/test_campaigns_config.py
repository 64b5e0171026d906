"""C1-C3: the campaign form (basic, schedule rows, advanced, canned responses), edit, delete, rows in place."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.helpers import csrf_token, login


@pytest.fixture
def setup(make, client):
    group = make.group("ventas")
    make.user("sup", role="supervisor", groups=[group])
    provider = make.provider(name="sandbox-uy")
    login(client, "sup")
    return {"group": group, "provider": provider, "token": csrf_token(client, "/campaigns")}


def form(setup, **over):
    data = {"csrf_token": setup["token"], "name": "Soporte", "service_level_target": "80", "did": "+59829001234",
            "provider_id": str(setup["provider"].id), "strategy": "linear_nocall",
            "security_group_id": str(setup["group"].id), "out_of_hours_message": "Estamos cerrados",
            "sl_threshold_seconds": "30", "abandon_threshold_seconds": "300", "chat_time_threshold_seconds": "1200",
            "acd_max_waiting": "5", "max_interactions_per_agent": "2", "enabled": "y",
            "schedule-0-days": ["0", "1", "2", "3", "4"], "schedule-0-start": "09:00", "schedule-0-end": "18:00",
            "schedule-1-days": ["5"], "schedule-1-start": "22:00", "schedule-1-end": "06:00",
            "canned-0-title": "Saludo", "canned-0-body": "Hola, ¿en qué te ayudo?", "canned-0-template_ref": "",
            "canned-1-title": "Cierre", "canned-1-body": "Gracias por escribir", "canned-1-template_ref": "HX123"}
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def campaigns(db):
    from webapp.models import Campaign

    db.session.expire_all()
    return db.session.scalars(sa.select(Campaign)).all()


def test_create_saves_everything_in_one_go(client, setup, db):
    from webapp.models import AuditEntry

    response = client.post("/campaigns", data=form(setup))
    assert response.status_code == 302
    [campaign] = campaigns(db)
    assert response.headers["Location"] == f"/campaigns/{campaign.id}"
    assert (campaign.name, campaign.did, campaign.strategy, campaign.sl_threshold_seconds,
            campaign.abandon_threshold_seconds, campaign.chat_time_threshold_seconds, campaign.acd_max_waiting,
            campaign.max_interactions_per_agent, campaign.enabled) == (
        "Soporte", "+59829001234", "linear_nocall", 30, 300, 1200, 5, 2, True)
    assert [(e.days, e.start_time.strftime("%H:%M"), e.end_time.strftime("%H:%M")) for e in campaign.schedule] == [
        (0b0011111, "09:00", "18:00"), (0b0100000, "22:00", "06:00")]
    assert [(c.title, c.template_ref) for c in campaign.canned_responses] == [("Saludo", None), ("Cierre", "HX123")]
    audit = db.session.scalars(sa.select(AuditEntry)).all()
    assert [(a.action, a.target_id) for a in audit] == [("campaign.create", campaign.id)]
    # C3: it appears in the table on the right.
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert re.search(r'id="campaigns-table".*Soporte', page, re.S)


def test_the_long_wait_rule_is_off_unless_set(client, setup, db):
    """Issue 12.2: closing conversations left waiting N hours is a per-campaign choice, off by default."""
    assert client.post("/campaigns", data=form(setup)).status_code == 302
    assert client.post("/campaigns", data=form(setup, name="Ventas", did="+59829001235", auto_close_hours="12",
                                               auto_close_message="Cerramos; escribinos de nuevo.")).status_code == 302
    from webapp.models.campaigns import DEFAULT_AUTO_CLOSE

    rules = {c.name: (c.auto_close_hours, c.auto_close_message) for c in campaigns(db)}
    assert rules == {"Soporte": (0, DEFAULT_AUTO_CLOSE), "Ventas": (12, "Cerramos; escribinos de nuevo.")}


def test_new_form_shows_the_model_defaults(client, setup):
    page = client.get("/campaigns").get_data(as_text=True)
    for name, value in (("sl_threshold_seconds", "60"), ("abandon_threshold_seconds", "600"),
                        ("chat_time_threshold_seconds", "900"), ("acd_max_waiting", "10"),
                        ("max_interactions_per_agent", "3"), ("service_level_target", "80")):
        assert re.search(rf'name="{name}"[^>]*value="{value}"', page), name
    assert "fuera de horario" in page  # the default out-of-hours message
    assert 'value="ringall"' in page and 'value="wrandom_incall"' in page


@pytest.mark.parametrize("over, field, message", [
    ({"name": ""}, "name", "Ingrese un nombre."),
    ({"did": ""}, "did", "Escriba el número o id que usa el proveedor."),
    ({"sl_threshold_seconds": "abc"}, "sl_threshold_seconds", "Escriba un número entero."),
    ({"acd_max_waiting": "diez"}, "acd_max_waiting", "Escriba un número entero."),
    ({"service_level_target": "120"}, "service_level_target", "Entre 0 y 100."),
    ({"max_interactions_per_agent": "0"}, "max_interactions_per_agent", "Entre 1 y 100."),
    ({"strategy": "fastest"}, "strategy", "Opción inválida."),
    ({"schedule-1-days": None}, "schedule-1-days", "Marque al menos un día."),
    ({"schedule-0-end": "09:00"}, "schedule-0-end", "El fin es igual al inicio"),
    ({"schedule-0-start": ""}, "schedule-0-start", "Escriba una hora, ej. 09:00."),
    ({"canned-1-body": ""}, "canned-1-body", "Escriba la respuesta."),
])
def test_errors_show_beside_the_field_and_nothing_is_saved(client, setup, db, over, field, message):
    response = client.post("/campaigns", data=form(setup, name=over.pop("name", "Soporte <b>"), **over))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert campaigns(db) == []
    # The message sits in the field's own label block, after the field's input.
    assert re.search(rf'name="{field}".*?{re.escape(message)}', page, re.S), page[:200]
    # Everything typed comes back: rows, canned responses and the other fields.
    assert 'value="22:00"' in page and 'value="Saludo"' in page and 'value="HX123"' in page
    if field != "name":
        assert 'value="Soporte &lt;b&gt;"' in page


def test_overnight_range_is_allowed(client, setup, db):
    assert client.post("/campaigns", data=form(setup, **{"schedule-0-start": "20:00", "schedule-0-end": "02:00"})
                       ).status_code == 302
    entry = campaigns(db)[0].schedule[0]
    assert entry.start_time.hour == 20 and entry.end_time.hour == 2


def test_duplicate_name_is_refused(client, setup, make, db):
    make.campaign(setup["group"], setup["provider"], name="Soporte")
    response = client.post("/campaigns", data=form(setup, name="soporte"))
    assert response.status_code == 422
    assert "“soporte” ya está en uso; elija otro." in response.get_data(as_text=True)
    assert len(campaigns(db)) == 1


def test_supervisor_cannot_use_another_group(client, setup, make, db):
    other = make.group("cobranzas")
    response = client.post("/campaigns", data=form(setup, security_group_id=str(other.id)))
    assert response.status_code == 422
    assert campaigns(db) == []
    page = client.get("/campaigns").get_data(as_text=True)
    assert "cobranzas" not in page and "ventas" in page


def test_edit_replaces_rows_and_keeps_ids_stable(client, setup, db):
    client.post("/campaigns", data=form(setup))
    [campaign] = campaigns(db)
    first_canned = campaign.canned_responses[0].id
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'value="Soporte"' in page and 'value="22:00"' in page and "Hola, ¿en qué te ayudo?" in page
    data = form(setup, name="Soporte 2", strategy="ringall", **{"schedule-1-days": None, "schedule-1-start": None,
                                                               "schedule-1-end": None, "canned-1-title": None,
                                                               "canned-1-body": None, "canned-1-template_ref": None})
    assert client.post(f"/campaigns/{campaign.id}", data=data).status_code == 302
    [campaign] = campaigns(db)
    assert (campaign.name, campaign.strategy, len(campaign.schedule)) == ("Soporte 2", "ringall", 1)
    assert [c.id for c in campaign.canned_responses] == [first_canned]


def test_rows_plus_and_minus_work_on_the_unsaved_form(client, setup, db):
    data = form(setup, rows_action="schedule-add")
    fragment = client.post("/forms/rows", data=data, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.count('class="schedule-row"') == 3
    assert 'name="schedule-2-start"' in fragment
    data = form(setup, rows_action="schedule-remove", schedule_selected="0")
    fragment = client.post("/forms/rows", data=data).get_data(as_text=True)
    assert fragment.count('class="schedule-row"') == 1
    assert re.search(r'name="schedule-0-start"[^>]*value="22:00"', fragment)  # renumbered, typed value kept
    data = form(setup, rows_action="canned-remove", canned_selected="1")
    fragment = client.post("/forms/rows", data=data).get_data(as_text=True)
    assert "Saludo" in fragment and "Cierre" not in fragment
    assert campaigns(db) == []


def test_rows_without_javascript_rerender_the_page_without_saving(client, setup, db):
    response = client.post("/campaigns", data=form(setup, name="", rows_action="canned-add"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count('class="canned-row"') == 3
    assert "Ingrese un nombre." not in page  # not validated: the user is still typing
    assert campaigns(db) == []


def test_other_groups_campaign_answers_404(client, setup, make):
    other = make.campaign(make.group("otro"), setup["provider"])
    assert client.get(f"/campaigns/{other.id}").status_code == 404
    assert client.post(f"/campaigns/{other.id}", data=form(setup)).status_code == 404
    assert client.post(f"/campaigns/{other.id}/delete", data={"csrf_token": setup["token"]}).status_code == 404


def test_delete_asks_then_deletes(client, setup, make, db):
    from webapp.models import AuditEntry

    campaign = make.campaign(setup["group"], setup["provider"], name="Vieja")
    confirm = client.get(f"/campaigns/{campaign.id}/delete").get_data(as_text=True)
    assert "¿Eliminar “Vieja”?" in confirm
    assert campaigns(db) != []
    response = client.post(f"/campaigns/{campaign.id}/delete", data={"csrf_token": setup["token"]})
    assert response.headers["Location"] == "/campaigns"
    assert campaigns(db) == []
    assert db.session.scalar(sa.select(AuditEntry.action)) == "campaign.delete"


def test_delete_is_refused_with_open_interactions(client, setup, make, db):
    from webapp.models import Interaction

    campaign = make.campaign(setup["group"], setup["provider"], name="Activa")
    db.session.add(Interaction(campaign_id=campaign.id, customer_number="+59899000001"))
    db.session.commit()
    response = client.post(f"/campaigns/{campaign.id}/delete", data={"csrf_token": setup["token"]},
                           follow_redirects=True)
    assert "“Activa” tiene 1 interacción abierta" in response.get_data(as_text=True)
    assert len(campaigns(db)) == 1


def test_a_did_another_campaign_of_the_provider_answers_is_refused_naming_it(client, setup, make, db):
    """Issue 12.4: the second campaign with a DID used to be saved and never get traffic."""
    make.campaign(setup["group"], setup["provider"], name="Ventas", did="+59829001234")
    for did in ("+59829001234", "029001234"):  # the same number, also written national
        response = client.post("/campaigns", data=form(setup, did=did))
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert re.search(r'name="did".*?La campaña “Ventas” ya usa este DID en este proveedor \(\+59829001234\)',
                         page, re.S), page
        assert "Soporte" in page  # what was typed stays
    assert [c.name for c in campaigns(db)] == ["Ventas"]
    # Another provider may use the same DID; and a campaign keeps its own DID when edited.
    other = make.provider(name="twilio-uy")
    assert client.post("/campaigns", data=form(setup, provider_id=str(other.id))).status_code == 302
    soporte = next(c for c in campaigns(db) if c.name == "Soporte")
    assert client.post(f"/campaigns/{soporte.id}", data=form(setup, provider_id=str(other.id),
                                                             name="Soporte 2")).status_code == 302


def test_the_database_holds_one_campaign_per_did_of_a_provider(setup, make, db):
    from sqlalchemy.exc import IntegrityError

    make.campaign(setup["group"], setup["provider"], name="Ventas", did="+59829001234")
    with pytest.raises(IntegrityError):
        make.campaign(setup["group"], setup["provider"], name="Soporte", did="+59829001234")
    db.session.rollback()


def test_a_new_campaign_and_dialer_start_in_the_creators_own_group(client, make, db):
    """Issue 12.4: an admin's new campaign defaulted to the first group by name, not the admin's."""
    make.group("alfa")
    own = make.group("zeta")
    make.user("boss", role="admin", groups=[own])
    make.provider(name="sandbox-uy")
    login(client, "boss")
    for url in ("/campaigns", "/dialers/new"):
        page = client.get(url).get_data(as_text=True)
        select = re.search(r'<select[^>]*name="security_group_id".*?</select>', page, re.S).group(0)
        assert re.search(rf'<option selected value="{own.id}">|<option value="{own.id}" selected', select), select
