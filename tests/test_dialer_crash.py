"""D3 exactly once: a worker killed with SIGKILL mid-batch, a new one started; every message goes out once."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.helpers import (
    FAST_ENGINE,
    kill_hard,
    process_env,
    queue_bulk,
    sends_per_destination,
    spool_states,
    start_worker,
    stop_worker,
    wait_until,
)

TOTAL = 300


@pytest.mark.slow
@pytest.mark.per_database
def test_sigkill_mid_batch_sends_each_message_once(app: Any, make: Any, tmp_path: Path) -> None:
    """Kill -9 the worker after part of 300 messages; a fresh worker finishes: 300 sent, each exactly once."""
    with FakeTwilio() as fake:  # outlives both workers
        provider = make.provider("twilio", credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
                                 base_url=fake.url, sender="+15005550006", max_per_second=0)
        dialer = make.dialer(make.group(), provider, interval_ms=10, running=True)
        numbers = queue_bulk(app, dialer.id, TOTAL)
        env = {**process_env(app), **FAST_ENGINE}
        first = start_worker(env, tmp_path / "worker1.log")
        try:
            wait_until(lambda: fake.sent_count() >= 80, 90, "the first worker to send 80")
        finally:
            kill_hard(first)
        at_kill = fake.sent_count()
        assert 80 <= at_kill < TOTAL, "the kill must land mid-batch"
        second = start_worker(env, tmp_path / "worker2.log")
        try:
            wait_until(lambda: spool_states(app, dialer.id)[2] == TOTAL, 120, "every message SENT")
        finally:
            stop_worker(second)
        per_destination = sends_per_destination(fake)
        assert sorted(per_destination) == sorted(numbers)
        assert set(per_destination.values()) == {1}
        assert fake.sent_count() == TOTAL
        assert spool_states(app, dialer.id) == {2: TOTAL}


@pytest.mark.slow
@pytest.mark.per_database
def test_sigkill_with_many_in_flight_to_a_distant_gateway(app: Any, make: Any, tmp_path: Path) -> None:
    """Issue 14.1: unpaced, every answer after 300 ms, so the worker keeps many requests in flight (more than
    the 4 it kept before); kill -9 it while they are in flight; a fresh worker reconciles them and
    finishes: every message SENT, each sent exactly once."""
    with FakeTwilio() as fake:
        fake.latency = 0.3
        provider = make.provider("twilio", credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
                                 base_url=fake.url, sender="+15005550006", max_per_second=0)
        dialer = make.dialer(make.group(), provider, interval_ms=0, running=True)
        numbers = queue_bulk(app, dialer.id, TOTAL)
        env = {**process_env(app), **FAST_ENGINE}
        first = start_worker(env, tmp_path / "worker1.log")
        try:
            wait_until(lambda: fake.in_flight >= 16 and fake.sent_count() >= 40, 90, "many requests in flight")
        finally:
            kill_hard(first)
        assert fake.max_in_flight > 4
        assert fake.sent_count() < TOTAL, "the kill must land mid-bulk"
        second = start_worker(env, tmp_path / "worker2.log")
        try:
            wait_until(lambda: spool_states(app, dialer.id).get(2) == TOTAL, 180, "every message SENT")
        finally:
            stop_worker(second)
        per_destination = sends_per_destination(fake)
        assert sorted(per_destination) == sorted(numbers)
        assert set(per_destination.values()) == {1}
        assert fake.sent_count() == TOTAL
        assert spool_states(app, dialer.id) == {2: TOTAL}
