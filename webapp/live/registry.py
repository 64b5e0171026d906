"""What areas plug into the socket: topic checks, event renderers and client-message handlers.

An area registers, at import time:
- `topic_check("dialer")(fn)`: fn(user, "3") -> bool, may this user follow topic "dialer:3";
- `renderer("dialer", "dialer.counts")(fn)`: fn(event, user) -> HTML (out-of-band fragments) or None,
  for events of that kind published on topics "dialer:…" (the same kind may render differently
  on another topic: an interaction change is a row on the monitor and an item in the inbox).
  It may return a list of HTML frames instead, each sent as a message of its own: the browser parses
  a frame whose first element is a table row (`<tr>`) in table context, and drops a `<tr>` that
  follows a `<div>` or an `<article>` in the same frame;
- `client_handler("draft")(fn)`: fn(user, payload) for JSON a page sends up the socket.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

TopicCheck = Callable[[Any, str], bool]
Rendered = "str | list[str] | None"
Renderer = Callable[[dict[str, Any], Any], Rendered]
ClientHandler = Callable[[Any, dict[str, Any]], None]

TOPIC_CHECKS: dict[str, TopicCheck] = {}
RENDERERS: dict[tuple[str, str], tuple[Renderer, bool]] = {}
CLIENT_HANDLERS: dict[str, ClientHandler] = {}


def topic_check(prefix: str) -> Callable[[TopicCheck], TopicCheck]:
    def deco(fn: TopicCheck) -> TopicCheck:
        TOPIC_CHECKS[prefix] = fn
        return fn
    return deco


def renderer(topic_prefix: str, kind: str, *, per_viewer: bool = False) -> Callable[[Renderer], Renderer]:
    """Register how an event kind on a topic becomes HTML. Unless per_viewer, one rendering serves
    every socket of the same language (an event to 200 supervisors renders once per language)."""
    def deco(fn: Renderer) -> Renderer:
        RENDERERS[(topic_prefix, kind)] = (fn, per_viewer)
        return fn
    return deco


def find_renderer(event: dict[str, Any]) -> tuple[Renderer, bool] | None:
    prefix = str(event.get("topic", "")).partition(":")[0]
    return RENDERERS.get((prefix, str(event.get("kind", ""))))


def client_handler(kind: str) -> Callable[[ClientHandler], ClientHandler]:
    def deco(fn: ClientHandler) -> ClientHandler:
        CLIENT_HANDLERS[kind] = fn
        return fn
    return deco


def allowed(user: Any, topic: str) -> bool:
    prefix, _, rest = topic.partition(":")
    if prefix == "user":
        return rest == str(user.id)
    check = TOPIC_CHECKS.get(prefix)
    return bool(check and check(user, rest))
