"""M1, M2: adding and removing members, the voice-campaign rule, order and penalty in place."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.helpers import csrf_token, login


@pytest.fixture
def setup(make, client):
    group = make.group("ventas")
    make.user("sup", role="supervisor", groups=[group])
    provider = make.provider()
    c1 = make.campaign(group, provider, name="Soporte")
    c2 = make.campaign(group, provider, name="Ventas")
    ana = make.user("ana", groups=[group], name="Ana")
    beto = make.user("beto", groups=[group], name="Beto")
    login(client, "sup")
    return {"group": group, "c1": c1, "c2": c2, "ana": ana, "beto": beto, "token": csrf_token(client, "/members")}


def members(db):
    from webapp.models import Membership

    db.session.expire_all()
    return sorted((m.campaign.name, m.user.username, m.position) for m in db.session.scalars(sa.select(Membership)))


def test_add_two_agents_to_two_campaigns(client, setup, db):
    from webapp.models import AuditEntry

    s = setup
    response = client.post("/members/add", data={"csrf_token": s["token"], "campaign": [s["c1"].id, s["c2"].id],
                                                 "agent": [s["ana"].id, s["beto"].id]})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "4 membresías agregadas." in page
    assert f'id="campaign-{s["c1"].id}-members"' in page and "Beto" in page
    assert members(db) == [("Soporte", "ana", 1), ("Soporte", "beto", 2), ("Ventas", "ana", 1), ("Ventas", "beto", 2)]
    assert db.session.scalars(sa.select(AuditEntry.action)).all() == ["membership.add", "membership.add"]


def test_adding_an_existing_member_changes_nothing(client, setup, make, db):
    s = setup
    make.member(s["c1"], s["ana"], position=7, penalty=40)
    response = client.post("/members/add", data={"csrf_token": s["token"], "campaign": [s["c1"].id],
                                                 "agent": [s["ana"].id]})
    assert "0 membresías agregadas." in response.get_data(as_text=True)
    assert members(db) == [("Soporte", "ana", 7)]


def test_agents_without_voice_campaign_are_refused_by_name_and_nothing_is_added(client, setup, make, db):
    s = setup
    carla = make.user("carla", groups=[s["group"]], name="Carla Ruiz", voice=False)
    response = client.post("/members/add", data={"csrf_token": s["token"], "campaign": [s["c1"].id],
                                                 "agent": [s["ana"].id, carla.id]})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "No se agregó nada: Carla Ruiz no pertenece a ninguna campaña de voz" in page
    assert members(db) == []
    # The page marks her in the agents list, so the supervisor sees it before trying.
    assert "Carla Ruiz (sin campaña de voz)" in client.get("/members").get_data(as_text=True)


def test_htmx_refusal_still_swaps(client, setup, make):
    s = setup
    carla = make.user("carla", groups=[s["group"]], voice=False)
    response = client.post("/members/add", headers={"HX-Request": "true"},
                           data={"csrf_token": s["token"], "campaign": [s["c1"].id], "agent": [carla.id]})
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith('<div id="members">')


def test_remove(client, setup, make, db):
    s = setup
    make.member(s["c1"], s["ana"])
    make.member(s["c1"], s["beto"])
    make.member(s["c2"], s["ana"])
    response = client.post("/members/remove", data={"csrf_token": s["token"], "campaign": [s["c1"].id],
                                                    "agent": [s["ana"].id]})
    assert "1 membresía quitada." in response.get_data(as_text=True)
    assert members(db) == [("Soporte", "beto", 0), ("Ventas", "ana", 0)]


def test_nothing_picked_says_so(client, setup):
    response = client.post("/members/add", data={"csrf_token": setup["token"], "campaign": [setup["c1"].id]})
    assert "Seleccione al menos una campaña y un agente." in response.get_data(as_text=True)


def test_other_groups_objects_are_ignored_or_404(client, setup, make, db):
    s = setup
    other_group = make.group("otro")
    foreign_campaign = make.campaign(other_group, name="Ajena")
    foreign_agent = make.user("zoe", groups=[other_group])
    client.post("/members/add", data={"csrf_token": s["token"], "campaign": [foreign_campaign.id, s["c1"].id],
                                      "agent": [foreign_agent.id, s["ana"].id]})
    assert members(db) == [("Soporte", "ana", 1)]
    foreign = make.member(foreign_campaign, foreign_agent)
    assert client.post(f"/members/{foreign.id}", data={"csrf_token": s["token"], "position": "1",
                                                       "penalty": "5"}).status_code == 404
    page = client.get("/members").get_data(as_text=True)
    assert "Ajena" not in page and "zoe" not in page


def test_column_shows_members_of_picked_campaigns(client, setup, make):
    s = setup
    make.member(s["c1"], s["ana"])
    column = client.get(f"/members/column?campaign={s['c1'].id}").get_data(as_text=True)
    assert column.startswith('<section id="members-column"') and "Ana" in column and "Ventas" not in column


@pytest.mark.parametrize("position, penalty, status, stored, message", [
    ("3", "40", 200, (3, 40), None),
    ("3", "101", 422, (0, 0), "La penalidad va de 0 a 100."),
    ("3", "-1", 422, (0, 0), "La penalidad va de 0 a 100."),
    ("x", "10", 422, (0, 0), "Escriba un número entero."),
])
def test_order_and_penalty_in_place(client, setup, make, db, position, penalty, status, stored, message):
    from webapp.models import Membership

    membership = make.member(setup["c1"], setup["ana"])
    response = client.post(f"/members/{membership.id}", data={"csrf_token": setup["token"], "position": position,
                                                              "penalty": penalty})
    assert response.status_code == status
    row = response.get_data(as_text=True)
    assert row.startswith(f'<tr id="membership-{membership.id}">')
    assert f'value="{penalty}"' in row  # what was typed stays in the box
    if message:
        assert message in row
    db.session.expire_all()
    saved = db.session.get(Membership, membership.id)
    assert (saved.position, saved.penalty) == stored
