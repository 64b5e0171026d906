"""Side effects that wait for the database commit: live events and RQ jobs, with one rule for both.

A service queues them on the session while it works (`live.events.publish`, `enqueue_after_commit`)
and the caller commits. Then:
- the commit sends everything queued, in order: the live events first (one Redis round trip), then
  the jobs, so a job's own events always follow the ones that announced its work;
- a full rollback, or a session closed without a commit, drops everything;
- a rolled-back savepoint drops what was queued inside it (and in savepoints inside it) and keeps what
  was queued before it; a released savepoint hands its items to the transaction around it, and they
  still wait for the real commit.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from . import queues
from .extensions import db

log = logging.getLogger(__name__)

_PENDING = "conversa_after_commit"  # session.info: [[savepoint or None, kind, item], ...] in queue order
LIVE, JOB = "live", "job"
KINDS = (LIVE, JOB)  # sent first at commit, in this order; other kinds follow in registration order
_senders: dict[str, Callable[[list[Any]], None]] = {}


def sender(kind: str) -> Callable[[Callable[[list[Any]], None]], Callable[[list[Any]], None]]:
    """Register what sends the committed items of one kind (a list, in the order they were queued)."""
    def deco(fn: Callable[[list[Any]], None]) -> Callable[[list[Any]], None]:
        _senders[kind] = fn
        return fn
    return deco


def defer(kind: str, item: Any) -> None:
    """Queue an item for after the current transaction commits."""
    session = db.session()
    if not session.in_transaction():
        session.begin()  # so that a rollback, too, has a transaction to end (and drops the item)
    session.info.setdefault(_PENDING, []).append([session.get_nested_transaction(), kind, item])


def withdraw(kind: str, wanted: Callable[[Any], bool]) -> list[Any]:
    """Take back the queued items of `kind` that `wanted` picks (the caller does that work itself)."""
    pending = db.session.info.get(_PENDING) or []
    taken = [entry for entry in pending if entry[1] == kind and wanted(entry[2])]
    gone = {id(entry) for entry in taken}
    pending[:] = [entry for entry in pending if id(entry) not in gone]
    return [entry[2] for entry in taken]


# -- jobs ---------------------------------------------------------------------------------------
def enqueue_after_commit(func: str, *args: Any, delay: float | None = None) -> None:
    """Queue an RQ job once the current transaction commits (see the module docstring for rollbacks)."""
    defer(JOB, (func, args, delay))


def take_jobs_after_commit(func: str) -> list[tuple[Any, ...]]:
    """Withdraw the queued-for-commit jobs of `func` that run at once (the caller runs that work itself); their args."""
    return [args for _, args, _ in withdraw(JOB, lambda job: job[0] == func and not job[2])]


@sender(JOB)
def _enqueue_jobs(jobs: list[tuple[str, tuple[Any, ...], float | None]]) -> None:
    for func, args, delay in dict.fromkeys(jobs):  # the same job queued twice runs once
        queue = queues.queue_for(func)
        try:  # fire and forget: nobody reads a result, so RQ keeps none (fewer writes per job)
            if delay:
                queue.enqueue_in(timedelta(seconds=delay), func, *args, result_ttl=0)
            else:
                queue.enqueue(func, *args, result_ttl=0)
        except Exception as exc:  # Redis down: the periodic tasks catch up on routing
            log.warning("job %s%r not queued: %s", func, args, exc)


# -- the session hooks ----------------------------------------------------------------------------
def _nearest_savepoint(transaction: SessionTransaction | None) -> SessionTransaction | None:
    while transaction is not None and not transaction.nested:
        transaction = transaction.parent
    return transaction


def _after_commit(session: Session) -> None:
    # SQLAlchemy also calls this when a savepoint is released: only the real commit sends.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    for kind in sorted(_senders, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS)):
        items = [item for _, k, item in pending if k == kind]
        if items:
            _senders[kind](items)


def _after_rollback(session: Session) -> None:
    # Called once for the savepoint, or the transaction, that the database rolled back.
    pending = session.info.get(_PENDING)
    if not pending:
        return
    savepoint = session.get_nested_transaction()
    if savepoint is None:
        session.info.pop(_PENDING, None)
    else:
        pending[:] = [entry for entry in pending if entry[0] is not savepoint]


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if not pending:
        return
    if transaction.parent is None:  # the transaction ended without a commit (which empties the list)
        session.info.pop(_PENDING, None)
    elif transaction.nested:  # released (a rolled-back one's items are gone already)
        outer = _nearest_savepoint(transaction.parent)
        for entry in pending:
            if entry[0] is transaction:
                entry[0] = outer


_installed = False


def install() -> None:
    """Hook the session (once per process) so queued items follow the rule above."""
    global _installed
    if _installed:
        return
    _installed = True
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_rollback", _after_rollback)
    event.listen(Session, "after_transaction_end", _after_transaction_end)
