"""Live events: published to Redis after the database commit, so every web process sees them.

A service calls `publish(topic, kind, **data)` while it works; the event waits on
the session and goes out only if the transaction commits. Nothing here depends
on which process or machine the browser's socket lives on.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "conversa:live:"
_PENDING = "conversa_live_events"


def channel_for(topic: str) -> str:
    return CHANNEL_PREFIX + topic


def make_event(topic: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "topic": topic, "kind": kind, "data": data, "ts": time.time()}


def publish(topic: str, kind: str, **data: Any) -> None:
    """Queue an event for after the current transaction commits."""
    session = db.session()
    if not session.in_transaction():
        session.begin()  # so that a rollback, too, has a transaction to end (and drops the event)
    session.info.setdefault(_PENDING, []).append(make_event(topic, kind, data))


def publish_now(topic: str, kind: str, **data: Any) -> bool:
    """Send an event that depends on no transaction (a draft being typed, a ping)."""
    return _send(current_app.extensions["conversa_redis"], [make_event(topic, kind, data)])


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


_installed = False


def install(app: Any) -> None:
    """Hook the session (once per process) so queued events go out after commit and vanish on rollback."""
    global _installed
    if _installed:
        return
    _installed = True

    @event.listens_for(Session, "after_commit")
    def _after_commit(session: Session) -> None:
        events = session.info.pop(_PENDING, None)
        if events:
            _send(current_app.extensions["conversa_redis"], events)

    @event.listens_for(Session, "after_soft_rollback")
    def _after_rollback(session: Session, previous_transaction: object) -> None:
        # Fires on every rollback() call, even with no transaction begun; a savepoint's rollback
        # leaves the outer transaction (and the events queued before it) in place.
        if not session.in_transaction():
            session.info.pop(_PENDING, None)
