"""After-commit side effects (live events and RQ jobs) follow one rule: a commit sends everything queued,
in order; a full rollback drops everything; a rolled-back savepoint drops only what was queued inside it."""
from __future__ import annotations

import json
from typing import Any

import pytest

from webapp.after_commit import enqueue_after_commit
from webapp.live.events import CHANNEL_PREFIX, publish, publish_now

JOB = "tests.test_after_commit.no_such_job"  # queued only: no worker runs it


@pytest.fixture
def sent(app: Any, db: Any) -> Any:
    """A function answering what went out so far: (event numbers, job numbers), each in order."""
    pubsub = app.extensions["conversa_redis"].pubsub()
    pubsub.psubscribe(CHANNEL_PREFIX + "test:*")
    confirmed = pubsub.get_message(timeout=5)
    assert confirmed is not None and confirmed["type"] == "psubscribe"
    queue = app.extensions["conversa_queues"]["housekeeping"]

    def what_went_out() -> tuple[list[int], list[int]]:
        # A sentinel sent straight to Redis comes after every event the commits before it sent.
        publish_now("test:sentinel", "test.end")
        events = []
        while True:
            message = pubsub.get_message(timeout=5)
            assert message is not None, "the sentinel never arrived"
            event = json.loads(message["data"])
            if event["topic"] == "test:sentinel":
                break
            events.append(event["data"]["n"])
        jobs = [job.args[0] for job in queue.jobs if job.func_name == JOB]
        return events, jobs

    yield what_went_out
    pubsub.close()


def _queue(n: int) -> None:
    publish("test:a", "test.n", n=n)
    enqueue_after_commit(JOB, n)


def test_commit_sends_events_and_jobs_in_the_order_queued(db: Any, sent: Any) -> None:
    """Nothing leaves before the commit; then all of it, in order."""
    for n in (1, 2, 3):
        _queue(n)
    assert sent() == ([], [])
    db.session.commit()
    assert sent() == ([1, 2, 3], [1, 2, 3])


def test_full_rollback_drops_events_and_jobs(db: Any, sent: Any) -> None:
    """A rollback drops everything queued in the transaction, savepoints included; the next commit sends
    only its own."""
    _queue(1)
    with db.session.begin_nested():
        _queue(2)
    db.session.rollback()
    db.session.commit()
    assert sent() == ([], [])
    _queue(3)
    db.session.commit()
    assert sent() == ([3], [3])


def test_closed_session_drops_events_and_jobs(db: Any, sent: Any) -> None:
    """Closing the session without a commit is a rollback too: nothing it queued goes out later."""
    _queue(1)
    db.session.close()
    _queue(2)
    db.session.commit()
    assert sent() == ([2], [2])


def test_rolled_back_savepoint_drops_what_it_queued_and_keeps_what_came_before(db: Any, sent: Any) -> None:
    """A savepoint rolled back takes back its own events and jobs, not the ones queued before it or after."""
    _queue(1)
    savepoint = db.session.begin_nested()
    _queue(2)
    savepoint.rollback()
    _queue(3)
    with pytest.raises(RuntimeError):
        with db.session.begin_nested():
            _queue(4)
            raise RuntimeError("undo the savepoint")
    db.session.commit()
    assert sent() == ([1, 3], [1, 3])


def test_released_savepoint_sends_nothing_before_the_commit(db: Any, sent: Any) -> None:
    """Releasing a savepoint is no commit: its events and jobs wait for the transaction's own commit
    (and vanish with its rollback)."""
    _queue(1)
    with db.session.begin_nested():
        _queue(2)
    assert sent() == ([], [])
    db.session.commit()
    assert sent() == ([1, 2], [1, 2])


def test_outer_savepoint_rollback_drops_an_inner_released_one(db: Any, sent: Any) -> None:
    """What a released inner savepoint queued belongs to the savepoint around it, and goes with its rollback."""
    _queue(1)
    outer = db.session.begin_nested()
    _queue(2)
    with db.session.begin_nested():
        _queue(3)
    inner = db.session.begin_nested()
    _queue(4)
    inner.rollback()
    _queue(5)
    outer.rollback()
    with db.session.begin_nested():
        with db.session.begin_nested():
            _queue(6)
    db.session.commit()
    assert sent() == ([1, 6], [1, 6])
