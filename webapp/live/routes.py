"""The one websocket endpoint. Pages name the topics they follow: /ws?topics=dialer:3,monitor:1"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, g, request
from flask_login import current_user

from ..extensions import sock
from ..i18n import select_locale
from . import bp
from .channel import Channel
from .events import changed_since
from .registry import allowed


def requested_topics(user: Any) -> set[str]:
    raw = request.args.get("topics", "")
    topics = {f"user:{user.id}"}
    for topic in filter(None, (t.strip() for t in raw.split(","))):
        if allowed(user, topic):
            topics.add(topic)
    return topics


@sock.route("/ws", bp=bp)
def live_socket(ws: Any) -> None:
    """One browser's live channel: its user's own topic and those the page asked for and may follow."""
    if not current_user.is_authenticated or not _same_origin():
        ws.close(reason=1008, message="sign in first")
        return
    user = current_user._get_current_object()
    hub = current_app.extensions["conversa_hub"]
    sub = hub.subscribe(requested_topics(user))
    g.live_subscriber = sub  # client handlers may follow more topics on this socket (hub.add_topics)
    since = request.args.get("since", type=float)  # the page's rendering: its regions are that fresh
    redis_client = current_app.extensions["conversa_redis"]
    Channel(ws, hub, sub, user, g.get("user_session_id"), select_locale(),
            fresh=lambda: not changed_since(redis_client, sub.topics, since)).serve()


def _same_origin() -> bool:
    """Cross-site websocket hijacking: a browser always sends Origin; it must be this site."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (tests, tools): the session cookie still has to be valid
    return urlsplit(origin).netloc == request.host
