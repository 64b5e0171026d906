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
        pipe.execute()
        return True
    except Exception as exc:  # Redis down: the page still works and polling catches up.
        log.warning("live events not published (%s): %s", len(events), exc)
        return False
