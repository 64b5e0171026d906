"""The in-flight window of a send job (issue 14.1): AIMD on the gateway's latency and its 429s."""
from __future__ import annotations

from typing import Any

from webapp.services.dialer import window as w
from webapp.services.dialer.window import Window


def test_grows_while_answers_stay_fast_up_to_the_cap() -> None:
    win = Window(64)
    assert win.size() == w.START
    for _i in range(200):
        win.answered(0.15)
    assert win.size() == 64


def test_halves_on_a_429_once_per_round_trip_then_grows_slowly(monkeypatch: Any) -> None:
    now = [1000.0]
    monkeypatch.setattr(w.time, "monotonic", lambda: now[0])
    win = Window(64, start=40)
    win.answered(0.15)
    win.answered(0.15, refused=True)
    win.answered(0.15, refused=True)  # the same burst: counts once
    assert win.size() == 20
    now[0] += 1.0
    win.answered(0.15, refused=True)
    assert win.size() == 10
    for _i in range(10):  # after a cut: about one more per round trip, not one per answer
        win.answered(0.15)
    assert win.size() == 11


def test_shrinks_when_the_gateway_starts_queueing(monkeypatch: Any) -> None:
    now = [1000.0]
    monkeypatch.setattr(w.time, "monotonic", lambda: now[0])
    win = Window(64, start=50)
    win.answered(0.15)
    win.answered(0.6)  # four times the fastest: the gateway queues us
    assert win.size() == 40
    now[0] += 1.0
    win.answered(0.16)  # back to normal: grows again
    assert win.limit > 40
