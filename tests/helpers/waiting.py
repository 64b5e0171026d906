"""Waiting on something observable instead of sleeping a fixed time."""
from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.1) -> None:
    """Poll `predicate` until it is true; a generous bound so a stuck system fails (naming `what`)
    instead of hanging. Never a timing assertion: `timeout` is only how long to give up after."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)
