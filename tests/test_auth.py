"""Sign-in, throttling, sign-out, language, health."""
from __future__ import annotations

import re

from conftest import PASSWORD, csrf_token, login


def test_login_page_renders_in_spanish_by_default(client, ctx):
    page = client.get("/login")
    assert page.status_code == 200
    assert "Ingresar" in page.get_data(as_text=True)


def test_login_page_follows_accept_language(client, ctx):
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Sign in" in page.get_data(as_text=True)


def test_wrong_password_is_refused_and_right_one_signs_in(client, make):
    make.user("ana", role="agent")
    token = csrf_token(client)
    bad = client.post("/login", data={"username": "ana", "password": "nope", "csrf_token": token})
    assert bad.status_code == 401
    response = login(client, "ana")
    assert response.headers["Location"] == "/"
    assert client.get("/").headers["Location"] == "/inbox"


def test_login_is_throttled_after_repeated_failures(client, make, app):
    make.user("ana", role="agent")
    token = csrf_token(client)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert client.post("/login", data={"username": "ana", "password": "x", "csrf_token": token}).status_code == 401
    # Even the right password waits now.
    locked = client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token})
    assert locked.status_code == 429
    assert re.search(r"\d+", locked.get_data(as_text=True))


def test_login_without_csrf_is_rejected(client, make):
    make.user("ana")
    assert client.post("/login", data={"username": "ana", "password": PASSWORD}).status_code == 400


def test_login_ignores_offsite_next(client, make):
    make.user("ana")
    token = csrf_token(client)
    response = client.post("/login?next=https://evil.example/x",
                           data={"username": "ana", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_agent_sign_in_and_out_moves_state(client, make, db):
    from webapp.models import User

    user = make.user("ana")
    assert user.state == "disconnected"
    login(client, "ana")
    db.session.expire_all()
    assert db.session.get(User, user.id).state == "free"
    token = csrf_token(client, "/inbox")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).state == "disconnected"
    assert client.get("/inbox").status_code == 302


def test_session_version_bump_ends_session(client, make, db):
    from webapp.models import User

    user = make.user("ana")
    login(client, "ana")
    assert client.get("/inbox").status_code == 200
    db.session.get(User, user.id).session_version += 1
    db.session.commit()
    response = client.get("/inbox")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    htmx = client.get("/inbox", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/login"


def test_language_switch_is_kept_per_user(client, make, db):
    from webapp.models import User

    user = make.user("ana")
    login(client, "ana")
    token = csrf_token(client, "/inbox")
    client.post("/language", data={"lang": "en", "csrf_token": token, "next": "/inbox"})
    db.session.expire_all()
    assert db.session.get(User, user.id).language == "en"
    assert "Sign out" in client.get("/inbox").get_data(as_text=True)
    assert client.post("/language", data={"lang": "xx", "csrf_token": token}).status_code == 400


def test_healthz_reports_database_and_redis(client, ctx):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_is_503_when_redis_is_down(app, ctx):
    import redis

    real = app.extensions["conversa_redis"]
    app.extensions["conversa_redis"] = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        response = app.test_client().get("/healthz")
    finally:
        app.extensions["conversa_redis"] = real
    assert response.status_code == 503
    assert response.json["redis"].startswith("error") and response.json["database"] == "ok"


def test_translations_work_in_jobs_without_a_request(app):
    """Workers and CLI commands have an app context but no request: Spanish, the default, and no crash."""
    from flask_babel import gettext

    with app.app_context():
        assert gettext("Sign in") == "Ingresar"


def test_static_urls_carry_their_version_and_are_kept_a_year(client, app):
    """Agents on slow links: assets are fetched once, not revalidated on every page; a new file, a new URL."""
    import hashlib
    import os
    import re
    from pathlib import Path

    page = client.get("/login").get_data(as_text=True)
    css = re.search(r'href="(/static/css/app\.css\?v=([0-9a-f]{12}))"', page)
    assert css, "the stylesheet's URL has no version"
    content = (Path(app.static_folder) / "css/app.css").read_bytes()
    assert css.group(2) == hashlib.sha256(content).hexdigest()[:12]
    response = client.get(css.group(1))
    assert response.status_code == 200 and response.data == content
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    response.close()
    # A stale or missing version is revalidated, never kept a year.
    for url in ("/static/css/app.css?v=000000000000", "/static/css/app.css"):
        response = client.get(url)
        assert response.status_code == 200 and "immutable" not in response.headers.get("Cache-Control", "")
        response.close()
    # A changed file gets a new URL (a file of this test's own, removed after).
    target = Path(app.static_folder) / f"css/_version_test_{os.getpid()}.css"
    with app.test_request_context():
        from flask import url_for

        try:
            target.write_bytes(b"a{}")
            before = url_for("static", filename=f"css/{target.name}")
            target.write_bytes(b"a{color:red}")
            after = url_for("static", filename=f"css/{target.name}")
        finally:
            target.unlink()
        assert before != after and before.startswith("/static/css/_version_test_")
