"""Periodic tasks, run by whichever worker process holds each task's Redis lock for that tick.

Any number of worker processes on any number of machines run the clock; a task
runs once per interval across all of them. Areas register tasks with
`@periodic("name", seconds)`; each task gets the Flask app context.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Task:
    name: str
    seconds: float
    fn: Callable[[], object]


TASKS: dict[str, Task] = {}


def periodic(name: str, seconds: float) -> Callable[[Callable[[], object]], Callable[[], object]]:
    def deco(fn: Callable[[], object]) -> Callable[[], object]:
        TASKS[name] = Task(name, seconds, fn)
        return fn
    return deco


def run_due(redis_client: object, owner: str) -> list[str]:
    """Run every task whose interval lock this process wins; returns the names it ran."""
    ran = []
    for task in list(TASKS.values()):
        key = f"conversa:clock:{task.name}"
        if redis_client.set(key, owner, nx=True, px=int(task.seconds * 1000)):  # type: ignore[attr-defined]
            try:
                task.fn()
                ran.append(task.name)
            except Exception:  # one failing task must not stop the clock
                log.exception("periodic task %s failed", task.name)
    return ran


def start_clock(app, stop: threading.Event, tick: float = 0.5) -> threading.Thread:  # type: ignore[no-untyped-def]
    owner = f"{uuid.uuid4().hex[:8]}"

    def loop() -> None:
        from webapp.extensions import db

        while not stop.is_set():
            try:
                with app.app_context():
                    try:
                        run_due(app.extensions["conversa_redis"], owner)
                    finally:
                        db.session.remove()
            except Exception as exc:  # Redis down: wait and try again
                log.warning("clock: %s", exc)
            stop.wait(tick)

    thread = threading.Thread(target=loop, name="conversa-clock", daemon=True)
    thread.start()
    return thread


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
