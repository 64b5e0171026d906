"""The voice platform's API: it tells Conversa when an agent starts and ends a call (C1.1)."""
from __future__ import annotations

import hmac
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, jsonify, request

from ..extensions import csrf, db
from ..models import User
from ..services import agents, routing
from ..services.agent_states import Cause
from . import bp

csrf.exempt(bp)


def _authorised() -> bool:
    token = current_app.config.get("VOICE_API_TOKEN") or ""
    given = request.headers.get("Authorization", "")
    if not token or not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(given[7:].strip().encode(), token.encode())


@bp.post("/api/voice/agents/<username>/call")
def agent_call(username: str) -> Any:
    """{"on_call": true|false}; answers the state and whether an `incall` chat holds the agent."""
    if not _authorised():
        return jsonify(error="unauthorised"), 401, {"WWW-Authenticate": "Bearer"}
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("on_call"), bool):
        return jsonify(error='send JSON {"on_call": true|false}'), 400
    agent = db.session.scalar(sa.select(User).where(User.username == username, User.role == "agent"))
    if agent is None:
        abort(404)
    agents.set_on_call(agent, payload["on_call"], Cause.VOICE)
    exclusive = agent.id in routing.exclusive_agents([agent.id])
    db.session.commit()
    return jsonify(username=agent.username, on_call=agent.on_call, text_exclusive=exclusive)
