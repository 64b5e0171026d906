"""Users, security groups, break types and voice campaigns: create, edit, delete, per-field errors, audit."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.helpers import csrf_token, login


@pytest.fixture
def admin(make, client):
    group = make.group("ventas")
    user = make.user("root", role="admin", groups=[group])
    login(client, "root")
    return {"group": group, "user": user, "token": csrf_token(client, "/admin/users")}


def user_form(admin, **over):
    data = {"csrf_token": admin["token"], "username": "ana", "name": "Ana Pérez", "email": "ana@example.com",
            "role": "agent", "language": "es", "security_group_ids": [str(admin["group"].id)],
            "monitor_screen_allowed": "y", "active": "y", "password": "una-clave-larga"}
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def get_user(db, username):
    from webapp.models import User

    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.username == username))


def actions(db):
    from webapp.models import AuditEntry

    return db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()


def test_create_user(client, admin, db):
    response = client.post("/admin/users", data=user_form(admin))
    ana = get_user(db, "ana")
    assert response.headers["Location"] == f"/admin/users/{ana.id}"
    assert (ana.name, ana.email, ana.role, ana.language, ana.monitor_screen_allowed, ana.active) == (
        "Ana Pérez", "ana@example.com", "agent", "es", True, True)
    assert [g.name for g in ana.security_groups] == ["ventas"]
    assert ana.check_password("una-clave-larga")
    assert actions(db) == ["user.create"]
    page = client.get("/admin/users").get_data(as_text=True)
    assert "una-clave-larga" not in page and ">ana</a>" in page


@pytest.mark.parametrize("over, message", [
    ({"username": ""}, "Escriba un nombre de usuario."),
    ({"username": "ana maria"}, "Solo letras, dígitos y . _ @ -, sin espacios."),
    ({"username": "ROOT"}, "“ROOT” ya está en uso; elija otro."),
    ({"password": ""}, "Ingrese una contraseña para el nuevo usuario."),
    ({"password": "corta"}, "Al menos 8 caracteres."),
    ({"email": "no-es-mail"}, "No es una dirección de correo."),
    ({"role": "god"}, "Opción inválida."),
])
def test_user_errors(client, admin, db, over, message):
    response = client.post("/admin/users", data=user_form(admin, **over))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert get_user(db, "ana") is None
    assert 'value="Ana Pérez"' in page  # what was typed stays
    assert "una-clave-larga" not in page  # passwords are never echoed


def test_edit_without_password_keeps_it_and_sessions(client, admin, make, db):
    ana = make.user("ana", groups=[admin["group"]])
    version, hash_ = ana.session_version, ana.password_hash
    client.post(f"/admin/users/{ana.id}", data=user_form(admin, password="", name="Ana P.", role="supervisor"))
    ana = get_user(db, "ana")
    assert (ana.name, ana.role, ana.password_hash, ana.session_version) == ("Ana P.", "supervisor", hash_, version)


def test_new_password_ends_the_users_sessions(client, admin, make, app, db):
    ana = make.user("ana", groups=[admin["group"]])
    other = app.test_client()
    login(other, "ana")
    assert other.get("/inbox").status_code == 200
    client.post(f"/admin/users/{ana.id}", data=user_form(admin, password="otra-clave-nueva"))
    assert get_user(db, "ana").check_password("otra-clave-nueva")
    assert other.get("/inbox").headers["Location"].startswith("/login")


def test_deactivating_ends_sessions_too(client, admin, make, app, db):
    ana = make.user("ana", groups=[admin["group"]])
    other = app.test_client()
    login(other, "ana")
    client.post(f"/admin/users/{ana.id}", data=user_form(admin, password="", active=None))
    assert get_user(db, "ana").active is False
    assert other.get("/inbox").status_code == 302


def test_admin_cannot_lock_themselves_out(client, admin, db):
    me = admin["user"]
    response = client.post(f"/admin/users/{me.id}", data=user_form(admin, username="root", password="", active=None,
                                                                   role="admin"))
    assert "No puede desactivarse a sí mismo." in response.get_data(as_text=True)
    response = client.post(f"/admin/users/{me.id}", data=user_form(admin, username="root", password="", role="agent"))
    assert "No puede quitarse a sí mismo el rol de administrador." in response.get_data(as_text=True)
    response = client.post(f"/admin/users/{me.id}/delete", data={"csrf_token": admin["token"]}, follow_redirects=True)
    assert "No puede eliminarse a sí mismo." in response.get_data(as_text=True)
    assert get_user(db, "root").active is True


def test_delete_user(client, admin, make, db):
    ana = make.user("ana")
    assert "¿Eliminar “ana”?" in client.get(f"/admin/users/{ana.id}/delete").get_data(as_text=True)
    response = client.post(f"/admin/users/{ana.id}/delete", data={"csrf_token": admin["token"]})
    assert response.headers["Location"] == "/admin/users"
    assert get_user(db, "ana") is None
    assert actions(db) == ["user.delete"]


# -- security groups, break types, voice campaigns ---------------------------------------------------
def test_security_group_crud_and_in_use_refusal(client, admin, make, db):
    from webapp.models import SecurityGroup

    t = admin["token"]
    assert client.post("/admin/groups", data={"csrf_token": t, "name": "cobranzas", "description": "Equipo B"}
                       ).status_code == 302
    group = db.session.scalar(sa.select(SecurityGroup).where(SecurityGroup.name == "cobranzas"))
    assert group.description == "Equipo B"
    dup = client.post("/admin/groups", data={"csrf_token": t, "name": "Cobranzas"})
    assert dup.status_code == 422 and "“Cobranzas” ya está en uso" in dup.get_data(as_text=True)
    empty = client.post("/admin/groups", data={"csrf_token": t, "name": ""})
    assert "Ingrese un nombre." in empty.get_data(as_text=True)
    client.post(f"/admin/groups/{group.id}", data={"csrf_token": t, "name": "cobranza", "description": ""})
    db.session.expire_all()
    assert group.name == "cobranza"
    make.campaign(group, name="Deudas")
    make.dialer(group, name="aviso")
    refused = client.post(f"/admin/groups/{group.id}/delete", data={"csrf_token": t}, follow_redirects=True)
    assert "campañas: Deudas; marcadores: aviso" in refused.get_data(as_text=True)
    assert db.session.get(SecurityGroup, group.id) is not None
    assert actions(db) == ["security_group.create", "security_group.update"]


def test_break_types(client, admin, db):
    from webapp.models import BreakType

    t = admin["token"]
    client.post("/admin/breaks", data={"csrf_token": t, "name": "Almuerzo", "icon": "🍽", "enabled": "y"})
    brk = db.session.scalar(sa.select(BreakType))
    assert (brk.name, brk.icon, brk.enabled) == ("Almuerzo", "🍽", True)
    assert "Elija un emoji." in client.post("/admin/breaks", data={"csrf_token": t, "name": "Baño", "icon": ""}
                                            ).get_data(as_text=True)
    client.post(f"/admin/breaks/{brk.id}", data={"csrf_token": t, "name": "Almuerzo", "icon": "🥪"})
    db.session.expire_all()
    assert (brk.icon, brk.enabled) == ("🥪", False)
    client.post(f"/admin/breaks/{brk.id}/delete", data={"csrf_token": t})
    assert db.session.scalar(sa.select(sa.func.count(BreakType.id))) == 0
    assert actions(db) == ["break_type.create", "break_type.update", "break_type.delete"]


def test_voice_campaigns(client, admin, make, db):
    from webapp.models import VoiceCampaign

    carla = make.user("carla", voice=False)
    supervisor = make.user("sup", role="supervisor")
    t = admin["token"]
    client.post("/admin/voice-campaigns", data={"csrf_token": t, "name": "Entrante", "member_ids": [str(carla.id)]})
    voice = db.session.scalar(sa.select(VoiceCampaign).where(VoiceCampaign.name == "Entrante"))
    assert [u.username for u in voice.members] == ["carla"]
    # Only agents are offered (and accepted).
    bad = client.post(f"/admin/voice-campaigns/{voice.id}",
                      data={"csrf_token": t, "name": "Entrante", "member_ids": [str(supervisor.id)]})
    assert bad.status_code == 422
    client.post(f"/admin/voice-campaigns/{voice.id}", data={"csrf_token": t, "name": "Entrante"})
    db.session.expire_all()
    assert voice.members == []
    client.post(f"/admin/voice-campaigns/{voice.id}/delete", data={"csrf_token": t})
    assert db.session.scalar(sa.select(sa.func.count(VoiceCampaign.id))) == 0
