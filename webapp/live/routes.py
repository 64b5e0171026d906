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
from ..models import User
from . import bp
from .registry import CLIENT_HANDLERS, allowed, find_renderer

log = logging.getLogger(__name__)

_cache_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], str | None] = OrderedDict()
_CACHE_SIZE = 512
HUB_WAIT = 5.0  # seconds a new socket waits for the hub's subscription before saying "off"


def render_event(event: dict[str, Any], user: Any, lang: str) -> str | None:
    entry = find_renderer(event)
    if entry is None:
        return None
    fn, per_viewer = entry
    key = (event["id"], lang)  # an event id names one topic, so one rendering per language
    if not per_viewer:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
    try:
        with force_locale(lang):
            html = fn(event, user)
    finally:
        db.session.remove()  # never hold a connection between events
    if not per_viewer:
        with _cache_lock:
            _cache[key] = html
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return html


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
    if not current_user.is_authenticated or not _same_origin():
        ws.close(reason=1008, message="sign in first")
        return
    user = current_user._get_current_object()
    user_id, version = user.id, user.session_version
    lang = _current_lang()
    topics = requested_topics(user)
    hub = current_app.extensions["conversa_hub"]
    sub = hub.subscribe(topics)
    g.live_subscriber = sub  # client handlers may follow more topics on this socket (hub.add_topics)
    db.session.expunge_all()
    db.session.remove()  # the loop below may last hours: hold no connection
    last_check = time.monotonic()
    try:
        # The first socket of a process starts the hub: announce "on" once Redis has confirmed its
        # subscription, so an event published after this frame cannot be lost.
        live = "on" if hub.connected.wait(HUB_WAIT) else "off"
        ws.send(f'<div id="live-status" hx-swap-oob="true" data-live="{live}"></div>')
        while True:
            try:
                first = sub.queue.get(timeout=0.25)
            except queue.Empty:
                first = None
            batch = [first] if first else []
            while first is not None and len(batch) < 50:
                try:
                    batch.append(sub.queue.get_nowait())
                except queue.Empty:
                    break
            for event in batch:
                if event["kind"] == "session.ended":
                    ws.send(LOGOUT_FRAGMENT.format(url="/login"))
                    ws.close(reason=1000, message="session ended")
                    return
                html = render_event(event, user, lang)
                if html:
                    ws.send(html)
            message = ws.receive(timeout=0)
            if message:
                _handle_client_message(user, message)
            if not ws.connected:
                return
            if time.monotonic() - last_check > 30:
                last_check = time.monotonic()
                fresh = db.session.get(User, user_id)
                still_valid = fresh is not None and fresh.active and fresh.session_version == version
                db.session.remove()
                if not still_valid:
                    ws.send(LOGOUT_FRAGMENT.format(url="/login"))
                    ws.close(reason=1000, message="session ended")
                    return
    except Exception as exc:  # the client went away mid-send
        if ws.connected:
            log.warning("live socket for user %s ended: %s", user_id, exc)
    finally:
        hub.unsubscribe(sub)


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
