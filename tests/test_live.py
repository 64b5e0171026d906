"""Live events: published after commit through Redis, fanned out by the hub, delivered over /ws."""
from __future__ import annotations

import json
import time

import pytest
import requests
import websocket

from tests.helpers import PASSWORD
from webapp.live.events import CHANNEL_PREFIX, publish


def _listen(app, pattern=CHANNEL_PREFIX + "*"):
    pubsub = app.extensions["conversa_redis"].pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe(pattern)
    pubsub.get_message(timeout=1)
    return pubsub


def _next(pubsub, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message and message["type"] == "pmessage":
            return json.loads(message["data"])
    return None


def test_event_goes_out_only_after_commit(app, db):
    pubsub = _listen(app)
    publish("dialer:1", "dialer.counts", dialer_id=1)
    assert _next(pubsub, 0.3) is None, "published before the commit"
    db.session.commit()
    event = _next(pubsub)
    assert event["topic"] == "dialer:1" and event["kind"] == "dialer.counts" and event["data"] == {"dialer_id": 1}
    pubsub.close()


def test_rolled_back_event_is_never_published(app, db):
    pubsub = _listen(app)
    publish("dialer:2", "dialer.counts", dialer_id=2)
    db.session.rollback()
    db.session.commit()
    assert _next(pubsub, 0.5) is None
    pubsub.close()


def test_hub_delivers_to_subscribers_of_the_topic_only(app, db):
    hub = app.extensions["conversa_hub"]
    mine = hub.subscribe({"dialer:7"})
    other = hub.subscribe({"dialer:8"})
    try:
        assert hub.connected.wait(5)
        publish("dialer:7", "dialer.counts", dialer_id=7)
        db.session.commit()
        event = mine.queue.get(timeout=3)
        assert event["data"] == {"dialer_id": 7}
        assert other.queue.empty()
    finally:
        hub.unsubscribe(mine)
        hub.unsubscribe(other)


def _session_cookie(live_server, username):
    s = requests.Session()
    page = s.get(f"{live_server}/login")
    import re

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    response = s.post(f"{live_server}/login", data={"username": username, "password": PASSWORD,
                                                    "csrf_token": token}, allow_redirects=False)
    assert response.status_code == 302
    cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
    s.close()
    return cookie


# After the server closes a socket, Werkzeug's test server writes an HTTP response onto it, which the
# client reads as a bad frame (gunicorn does not); either way the socket is closed for the client.
CLOSED = (websocket.WebSocketConnectionClosedException, websocket.WebSocketProtocolException)


def assert_closed(ws):
    """The server closed the socket: a close frame (recv gives '') or a dead connection."""
    try:
        for _ in range(3):
            assert ws.recv() == "", "the socket is still delivering frames"
    except CLOSED:
        pass
    finally:
        ws.shutdown()


def _ws_url(live_server, topics=""):
    return live_server.replace("http://", "ws://") + "/ws" + (f"?topics={topics}" if topics else "")


def test_socket_refuses_a_signed_out_visitor(live_server, ctx):
    ws = websocket.create_connection(_ws_url(live_server), timeout=5)
    assert_closed(ws)


def test_socket_delivers_rendered_events_for_the_user(live_server, make, db, ping_renderer):
    from webapp.models import User

    user = make.user("ana")
    cookie = _session_cookie(live_server, "ana")
    ws = websocket.create_connection(_ws_url(live_server), cookie=cookie, timeout=5)
    try:
        assert 'data-live="on"' in ws.recv()
        user = db.session.get(User, user.id)
        publish(f"user:{user.id}", "test.ping", n=41)
        publish(f"user:{user.id + 1}", "test.ping", n=99)  # someone else's
        db.session.commit()
        frame = ws.recv()
        assert frame == '<div id="ping" hx-swap-oob="true">41 for ana</div>'
        publish(f"user:{user.id}", "test.ping", n=42)
        db.session.commit()
        assert "42 for ana" in ws.recv()
    finally:
        ws.close()
        ws.shutdown()


def test_socket_ignores_topics_the_user_may_not_follow(live_server, make, db, ping_renderer):
    make.user("ana")
    cookie = _session_cookie(live_server, "ana")
    ws = websocket.create_connection(_ws_url(live_server, "user:999,nosuch:1"), cookie=cookie, timeout=5)
    try:
        ws.recv()
        publish("user:999", "test.ping", n=1)
        db.session.commit()
        ws.settimeout(0.8)
        with pytest.raises(websocket.WebSocketTimeoutException):
            ws.recv()
    finally:
        ws.close()
        ws.shutdown()


def test_socket_from_another_origin_is_refused(live_server, make):
    make.user("ana")
    cookie = _session_cookie(live_server, "ana")
    ws = websocket.create_connection(_ws_url(live_server), cookie=cookie, timeout=5,
                                     origin="https://evil.example")
    assert_closed(ws)


def test_session_ended_event_redirects_and_closes(live_server, make, db):
    user = make.user("ana")
    cookie = _session_cookie(live_server, "ana")
    ws = websocket.create_connection(_ws_url(live_server), cookie=cookie, timeout=5)
    ws.recv()
    publish(f"user:{user.id}", "session.ended")
    db.session.commit()
    assert 'data-redirect="/login"' in ws.recv()
    assert_closed(ws)


def test_every_app_the_factory_makes_has_the_socket_route(app):
    """The route is on the live blueprint, so a second app (another process's, a benchmark's) has it too."""
    from webapp import create_app

    other = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": app.config["REDIS_URL"]})
    for application in (app, other):
        rules = {r.rule: r for r in application.url_map.iter_rules()}
        assert rules["/ws"].websocket is True


def test_first_frame_says_fresh_only_when_nothing_happened_since_the_page(live_server, make, db, monkeypatch):
    """A page rendered after its topics' last event need not reload its live regions (slow links: four
    requests and the list redrawn right after load); one rendered before it, or not saying when, must."""
    import time

    from webapp.models import User

    monkeypatch.setattr("webapp.live.events.SINCE_MARGIN", 0.0)  # exact times (the live server is in-process)
    user = make.user("ana")
    cookie = _session_cookie(live_server, "ana")  # signing in publishes the agent's state

    def first_frame(query):
        ws = websocket.create_connection(_ws_url(live_server) + query, cookie=cookie, timeout=5)
        try:
            return ws.recv()
        finally:
            ws.close()
            ws.shutdown()

    rendered = time.time()
    assert "data-fresh" in first_frame(f"?since={rendered}")
    assert "data-fresh" not in first_frame("")  # the page did not say when it was rendered
    assert "data-fresh" not in first_frame(f"?since={rendered - 2 * 24 * 3600}")  # older than what is kept
    publish(f"user:{db.session.get(User, user.id).id}", "test.ping", n=1)
    db.session.commit()
    frame = first_frame(f"?since={rendered}")
    assert 'data-live="on"' in frame and "data-fresh" not in frame  # an event after the page: resync
    assert "data-fresh" in first_frame(f"?since={time.time()}")  # a page rendered after that event
