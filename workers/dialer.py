"""D3 jobs: `run_dialer` drains one dialer from one slot; the clock keeps every active dialer's slots busy.

One job per (dialer, slot) at a time: the job holds `conversa:dialer:<id>:slot:<slot>` in Redis
(SET NX EX, renewed as it goes) and the clock enqueues with job id `dialer-<id>-slot-<slot>`, skipping
slots that are held or already queued. Extra slots add throughput; pacing ("one every N ms", the
provider's messages per second) is reserved in Redis, so it holds however many slots run. While a
provider's rate limit holds everyone back (a 429's Retry-After and backoff) the clock starts no job for
its dialers; it starts them again when the wait is about over.
"""
from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa
from flask import current_app

from webapp import queues
from webapp.extensions import db
from webapp.models import Dialer
from webapp.services import time as clock
from webapp.services.dialer import claim, gateway, reconcile, sending
from webapp.services.dialer.delivery import sandbox_delivery_reports
from webapp.services.schedules import in_schedule

from .appctx import with_app
from .periodic import periodic

log = logging.getLogger(__name__)

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def slot_key(dialer_id: int, slot: int) -> str:
    return f"conversa:dialer:{dialer_id}:slot:{slot}"


def job_id(dialer_id: int, slot: int) -> str:
    return f"dialer-{dialer_id}-slot-{slot}"


def _budget() -> float:
    return float(current_app.config["DIALER_JOB_SECONDS"])


def _slot_ttl() -> int:
    # Outlives the longest silence of a live job (one in-flight window), expires soon after a crash.
    return int(gateway.inflight_seconds() + gateway.configured_lease()) + 1


@with_app
def run_dialer(dialer_id: int, slot: int) -> dict[str, Any]:
    """Claim and send for one dialer until it has nothing to send, leaves its schedule, is stopped or
    disabled, or the time budget passes; one job per (dialer, slot) runs at a time."""
    redis = current_app.extensions["conversa_redis"]
    key = slot_key(dialer_id, slot)
    owner = f"{socket.gethostname()[:20]}:{os.getpid()}:{slot}:{uuid.uuid4().hex[:8]}"
    ttl = _slot_ttl()
    if not redis.set(key, owner, nx=True, ex=ttl):
        return {"stopped": "slot_busy"}

    def keep_alive() -> bool:
        return bool(redis.eval(_RENEW, 1, key, owner, ttl))

    try:
        report = sending.drain(dialer_id, owner, budget_seconds=_budget(), keep_alive=keep_alive)
    finally:
        try:
            redis.eval(_RELEASE, 1, key, owner)
        except Exception as exc:  # noqa: BLE001 - Redis gone: the key expires by itself
            log.warning("dialer %s slot %s not released: %s", dialer_id, slot, exc)
    (log.info if report.claimed else log.debug)("dialer %s slot %s: %s", dialer_id, slot, report)
    return asdict(report)


def enqueue_slots(dialer_id: int) -> list[int]:
    """Enqueue run_dialer for each free slot of the dialer; returns the slots enqueued."""
    queue = queues.queue_for(run_dialer)
    redis = queue.connection
    enqueued = []
    timeout = int(_budget() + gateway.inflight_seconds() + 60)
    for slot in range(int(current_app.config.get("DIALER_WORKERS_PER_DIALER", 2))):
        if redis.exists(slot_key(dialer_id, slot)):
            continue  # a job holds it
        existing = queue.fetch_job(job_id(dialer_id, slot))
        if existing is not None and existing.get_status(refresh=False) in ("queued", "scheduled", "deferred"):
            continue  # already waiting for a worker
        queue.enqueue(run_dialer, dialer_id, slot, job_id=job_id(dialer_id, slot), job_timeout=timeout,
                      result_ttl=60, failure_ttl=24 * 3600, description=f"dialer {dialer_id} slot {slot}")
        enqueued.append(slot)
    return enqueued


HELD_BACK_SECONDS = 1.0  # a rate limit's wait longer than the clock's tick: no job yet


@periodic("dialers", 1.0)
@with_app
def schedule_dialers() -> dict[int, list[int]]:
    """Every second: each dialer that is enabled, running, in schedule, has messages to send and whose
    provider is not holding us back (rate limit) gets its slots' jobs."""
    out: dict[int, list[int]] = {}
    dialers = db.session.scalars(sa.select(Dialer).where(Dialer.enabled.is_(True), Dialer.running.is_(True)))
    moment = clock.center_now()
    ready = [(d.id, d.provider_id) for d in dialers if in_schedule(d.schedule, moment)]
    held: dict[int, bool] = {}
    for dialer_id, provider_id in ready:
        if provider_id not in held:
            held[provider_id] = gateway.provider_hold(provider_id) > HELD_BACK_SECONDS
        if not held[provider_id] and claim.has_claimable(dialer_id):
            out[dialer_id] = enqueue_slots(dialer_id)
    db.session.commit()
    return out


@periodic("spool-reconcile", 5.0)
@with_app
def reconcile_spool() -> dict[str, int]:
    """Every five seconds: expired claims back to the pool, expired in-flight messages looked up."""
    return reconcile.reconcile_expired()


@periodic("sandbox-delivery", 2.0)
@with_app
def sandbox_delivery() -> int:
    """Every two seconds: the sandbox's simulated handsets report the dialers' sends delivered."""
    moved = sandbox_delivery_reports()
    db.session.commit()
    return moved
