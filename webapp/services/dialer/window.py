"""How many requests one job keeps in flight to a distant gateway: a window that adapts (AIMD).

It grows while the gateway's answers come back as fast as the fastest seen and nothing is refused: by one
per answer at first (doubling every round trip, "slow start"), by one per round trip once it has had to
shrink. It halves on a 429 (the shared limit in Redis then also slows every worker: `pacing.GatewayLimits`)
and shrinks by a fifth when answers take much longer than the fastest (the gateway queues us). Each cut
waits a round trip before the next, so one burst of slow answers or refusals counts once.
"""
from __future__ import annotations

import threading
import time

START = 8  # requests in flight when a job starts overlapping them
RISE = 2.0  # an answer slower than RISE × the fastest (+ SLACK) means the gateway is queueing us
SLACK = 0.02
DRIFT = 0.01  # how fast the fastest-seen follows answers that stay slower (a route that changed for good)


class Window:
    """The in-flight window of one job; thread-safe (the sending threads report every answer)."""

    def __init__(self, most: int, start: int = START):
        self.most = max(1, most)
        self.limit = float(min(self.most, max(1, start)))
        self.fastest: float | None = None
        self.slow_start = True
        self._cut_at = 0.0
        self.cuts = 0
        self._lock = threading.Lock()

    def size(self) -> int:
        return max(1, int(self.limit))

    def answered(self, seconds: float, refused: bool = False) -> None:
        """One answer from the gateway: it took `seconds`; `refused`: a 429 (not one recipient's limit)."""
        with self._lock:
            now = time.monotonic()
            if refused:
                self._cut(now, 0.5, seconds)
                return
            if self.fastest is None or seconds < self.fastest:
                self.fastest = seconds
            else:
                self.fastest += (seconds - self.fastest) * DRIFT
            if seconds > self.fastest * RISE + SLACK:
                self._cut(now, 0.8, seconds)
            elif self.limit < self.most:
                self.limit = min(float(self.most), self.limit + (1.0 if self.slow_start else 1.0 / self.limit))

    def _cut(self, now: float, factor: float, seconds: float) -> None:
        if now - self._cut_at < max(seconds, self.fastest or 0.0):
            return  # already cut for this round trip
        self._cut_at = now
        self.cuts += 1
        self.slow_start = False
        self.limit = max(1.0, self.limit * factor)
