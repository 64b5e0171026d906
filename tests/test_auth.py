"""Sign-in, throttling, sign-out, language, health."""
from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import websocket

from tests.helpers import PASSWORD, csrf_token, login


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
    css = re.search(r'src="(/static/js/app\.js\?v=([0-9a-f]{12}))"', page)
    assert css, "the script's URL has no version"
    content = (Path(app.static_folder) / "js/app.js").read_bytes()
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


# -- signing out ends that session on the server (issue 10, point 5) ---------------------------
ROLE_PAGES = {"agent": "/inbox", "supervisor": "/monitor", "admin": "/admin/users"}


@pytest.mark.parametrize("role", sorted(ROLE_PAGES))
def test_a_cookie_copied_before_logout_is_refused_after(app, make, role):
    """Signing out revokes the session server-side: a copy of its cookie no longer signs anyone in."""
    make.user("ana", role=role)
    client = app.test_client()
    login(client, "ana")
    page = ROLE_PAGES[role]
    assert client.get(page).status_code == 200
    copied = client.get_cookie("session").value
    assert client.post("/logout", data={"csrf_token": csrf_token(client, page)}).status_code == 302

    thief = app.test_client()
    thief.set_cookie("session", copied)
    response = thief.get(page)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    htmx = thief.get(page, headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/login"


def test_logout_ends_only_that_session(app, make):
    """Another browser of the same user stays signed in (a supervisor's log-out ends them all)."""
    make.user("ana", role="supervisor")
    first, second = app.test_client(), app.test_client()
    login(first, "ana")
    login(second, "ana")
    first.post("/logout", data={"csrf_token": csrf_token(first, "/monitor")})
    assert first.get("/monitor").status_code == 302
    assert second.get("/monitor").status_code == 200


def http_login(base: str, username: str, password: str = PASSWORD) -> requests.Session:
    """Sign in over real HTTP; the session keeps the cookie."""
    http = requests.Session()
    page = http.get(f"{base}/login", timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    answer = http.post(f"{base}/login", data={"username": username, "password": password, "csrf_token": token},
                       allow_redirects=False, timeout=10)
    assert answer.status_code == 302, f"sign-in as {username} failed: {answer.status_code}"
    return http


def page_token(http: requests.Session, url: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', http.get(url, timeout=10).text).group(1)


def open_socket(base: str, http: requests.Session) -> Any:
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    ws = websocket.create_connection(base.replace("http://", "ws://") + "/ws", cookie=cookie, timeout=5)
    assert 'id="live-status"' in ws.recv()
    return ws


# Werkzeug's test server writes an HTTP response onto a socket it closed, which the client reads as a
# bad frame: either way the socket is closed for the client.
SOCKET_CLOSED = (websocket.WebSocketConnectionClosedException, websocket.WebSocketProtocolException,
                 ConnectionError)
# Longer than any event takes to arrive, shorter than the socket's periodic session recheck: a socket
# that closes within this wait was closed by the event, not by the recheck.
CLOSE_WAIT = 20.0


def wait_closed(ws: Any) -> list[str]:
    """Read until the server closes the socket (a generous bound, not a timing assertion); the frames read."""
    from webapp.live.channel import CHECK_EVERY

    assert CLOSE_WAIT < CHECK_EVERY
    frames: list[str] = []
    deadline = time.monotonic() + CLOSE_WAIT
    ws.settimeout(1)
    try:
        while time.monotonic() < deadline:
            try:
                frame = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if frame == "":
                return frames
            frames.append(frame)
    except SOCKET_CLOSED:
        return frames
    finally:
        ws.shutdown()
    raise AssertionError(f"the socket is still open {CLOSE_WAIT:.0f} s later; it sent {frames}")


def test_logout_closes_that_sessions_socket_at_once(live_server, make, db, ping_renderer):
    """The socket opened with the session closes (redirecting to sign-in); another session's socket stays."""
    from webapp.live.events import publish

    agent = make.user("ana", role="agent")
    leaving, staying = http_login(live_server, "ana"), http_login(live_server, "ana")
    leaving_ws, staying_ws = open_socket(live_server, leaving), open_socket(live_server, staying)
    try:
        answer = leaving.post(f"{live_server}/logout", data={"csrf_token": page_token(leaving, f"{live_server}/inbox")},
                              allow_redirects=False, timeout=10)
        assert answer.status_code == 302
        frames = wait_closed(leaving_ws)
        assert any('data-redirect="/login"' in f for f in frames)
        # The other session's socket got the same events in the same order, and still delivers.
        publish(f"user:{agent.id}", "test.ping", n=7)
        db.session.commit()
        staying_ws.settimeout(CLOSE_WAIT)
        seen = [staying_ws.recv()]
        while seen[-1] and "ping" not in seen[-1]:
            seen.append(staying_ws.recv())
        assert seen[-1] == '<div id="ping" hx-swap-oob="true">7 for ana</div>', seen
    finally:
        staying_ws.close()
        staying_ws.shutdown()


def test_password_change_closes_the_users_sockets_at_once(live_server, make, db):
    """An administrator's new password for a user ends the user's sessions and closes their sockets now."""
    make.user("root", role="admin")
    ana = make.user("ana", role="agent")
    agent = http_login(live_server, "ana")
    ws = open_socket(live_server, agent)
    admin = http_login(live_server, "root")
    url = f"{live_server}/admin/users/{ana.id}"
    answer = admin.post(url, data={"csrf_token": page_token(admin, url), "username": "ana", "role": "agent",
                                   "language": "es", "active": "y", "password": "otra-clave-nueva"},
                        allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    frames = wait_closed(ws)
    assert any('data-redirect="/login"' in f for f in frames)
    assert agent.get(f"{live_server}/inbox", allow_redirects=False, timeout=10).status_code == 302


def test_a_session_ends_after_its_lifetime_and_is_dropped(app, make, db, monkeypatch):
    """SESSION_LIFETIME_HOURS bounds a session (and the table): past it the cookie signs nobody in, and
    the next sign-in of anyone deletes the old row."""
    from datetime import timedelta

    from webapp.models import UserSession, base

    make.user("ana")
    bea = make.user("bea")
    client = app.test_client()
    login(client, "ana")
    assert client.get("/inbox").status_code == 200
    later = base.utcnow() + timedelta(hours=app.config["SESSION_LIFETIME_HOURS"], seconds=1)
    monkeypatch.setattr("webapp.services.accounts.utcnow", lambda: later)
    assert client.get("/inbox").headers["Location"].startswith("/login")
    other = app.test_client()
    login(other, "bea")
    assert other.get("/inbox").status_code == 200
    assert db.session.scalars(sa.select(UserSession.user_id)).all() == [bea.id]


def test_a_sockets_recheck_sees_its_session_end(app, make, db):
    """What a long-lived socket rechecks: its own session's row, not just the user."""
    from webapp.models import UserSession
    from webapp.services import accounts

    ana = make.user("ana")
    for _ in range(2):
        login(app.test_client(), "ana")
    first, second = db.session.scalars(sa.select(UserSession.id).order_by(UserSession.id)).all()
    version = ana.session_version
    assert accounts.session_lasts(ana.id, version, first) and accounts.session_lasts(ana.id, version, second)
    accounts.end_session(ana, first)
    db.session.commit()
    assert not accounts.session_lasts(ana.id, version, first)
    assert accounts.session_lasts(ana.id, version, second)
    assert not accounts.session_lasts(ana.id + 1, version, second)  # another user's id
    accounts.end_all_sessions(ana)
    db.session.commit()
    assert not accounts.session_lasts(ana.id, ana.session_version, second)
