"""The hot path: `drain` claims and sends one dialer's spool until it is done, stopped, or out of time.

Each group is marked in flight in one commit, sent, and its results recorded in one commit (the
package docstring says why nothing goes out twice). Spool destinations are E.164 already: the
do-not-contact check does not normalise them again.
"""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...live.events import publish_now
from ...models import Dialer, ScheduleEntry, SpoolMessage, SpoolState
from ...providers.base import OutboundMessage, Outcome, SendResult
from .. import dnc
from .. import time as clock
from ..schedules import in_schedule
from .claim import claim_rows, release_claims
from .counts import note_sent, publish_counts
from .gateway import make_adapter, redis, retry_delay, sit_out
from .pipeline import send_windowed
from .sender import Sender

log = logging.getLogger(__name__)

spool = SpoolMessage.__table__
PROBE = 3  # requests sent one at a time before deciding whether to overlap them (Sender.tune)


@dataclass
class DrainReport:
    """What one `drain` did, and why it stopped."""

    claimed: int = 0
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    retry: int = 0
    rate_limited: int = 0  # answers "too many requests": back to the pool, no attempt spent
    review: int = 0
    skipped: int = 0
    stopped: str = ""
    by_outcome: dict[str, int] = field(default_factory=dict)
    concurrency: int = 1  # the most requests the job had in flight at once


def _dialer_can_send(dialer_id: int, schedule: list[ScheduleEntry] | None = None) -> str:
    """'' when the dialer may send now, else the reason it may not. `schedule`: entries already loaded."""
    dialers = Dialer.__table__
    row = db.session.execute(sa.select(dialers.c.enabled, dialers.c.running).where(dialers.c.id == dialer_id)).first()
    if row is None:
        return "deleted"
    if not row.enabled:
        return "disabled"
    if not row.running:
        return "stopped"
    if schedule is None:
        schedule = _schedule(dialer_id)
    if not in_schedule(schedule, clock.center_now()):
        return "out_of_schedule"
    return ""


def _schedule(dialer_id: int) -> list[ScheduleEntry]:
    entries = list(db.session.scalars(sa.select(ScheduleEntry).where(ScheduleEntry.dialer_id == dialer_id)))
    for entry in entries:
        db.session.expunge(entry)
    return entries


def _mark_group(sender: Sender, rows: list[Any], report: DrainReport,
                renew: bool = True) -> tuple[list[Any], datetime]:
    """DNC check, then mark the rest in flight; one commit. Also renews the owner's other claims."""
    now = clock.now()
    ids = [r.id for r in rows]
    blocked_ids: list[int] = []
    if sender.dncr:
        blocked = dnc.listed_among({r.destination for r in rows}, dialer_id=sender.dialer_id)
        blocked_ids = [r.id for r in rows if r.destination in blocked]
    if blocked_ids:
        result = db.session.execute(spool.update().where(
            spool.c.id.in_(blocked_ids), spool.c.lease_owner == sender.owner, spool.c.state == SpoolState.TO_PROCESS,
            spool.c.in_flight_at.is_(None)).values(state=SpoolState.BLOCKED, lease_owner=None, lease_until=None,
                                               last_error="do-not-contact"))
        report.blocked += result.rowcount or 0
    todo = [i for i in ids if i not in set(blocked_ids)]
    marked: set[int] = set()
    if todo:
        marked = set(db.session.scalars(spool.update().where(
            spool.c.id.in_(todo), spool.c.lease_owner == sender.owner, spool.c.state == SpoolState.TO_PROCESS,
            spool.c.in_flight_at.is_(None)).values(
                in_flight_at=now, attempts=spool.c.attempts + 1,
                lease_until=now + timedelta(seconds=sender.inflight)).returning(spool.c.id)))
    if renew:  # the rest of this worker's claims, so a long paced batch keeps them
        db.session.execute(spool.update().where(
            spool.c.lease_owner == sender.owner, spool.c.state == SpoolState.TO_PROCESS, spool.c.in_flight_at.is_(None))
            .values(lease_until=now + timedelta(seconds=sender.lease)))
    db.session.commit()
    report.skipped += len(todo) - len(marked)
    return [r for r in rows if r.id in marked], now


def _result_values(sender: Sender, row: Any, port: int | None, result: SendResult, marked_at: datetime,
                   now: datetime, report: DrainReport, wait: float | None = None) -> dict[str, Any]:
    """The row's new columns for one send result (bind names prefixed b_). `wait`: what observe() said a
    rate-limited message waits."""
    attempts = row.attempts + 1
    v: dict[str, Any] = {"b_id": row.id, "b_state": SpoolState.TO_PROCESS, "b_pmid": None, "b_sent_at": None,
                         "b_error": None, "b_lease_owner": None, "b_lease_until": None, "b_in_flight": None,
                         "b_port": port, "b_attempts": attempts}
    error = f"{result.error_code or ''} {result.error_message or ''}".strip()[:500] or None
    report.by_outcome[result.outcome.value] = report.by_outcome.get(result.outcome.value, 0) + 1
    if result.outcome is Outcome.SENT:
        v.update(b_state=SpoolState.SENT, b_pmid=result.provider_message_id, b_sent_at=now)
        report.sent += 1
    elif result.outcome is Outcome.OPTED_OUT:
        v.update(b_state=SpoolState.BLOCKED, b_error=error)
        dnc.add(row.destination, source="provider")
        report.blocked += 1
    elif result.outcome is Outcome.PERMANENT:
        v.update(b_state=SpoolState.FAILED, b_error=error)
        report.failed += 1
    elif result.ambiguous:
        # It may have gone out and the provider could not tell: stays in flight, lease expired, so
        # reconcile_expired asks again and, if it still cannot tell, a supervisor decides.
        v.update(b_in_flight=marked_at, b_error=error, b_lease_until=now)
        report.review += 1
    elif result.outcome is Outcome.RATE_LIMITED:
        # The gateway did not process it: back to the pool, its attempt given back, not before the wait.
        if wait is None:
            wait = retry_delay(result, 1, sender.retry_base)
        v.update(b_attempts=row.attempts, b_error=f"rate limited: {error or result.outcome.value}"[:500],
                 b_lease_until=now + timedelta(seconds=wait))
        report.rate_limited += 1
    elif attempts >= sender.max_attempts:
        v.update(b_state=SpoolState.FAILED, b_error=error)
        report.failed += 1
    else:  # temporary: back to the pool, not before the wait is over
        v.update(b_error=error,
                 b_lease_until=now + timedelta(seconds=retry_delay(result, attempts, sender.retry_base)))
        report.retry += 1
    return v


_RECORD = (spool.update().where(spool.c.id == sa.bindparam("b_id"), spool.c.lease_owner == sa.bindparam("b_owner"),
                            spool.c.state == SpoolState.TO_PROCESS, spool.c.in_flight_at.is_not(None))
           .values(state=sa.bindparam("b_state"), provider_message_id=sa.bindparam("b_pmid"),
                   sent_at=sa.bindparam("b_sent_at"), last_error=sa.bindparam("b_error"),
                   lease_owner=sa.bindparam("b_lease_owner"), lease_until=sa.bindparam("b_lease_until"),
                   in_flight_at=sa.bindparam("b_in_flight"), port=sa.bindparam("b_port"),
                   attempts=sa.bindparam("b_attempts")))


def _record(sender: Sender, values: list[dict[str, Any]], unsent: list[int]) -> None:
    """Write the group's results, and put back the rows never requested; one commit."""
    for v in values:
        v["b_owner"] = sender.owner
    if values:
        db.session.execute(_RECORD, values)
    if unsent:
        db.session.execute(spool.update().where(
            spool.c.id.in_(unsent), spool.c.lease_owner == sender.owner, spool.c.state == SpoolState.TO_PROCESS)
            .values(in_flight_at=None, attempts=spool.c.attempts - 1, lease_owner=None, lease_until=None))
    publish_counts(sender.dialer_id)
    db.session.commit()
    note_sent(sender.dialer_id, sum(1 for v in values if v["b_state"] == SpoolState.SENT))


def _struggling(result: SendResult) -> bool:
    """The gateway failed for now or limits its pace: the rest of the group goes back, to go out later.
    (A recipient's own rate limit only holds back that message.)"""
    if result.outcome is Outcome.RATE_LIMITED:
        return not result.per_recipient
    return result.outcome is Outcome.TEMPORARY and not result.ambiguous


def _send_group(sender: Sender, rows: list[Any], marked_at: datetime, deadline: float,
                report: DrainReport, settled: list[dict[str, Any]] | None = None) -> bool:
    """Send the marked rows; always records what was requested (and `settled`, rows already decided).
    False when the job should stop."""
    values: list[dict[str, Any]] = list(settled or [])
    requested: set[int] = set()
    keep_going = True
    window_end = marked_at + timedelta(seconds=sender.lease)
    cpu = time.process_time()
    fastest = float("inf")  # the fastest request one at a time: what a request waits, without this host's load
    try:
        if sender.batch:
            if clock.now() <= window_end and sender.pace(deadline, len(rows)):
                ports = sender.next_ports(len(rows))
                messages = [OutboundMessage(ref=r.id, to=r.destination, body=r.body, port=p)
                            for r, p in zip(rows, ports, strict=True)]
                requested.update(r.id for r in rows)
                sent_at = time.time()
                results = sender.adapter.send_batch(messages)
                waits = sender.observe_batch(results, sent_at)
                now = clock.now()
                values = [_result_values(sender, r, p, res, marked_at, now, report, wait)
                          for r, p, res, wait in zip(rows, ports, results, waits, strict=True)]
            else:
                keep_going = False
        else:
            for row in rows:
                # Never start a request after the in-flight window: reconcile relies on it.
                if clock.now() > window_end or time.monotonic() > deadline:
                    keep_going = False
                    break
                if not sender.pace(deadline):
                    report.stopped = "budget"  # the next slot is beyond this job's time
                    keep_going = False
                    break
                port = sender.next_ports(1)[0]
                requested.add(row.id)
                sent_at, started = time.time(), time.perf_counter()
                result = sender.adapter.send(OutboundMessage(ref=row.id, to=row.destination, body=row.body,
                                                             port=port))
                fastest = min(fastest, time.perf_counter() - started)
                wait = sender.observe(result, sent_at)
                values.append(_result_values(sender, row, port, result, marked_at, clock.now(), report, wait))
                if _struggling(result):
                    keep_going = False  # give the rest back, try later
                    break
                if sender.concurrency == 1 and sender.max_concurrency > 1 and len(requested) == PROBE:
                    # A few requests tell whether the gateway is far: then the rest go back at once, for
                    # the pipeline to send many at a time (rather than a whole group at one per round trip).
                    sender.tune(len(requested), fastest * len(requested), time.process_time() - cpu)
                    if sender.concurrency > 1:
                        break
            else:
                sender.reserve_ahead()
        if fastest < float("inf"):  # one at a time (batches and the pipeline do not tune here)
            sender.tune(len(requested), fastest * len(requested), time.process_time() - cpu)
    finally:
        # Whatever happened (Redis gone, a timeout signal), record what went out and free the rest.
        done = {v["b_id"] for v in values}
        unknown = requested - done  # requested but no answer recorded: leave in flight for reconcile
        unsent = [r.id for r in rows if r.id not in requested and r.id not in done]
        try:
            _record(sender, values, unsent)
        except Exception:
            db.session.rollback()
            log.exception("dialer %s: could not record %d results", sender.dialer_id, len(values))
            raise
        if unknown:
            log.warning("dialer %s: %d requests without an answer stay in flight", sender.dialer_id, len(unknown))
    return keep_going


def _claim_marked(sender: Sender, limit: int, report: DrainReport) -> tuple[list[Any], list[dict[str, Any]]]:
    """Unpaced: claim up to `limit` rows already marked in flight; returns them and the settled values of
    the do-not-contact ones among them (BLOCKED, never requested)."""
    rows = claim_rows(sender.dialer_id, sender.owner, limit, sender.lease, sender.inflight)
    report.claimed += len(rows)
    settled: list[dict[str, Any]] = []
    if rows and sender.dncr:
        blocked = dnc.listed_among({r.destination for r in rows}, dialer_id=sender.dialer_id)
        for row in (r for r in rows if r.destination in blocked):
            settled.append({"b_id": row.id, "b_state": SpoolState.BLOCKED, "b_pmid": None, "b_sent_at": None,
                            "b_error": "do-not-contact", "b_lease_owner": None, "b_lease_until": None,
                            "b_in_flight": None, "b_port": None, "b_attempts": row.attempts})
        report.blocked += len(settled)
        db.session.commit()
    return rows, settled


def _claim_and_send(sender: Sender, deadline: float, report: DrainReport) -> None:
    """Unpaced: claim a batch already marked in flight, settle the do-not-contact ones, send the rest."""
    rows, settled = _claim_marked(sender, sender.claim_size, report)
    if not rows:
        report.stopped = "empty"
        return
    skip = {v["b_id"] for v in settled}
    if not _send_group(sender, [r for r in rows if r.id not in skip], rows[0].in_flight_at, deadline, report,
                       settled) and not sender.paused_by_limit:
        report.stopped = report.stopped or ("budget" if time.monotonic() > deadline else "paused")


def _claim_and_send_groups(sender: Sender, deadline: float, report: DrainReport,
                           stop_reason: Callable[[], str]) -> None:
    """Paced (or not reconcilable, or rate limited): claim a batch, then mark and send it group by group."""
    if sender.limited:
        report.stopped = sender.limit_turn(deadline, stop_reason)
        if report.stopped:
            return
    rows = claim_rows(sender.dialer_id, sender.owner, sender.claim_size, sender.lease)
    report.claimed += len(rows)
    if not rows:
        report.stopped = "empty"
        return
    for start in range(0, len(rows), sender.group):
        if start:
            report.stopped = stop_reason()
            if report.stopped:
                return
        last = start + sender.group >= len(rows)
        group, marked_at = _mark_group(sender, rows[start:start + sender.group], report, renew=not last)
        if group and not _send_group(sender, group, marked_at, deadline, report):
            if not sender.paused_by_limit:
                report.stopped = report.stopped or ("budget" if time.monotonic() > deadline else "paused")
            return


def _announce_limit(sender: Sender) -> None:
    """When the provider's rate limit started or ended, every dialer on it redraws its dashboard state."""
    with sender.lock:
        news, sender.limit_news = sender.limit_news, False
    if not news:
        return
    ids = db.session.scalars(sa.select(Dialer.id).where(Dialer.provider_id == sender.provider_id)).all()
    db.session.commit()
    for dialer_id in ids:
        publish_now(f"dialer:{dialer_id}", "dialer.state", dialer_id=dialer_id)


def drain(dialer_id: int, owner: str, *, budget_seconds: float = 30.0,
          keep_alive: Callable[[], bool] | None = None) -> DrainReport:
    """Claim and send until the dialer has nothing to send, leaves its schedule, is stopped or disabled,
    `keep_alive()` says no, or the time budget passes. Unsent claims go back to the pool at the end."""
    report = DrainReport()
    deadline = time.monotonic() + budget_seconds
    dialer = db.session.get(Dialer, dialer_id)
    if dialer is None:
        report.stopped = "deleted"
        return report
    adapter = make_adapter(dialer.provider)
    sender = Sender(dialer, owner, adapter, redis())
    db.session.commit()  # end the read transaction; nothing is held while sending
    schedule = _schedule(dialer_id)
    schedule_at = time.monotonic()

    def stop_reason(schedule: Any) -> str:
        """Why to stop before the next claim or group ("" to go on): stopped/disabled/out of
        schedule, the job's time budget spent, or the job's slot lost."""
        reason = _dialer_can_send(dialer_id, schedule)
        if reason:
            return reason
        if time.monotonic() > deadline:
            return "budget"
        if keep_alive is not None and not keep_alive():
            return "slot_lost"
        return ""

    try:
        while not report.stopped:
            if time.monotonic() - schedule_at > 10:  # schedules change rarely: reread now and then
                schedule, schedule_at = _schedule(dialer_id), time.monotonic()
            report.stopped = stop_reason(schedule)
            if report.stopped:
                break
            hold = sender.watch_limit()
            if hold > 0:  # the gateway limits us: wait it out holding nothing, or leave it to a later job
                report.stopped = sit_out(hold, deadline, functools.partial(stop_reason, schedule))
                continue
            if sender.mark_on_claim and sender.concurrency > 1:  # a distant gateway: many in flight
                send_windowed(sender, deadline, report, functools.partial(stop_reason, schedule))
            elif sender.mark_on_claim:
                _claim_and_send(sender, deadline, report)
            else:
                _claim_and_send_groups(sender, deadline, report, functools.partial(stop_reason, schedule))
            if sender.paused_by_limit:
                sender.paused_by_limit = False
                release_claims(owner)
            _announce_limit(sender)
    finally:
        sender.close()
        try:
            _announce_limit(sender)
        except Exception:  # noqa: BLE001 - the notice's own polling catches up
            db.session.rollback()
            log.warning("dialer %s: rate limit news not published", dialer_id)
        try:
            release_claims(owner)
        except Exception:  # noqa: BLE001 - the leases expire by themselves
            db.session.rollback()
            log.exception("dialer %s: could not release claims of %s", dialer_id, owner)
        publish_counts(dialer_id, force=True, now=True)
    return report
