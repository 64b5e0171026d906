"""One browser's live channel: the loop behind /ws that turns hub events and the page's messages into
frames, and the rendering of an event (once per language, however many sockets show it).

The socket's thread sleeps until an event or a message from the page arrives (a reader thread turns
what the page sends into queue items), so a thousand idle sockets cost no CPU; it holds no database
connection between events.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from flask_babel import force_locale

from ..extensions import db
from ..services import accounts, agents, presence
from .hub import Hub, Subscriber
from .registry import CLIENT_HANDLERS, find_renderer

log = logging.getLogger(__name__)

_cache_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], tuple[threading.Event, list[list[str]]]] = OrderedDict()
_CACHE_SIZE = 512
HUB_WAIT = 5.0  # seconds a new socket waits for the hub's subscription before saying "off"
CHECK_EVERY = 30.0  # seconds between rechecks that the session is still valid (see _session_still_valid)
CLIENT = "_client"  # queue items the socket's reader thread adds: what the page sent
CLOSED = "_closed"
LOGOUT_FRAGMENT = '<div id="live-control" hx-swap-oob="true" data-redirect="{url}"></div>'


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


class Channel:
    """A signed-in user's socket, subscribed to its topics, for as long as the browser keeps it open."""

    def __init__(self, ws: Any, hub: Hub, sub: Subscriber, user: Any, session_id: int | None, lang: str,
                 fresh: Callable[[], bool] = lambda: False):
        self.ws, self.hub, self.sub, self.user, self.lang, self.fresh = ws, hub, sub, user, lang, fresh
        self.user_id, self.version, self.session_id = user.id, user.session_version, session_id
        # An agent's socket is one of their live pages (services/presence.py): it beats while open.
        self.page = f"ws:{uuid.uuid4().hex}" if user.is_agent else None
        self.beat_every = presence.beat_every() if self.page else CHECK_EVERY

    def serve(self) -> None:
        """Send frames until the page goes away or the session ends."""
        db.session.expunge_all()
        db.session.remove()  # the loop below may last hours: hold no connection
        threading.Thread(target=_read_client, args=(self.ws, self.sub), name=f"live-read-{self.user_id}",
                         daemon=True).start()
        last_check = last_beat = time.monotonic()
        self._beat()
        try:
            # The first socket of a process starts the hub: announce "on" once Redis has confirmed its
            # subscription, so an event published after this frame cannot be lost.
            # "fresh": none of the topics had an event since the page was rendered, so the page need not
            # reload its live regions (on a slow link, four requests and a list redrawn right after load).
            live = "on" if self.hub.connected.wait(HUB_WAIT) else "off"
            fresh = " data-fresh" if live == "on" and self.fresh() else ""
            self.ws.send(f'<div id="live-status" hx-swap-oob="true" data-live="{live}"{fresh}></div>')
            while True:
                try:
                    item = self.sub.queue.get(timeout=min(CHECK_EVERY, self.beat_every))
                except queue.Empty:
                    item = None
                if item is not None and not self._deliver(item):
                    return
                if time.monotonic() - last_beat >= self.beat_every:
                    last_beat = time.monotonic()
                    self._beat()
                if time.monotonic() - last_check > CHECK_EVERY:
                    last_check = time.monotonic()
                    if not _session_still_valid(self.user_id, self.version, self.session_id):
                        _end_session(self.ws)
                        return
        except Exception as exc:  # the client went away mid-send
            if self.ws.connected:
                log.warning("live socket for user %s ended: %s", self.user_id, exc)
        finally:
            self.hub.unsubscribe(self.sub)
            self._beat()  # the page closed: its grace starts now

    def _beat(self) -> None:
        if self.page is None:
            return
        try:
            agents.page_alive(self.user, self.page)
        finally:
            db.session.remove()

    def _deliver(self, item: dict[str, Any]) -> bool:
        """Act on one queue item; False when the socket is done."""
        kind = item["kind"]
        if kind == CLOSED:
            return False
        if kind == CLIENT:
            _handle_client_message(self.user, item["data"])
        elif kind == "session.ended":
            # Without a session id every session of the user ended; with one, that one only.
            if item["data"].get("session_id") in (None, self.session_id):
                _end_session(self.ws)
                return False
        else:
            for frame in render_event(item, self.user, self.lang):
                self.ws.send(frame)
        return True


def _read_client(ws: Any, sub: Subscriber) -> None:
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
