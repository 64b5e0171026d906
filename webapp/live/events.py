"""Live events: published to Redis after the database commit, so every web process sees them.

A service calls `publish(topic, kind, **data)` while it works; the event waits on
the session and goes out only if the transaction commits (`webapp.after_commit`
holds the rule for rollbacks and savepoints, shared with queued jobs). Nothing here depends
on which process or machine the browser's socket lives on.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from flask import current_app

from .. import after_commit

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "conversa:live:"
# When each topic last had an event (epoch seconds of the send, after the commit): a socket opened for a
# page rendered after that, less SINCE_MARGIN, missed nothing and spares the page its resync (`changed_since`).
LAST_PREFIX = "conversa:live-last:"
LAST_TTL = 24 * 3600
SINCE_MARGIN = 5.0  # the page's queries ran before its rendering's clock was read; clocks of two machines differ


def channel_for(topic: str) -> str:
    return CHANNEL_PREFIX + topic


def make_event(topic: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "topic": topic, "kind": kind, "data": data, "ts": time.time()}


def publish(topic: str, kind: str, **data: Any) -> None:
    """Queue an event for after the current transaction commits (the rule: `webapp.after_commit`)."""
    after_commit.defer(after_commit.LIVE, make_event(topic, kind, data))


def publish_now(topic: str, kind: str, **data: Any) -> bool:
    """Send an event that depends on no transaction (a draft being typed, a ping)."""
    return _send(current_app.extensions["conversa_redis"], [make_event(topic, kind, data)])


@after_commit.sender(after_commit.LIVE)
def _send_committed(events: list[dict[str, Any]]) -> None:
    _send(current_app.extensions["conversa_redis"], events)


def _send(redis_client: Any, events: list[dict[str, Any]]) -> bool:
    try:
        pipe = redis_client.pipeline(transaction=False)
        for ev in events:
            pipe.publish(channel_for(ev["topic"]), json.dumps(ev, default=str))
        sent_at = time.time()
        for topic in {ev["topic"] for ev in events}:
            pipe.set(LAST_PREFIX + topic, sent_at, ex=LAST_TTL)
        pipe.execute()
        return True
    except Exception as exc:  # Redis down: the page still works and polling catches up.
        log.warning("live events not published (%s): %s", len(events), exc)
        return False


def changed_since(redis_client: Any, topics: set[str], since: float | None) -> bool:
    """Whether any of `topics` may have had an event after `since` (a page's rendering, epoch seconds):
    True when unknown (no `since`, older than what is kept, Redis unreadable)."""
    if since is None or since - SINCE_MARGIN < time.time() - LAST_TTL:
        return True
    try:
        stamps = redis_client.mget([LAST_PREFIX + t for t in sorted(topics)])
    except Exception:  # noqa: BLE001 - unknown: the page resyncs
        return True
    return any(s is not None and float(s) > since - SINCE_MARGIN for s in stamps)
