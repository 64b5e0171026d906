"""Issue 16: the RQ queues, the one place that says which queue a job kind goes to, and how deep each is.

Four queues, so that kinds of work never wait behind each other:
- routing: a routing pass (`workers.inbound.route`);
- inbound: conversation traffic — storing what customers send, delivery receipts, agents' replies;
- dialer: the dialers' send jobs;
- housekeeping: the rest (media downloads, template syncs, bulk loads, demo traffic): RQ_QUEUE's own name,
  so jobs queued before this split, and any kind not listed here, still run.

A worker serves the queues `python -m workers --queues ...` (or WORKER_QUEUES) names, always in PRIORITY
order: RQ takes the first job of the first queue that has one, so a worker serving all of them routes and
stores before it sends or tidies up. `depths()` is what the monitor and /metrics show.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import redis
from flask import Flask, current_app
from rq import Queue

ROUTING, INBOUND, DIALER, HOUSEKEEPING = "routing", "inbound", "dialer", "housekeeping"
PRIORITY = (ROUTING, INBOUND, DIALER, HOUSEKEEPING)
ALL = "all"

_KIND_OF_JOB = {
    "workers.inbound.route": ROUTING,
    "workers.inbound.process_inbound": INBOUND,
    "workers.inbound.process_status": INBOUND,
    "workers.inbound.send_message": INBOUND,
    "workers.inbound.sandbox_reply": INBOUND,
    "workers.inbound.sandbox_delivered": INBOUND,
    "workers.inbound.sandbox_read": INBOUND,
    "workers.whatsapp.mark_read": INBOUND,
    "workers.dialer.run_dialer": DIALER,
}


def kind_of(func: str | Callable[..., Any]) -> str:
    """The queue a job goes to: by its function's dotted name; housekeeping when not listed."""
    name = func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"
    return _KIND_OF_JOB.get(name, HOUSEKEEPING)


def queue_name(base: str, kind: str) -> str:
    return base if kind == HOUSEKEEPING else f"{base}-{kind}"


def build(app: Flask, client: redis.Redis) -> dict[str, Queue]:
    """One Queue per kind on the app's client (webapp/__init__.py keeps them in app.extensions)."""
    return {kind: Queue(queue_name(app.config["RQ_QUEUE"], kind), connection=client) for kind in PRIORITY}


def queue(kind: str) -> Queue:
    return current_app.extensions["conversa_queues"][kind]


def queue_for(func: str | Callable[..., Any]) -> Queue:
    """The queue a job of `func` is enqueued on (and fetched from: RQ looks a job up on its own queue)."""
    return queue(kind_of(func))


def enqueue(func: str | Callable[..., Any], *args: Any, **options: Any) -> Any:
    """Enqueue on the job kind's queue (RQ's Queue.enqueue options)."""
    return queue_for(func).enqueue(func, *args, **options)


def parse(value: str | None) -> list[str]:
    """The kinds a worker serves from "routing,inbound" (or "all", or empty: all), in PRIORITY order."""
    names = [n.strip().lower() for n in (value or ALL).split(",") if n.strip()]
    if not names or ALL in names:
        return list(PRIORITY)
    unknown = [n for n in names if n not in PRIORITY]
    if unknown:
        raise ValueError(f"unknown queue {', '.join(unknown)!s} (choose from {', '.join(PRIORITY)} or {ALL})")
    return [kind for kind in PRIORITY if kind in names]


@dataclass(frozen=True)
class Depth:
    kind: str
    jobs: int
    oldest_seconds: float | None  # how long the job at the head of the queue has waited; None when empty


def depths(now: float | None = None) -> list[Depth]:
    """Each queue's waiting jobs and the age of its oldest one, in PRIORITY order (raises when Redis is away)."""
    now = time.time() if now is None else now
    out = []
    for kind in PRIORITY:
        q = queue(kind)
        jobs = q.count
        oldest = None
        if jobs:
            head = q.get_job_ids(0, 1)
            job = q.fetch_job(head[0]) if head else None
            if job is not None and job.enqueued_at is not None:
                at = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=UTC)
                oldest = max(0.0, now - at.timestamp())
        out.append(Depth(kind, jobs, oldest))
    return out


@dataclass(frozen=True)
class Backlog:
    queues: list[Depth]
    behind: bool  # inbound or routing jobs have waited longer than BACKLOG_ALERT_SECONDS: inbound outruns routing
    waiting: int  # jobs waiting in those two queues
    oldest_seconds: float | None  # the oldest of them


def backlog() -> Backlog | None:
    """What the supervisor's monitor shows about the queues; None when Redis does not answer."""
    try:
        found = depths()
    except Exception:  # noqa: BLE001 - Redis away: the monitor says the figures are missing
        return None
    front = [d for d in found if d.kind in (ROUTING, INBOUND)]
    ages = [d.oldest_seconds for d in front if d.oldest_seconds is not None]
    oldest = max(ages) if ages else None
    limit = float(current_app.config.get("BACKLOG_ALERT_SECONDS", 5))
    return Backlog(found, oldest is not None and oldest >= limit, sum(d.jobs for d in front), oldest)
