"""GET /metrics: Prometheus text for the operators (spool, interactions, agents, job queues and their backlog).

Open to a signed-in admin, or to a scraper that sends `Authorization: Bearer $METRICS_TOKEN`.
"""
from __future__ import annotations

import hmac
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, abort, current_app, request
from flask_login import current_user

from . import queues
from .extensions import db
from .models import Interaction, SpoolMessage, SpoolState, User


def _authorized() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    return bool(current_user.is_authenticated and current_user.is_admin)


def collect() -> list[str]:
    lines = ["# HELP conversa_spool_messages Outbound spool messages by state.",
             "# TYPE conversa_spool_messages gauge"]
    for state, count in db.session.execute(
            sa.select(SpoolMessage.state, sa.func.count()).group_by(SpoolMessage.state)):
        lines.append(f'conversa_spool_messages{{state="{SpoolState.NAMES.get(state, state)}"}} {count}')
    lines += ["# HELP conversa_interactions Interactions by status.", "# TYPE conversa_interactions gauge"]
    for status, count in db.session.execute(
            sa.select(Interaction.status, sa.func.count()).group_by(Interaction.status)):
        lines.append(f'conversa_interactions{{status="{status}"}} {count}')
    lines += ["# HELP conversa_agents Agents by state.", "# TYPE conversa_agents gauge"]
    for state, count in db.session.execute(
            sa.select(User.state, sa.func.count()).where(User.role == "agent").group_by(User.state)):
        lines.append(f'conversa_agents{{state="{state}"}} {count}')
    return lines + _queue_lines()


def _queue_lines() -> list[str]:
    """Each RQ queue's waiting jobs and how long its oldest has waited (webapp/queues.py): back-pressure."""
    try:
        found = [(d.kind, d.jobs, d.oldest_seconds or 0.0) for d in queues.depths()]
    except Exception:  # noqa: BLE001 - Redis down: say so rather than fail the scrape
        found = [(kind, "NaN", "NaN") for kind in queues.PRIORITY]
    lines = ["# HELP conversa_queue_jobs Jobs waiting in each RQ queue.", "# TYPE conversa_queue_jobs gauge"]
    lines += [f'conversa_queue_jobs{{queue="{kind}"}} {jobs}' for kind, jobs, _ in found]
    lines += ["# HELP conversa_queue_oldest_seconds How long the oldest waiting job of each queue has waited.",
              "# TYPE conversa_queue_oldest_seconds gauge"]
    lines += [f'conversa_queue_oldest_seconds{{queue="{kind}"}} {age if isinstance(age, str) else round(age, 3)}'
              for kind, _, age in found]
    return lines


def init_app(app: Flask) -> None:
    @app.get("/metrics")
    def metrics() -> Any:
        if not _authorized():
            abort(404 if not current_user.is_authenticated else 403)
        return Response("\n".join(collect()) + "\n", mimetype="text/plain; version=0.0.4")
