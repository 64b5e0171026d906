"""The one websocket endpoint. Pages name the topics they follow: /ws?topics=dialer:3,monitor:1"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from typing import Any

from flask import current_app, g, request
from flask_babel import force_locale
from flask_login import current_user

from ..extensions import db, sock
from ..services import accounts
from . import bp
from .registry import CLIENT_HANDLERS, allowed, find_renderer

log = logging.getLogger(__name__)

_cache_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], tuple[threading.Event, list[list[str]]]] = OrderedDict()
_CACHE_SIZE = 512
HUB_WAIT = 5.0  # seconds a new socket waits for the hub's subscription before saying "off"
CHECK_EVERY = 30.0  # seconds between rechecks that the session is still valid (see _session_still_valid)
CLIENT = "_client"  # queue items the socket's reader thread adds: what the page sent
CLOSED = "_closed"


def render_event(event: dict[str, Any], user: Any, lang: str) -> list[str]:
    """Event → the HTML frames to send (none when the event shows nothing to this viewer).
    Unless the renderer is per viewer, the first socket thread to ask renders and every other
    socket of the same language waits for that one result (an event reaching 200 supervisors at
    once is rendered once, not 200 times in parallel)."""
    entry = find_renderer(event)
    if entry is None:
        return []
    fn, per_viewer = entry
    if per_viewer:
        return _render(fn, event, user, lang)
    key = (event["id"], lang)  # an event id names one topic, so one rendering per language
    with _cache_lock:
        slot = _cache.get(key)
        owner = slot is None
        if owner:
            slot = _cache[key] = (threading.Event(), [])
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    done, result = slot
    if not owner:
        done.wait(10)
        return result[0] if result else []
    try:
        result.append(_render(fn, event, user, lang))
    finally:
        done.set()
    return result[0]


def _render(fn: Any, event: dict[str, Any], user: Any, lang: str) -> list[str]:
    try:
        with force_locale(lang):
            html = fn(event, user)
        return [f for f in ([html] if isinstance(html, str) else html or []) if f]
    finally:
        db.session.remove()  # never hold a connection between events


def requested_topics(user: Any) -> set[str]:
    raw = request.args.get("topics", "")
    topics = {f"user:{user.id}"}
    for topic in filter(None, (t.strip() for t in raw.split(","))):
        if allowed(user, topic):
            topics.add(topic)
    return topics


LOGOUT_FRAGMENT = '<div id="live-control" hx-swap-oob="true" data-redirect="{url}"></div>'


@sock.route("/ws", bp=bp)
def live_socket(ws: Any) -> None:
    """One browser's live channel. The thread sleeps until an event or a message from the page
    arrives (a reader thread turns what the page sends into queue items), so a thousand idle
    sockets cost no CPU."""
    if not current_user.is_authenticated or not _same_origin():
        ws.close(reason=1008, message="sign in first")
        return
    user = current_user._get_current_object()
    user_id, version, session_id = user.id, user.session_version, g.get("user_session_id")
    lang = _current_lang()
    hub = current_app.extensions["conversa_hub"]
    sub = hub.subscribe(requested_topics(user))
    g.live_subscriber = sub  # client handlers may follow more topics on this socket (hub.add_topics)
    db.session.expunge_all()
    db.session.remove()  # the loop below may last hours: hold no connection
    threading.Thread(target=_read_client, args=(ws, sub), name=f"live-read-{user_id}", daemon=True).start()
    last_check = time.monotonic()
    try:
        # The first socket of a process starts the hub: announce "on" once Redis has confirmed its
        # subscription, so an event published after this frame cannot be lost.
        live = "on" if hub.connected.wait(HUB_WAIT) else "off"
        ws.send(f'<div id="live-status" hx-swap-oob="true" data-live="{live}"></div>')
        while True:
            try:
                item = sub.queue.get(timeout=CHECK_EVERY)
            except queue.Empty:
                item = None
            if item is not None:
                kind = item["kind"]
                if kind == CLOSED:
                    return
                if kind == CLIENT:
                    _handle_client_message(user, item["data"])
                elif kind == "session.ended":
                    # Without a session id every session of the user ended; with one, that one only.
                    if item["data"].get("session_id") in (None, session_id):
                        _end_session(ws)
                        return
                else:
                    for frame in render_event(item, user, lang):
                        ws.send(frame)
            if time.monotonic() - last_check > CHECK_EVERY:
                last_check = time.monotonic()
                if not _session_still_valid(user_id, version, session_id):
                    _end_session(ws)
                    return
    except Exception as exc:  # the client went away mid-send
        if ws.connected:
            log.warning("live socket for user %s ended: %s", user_id, exc)
    finally:
        hub.unsubscribe(sub)


def _read_client(ws: Any, sub: Any) -> None:
    """Blocks on the socket; hands what the page sends (and the close) to the socket's thread."""
    try:
        while True:
            message = ws.receive()
            if message is None:
                break
            sub.deliver({"kind": CLIENT, "data": message})
    except Exception:  # noqa: BLE001 - closed or broken: either way the socket is done
        pass
    sub.deliver({"kind": CLOSED})


def _session_still_valid(user_id: int, version: int, session_id: int | None) -> bool:
    """The recheck behind the `session.ended` event (which closes the socket at once), for an event
    lost while Redis was away, and for a session that outlived SESSION_LIFETIME_HOURS."""
    try:
        return accounts.session_lasts(user_id, version, session_id)
    finally:
        db.session.remove()


def _end_session(ws: Any) -> None:
    ws.send(LOGOUT_FRAGMENT.format(url="/login"))
    ws.close(reason=1000, message="session ended")


def _same_origin() -> bool:
    """Cross-site websocket hijacking: a browser always sends Origin; it must be this site."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (tests, tools): the session cookie still has to be valid
    from urllib.parse import urlsplit

    return urlsplit(origin).netloc == request.host


def _current_lang() -> str:
    from ..i18n import select_locale

    return select_locale()


def _handle_client_message(user: Any, message: str | bytes) -> None:
    try:
        payload = json.loads(message)
    except ValueError:
        return
    if not isinstance(payload, dict):
        return
    handler = CLIENT_HANDLERS.get(str(payload.get("type", "")))
    if handler is None:
        return
    try:
        handler(user, payload)
    finally:
        db.session.remove()
