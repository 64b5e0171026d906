"""Rate limits are not failures: the shared limit in Redis, the dashboard notice, and two real workers
under a gateway that answers 429 for a while and then recovers."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fakes.twilio import FakeTwilio
from tests.helpers import (
    FAST_ENGINE,
    drain_until_done,
    listen_live,
    live_events,
    login,
    numbers,
    process_env,
    queue,
    queue_bulk,
    run,
    sends_per_destination,
    spool_states,
    start_worker,
    stop_worker,
    twilio_provider,
    wait_until,
)

T0 = 1_800_000_000.0  # a fixed "now" (time.time() seconds) for the limit's arithmetic


@pytest.fixture
def limits(app: Any) -> Any:
    from webapp.services.pacing import GatewayLimits

    return GatewayLimits(app.extensions["conversa_redis"], backoff=1.0, max_backoff=60.0, quiet=10.0,
                         rng=lambda: 0.0)


# -- the shared limit ------------------------------------------------------------------------------
def test_refusals_in_a_row_wait_longer_with_retry_after_as_the_floor(limits: Any) -> None:
    """Retry-After: 5 each time: waits 5, 5, 5, 8, 16 (backoff 1, 2, 4, 8, 16 under a floor of 5), not 5
    forever; a refusal of a request sent before the last one adds to the count, not to the backoff."""
    wait, started = limits.refused(7, retry_after=5, sent_at=T0, now=T0)
    assert (wait, started) == (5.0, True)
    t, waits = T0, []
    for _ in range(4):
        t += wait
        wait, started = limits.refused(7, retry_after=5, sent_at=t, now=t)
        waits.append(wait)
        assert started is False
    assert waits == [5.0, 5.0, 8.0, 16.0]
    limits.refused(7, retry_after=5, sent_at=t - 1, now=t + 0.5)  # was on its way before: no escalation
    limit = limits.state(7)
    assert (limit.hits, limit.strikes, limit.until, limit.since) == (6, 5, t + 16.0, T0)
    assert limit.interval == pytest.approx(0.1)  # refused again and again while closed: the pace stays
    assert limit.retry_in(now=t) == 16.0 and limit.lasted(now=t) == t - T0


def test_the_pace_through_a_limit_is_shared_and_speeds_back_up(limits: Any) -> None:
    """Everyone's turns come one interval apart after the wait; a turn beyond what a caller may wait is not
    taken; a refusal after accepted requests halves the pace; accepted ones speed it up, and once the pace
    is back and nothing was refused for `quiet` seconds the limit is over."""
    limits.refused(8, retry_after=1, sent_at=T0, now=T0)
    assert limits.reserve(8, max_wait=5, now=T0) == pytest.approx(1.0)  # one worker: when the wait ends
    assert limits.reserve(8, max_wait=5, now=T0) == pytest.approx(1.1)  # another: one interval later
    assert limits.reserve(8, max_wait=1.0, now=T0) is None  # too far for this one: nothing reserved
    assert limits.reserve(8, max_wait=5, now=T0) == pytest.approx(1.2)
    assert limits.accepted(8, sent_at=T0 + 1, now=T0 + 1.05) == 1
    assert limits.state(8).strikes == 0
    limits.refused(8, retry_after=0, sent_at=T0 + 2, now=T0 + 2)  # too fast at 10 a second
    assert (limits.state(8).interval, limits.state(8).per_minute) == (pytest.approx(0.2), 300)
    assert limits.accepted(8, sent_at=T0 + 1.5, now=T0 + 2.1) == 1  # sent before that refusal: tells nothing
    assert limits.state(8).interval == pytest.approx(0.2)
    assert limits.accepted(8, sent_at=T0 + 3, now=T0 + 3) == 1
    assert limits.state(8).interval == pytest.approx(0.17)
    for k in range(4):  # 0.1445, 0.123, 0.104, then its floor (0.1)
        assert limits.accepted(8, sent_at=T0 + 4 + k, now=T0 + 4 + k) == 1
    assert limits.state(8).interval == pytest.approx(0.1)
    assert limits.accepted(8, sent_at=T0 + 9, now=T0 + 9) == 1  # at its floor, but refused 7 s ago
    assert limits.accepted(8, sent_at=T0 + 12, now=T0 + 12) == 2  # quiet for 10 s: over
    assert limits.state(8) is None and limits.accepted(8, sent_at=T0 + 13, now=T0 + 13) == 0
    assert limits.reserve(8, max_wait=5, now=T0 + 13) == 0.0
    assert limits.hold(8) == 0.0


def test_the_limit_expires_when_nothing_is_sent(app: Any, limits: Any) -> None:
    """A limit nobody sends through again lapses by itself: its key lives the wait plus `quiet` and a minute."""
    from webapp.services.pacing import limit_key

    limits.refused(9, retry_after=20, sent_at=T0, now=T0)
    ttl = app.extensions["conversa_redis"].pttl(limit_key(9))
    assert 20_000 + 10_000 < ttl <= 20_000 + 10_000 + 60_000


# -- the dashboard -----------------------------------------------------------------------------------
def test_dashboard_says_the_gateway_is_limiting_us(app: Any, client: Any, db: Any, make: Any,
                                                    fake_twilio: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """While the provider rate limits us every dialer on it says so on its dashboard (Spanish and English),
    pushed as dialer.state when it starts and when it ends; after recovery the notice is gone."""
    monkeypatch.setitem(app.config, "DIALER_JOB_SECONDS", 0.5)
    monkeypatch.setitem(app.config, "DIALER_RATE_LIMIT_QUIET", 0)
    group = make.group()
    make.user("sup", role="supervisor", groups=[group])
    make.user("boss", role="supervisor", groups=[group], language="en")
    provider = twilio_provider(make, fake_twilio)
    d = make.dialer(group, provider, running=True, interval_ms=0)
    idle = make.dialer(group, provider, running=False)  # same provider: the same limit
    queue(db, d, numbers(2))
    listener = listen_live(app, f"dialer:{d.id}", f"dialer:{idle.id}")
    fake_twilio.fail_next(1, "429")
    assert run(d)["rate_limited"] == 1
    started = live_events(listener)
    assert (f"dialer:{d.id}", "dialer.state", {"dialer_id": d.id}) in started
    assert (f"dialer:{idle.id}", "dialer.state", {"dialer_id": idle.id}) in started

    login(client, "sup")
    state = client.get(f"/dialers/{d.id}/state").get_data(as_text=True)
    assert f'id="dialer-{d.id}-rate-limit"' in state
    assert "El proveedor nos está limitando." in state
    assert "Rechazó 1 envío por exceso de velocidad" in state
    assert "sin gastar sus intentos" in state
    assert "El proveedor nos está limitando." in client.get(f"/dialers/{idle.id}").get_data(as_text=True)
    english_client = app.test_client()
    login(english_client, "boss")
    english = english_client.get(f"/dialers/{d.id}").get_data(as_text=True)
    assert "The gateway is limiting us." in english and "It has refused 1 send as too fast" in english
    assert "messages a minute" in english

    listener = listen_live(app, f"dialer:{d.id}", f"dialer:{idle.id}")
    drain_until_done(db, d)
    ended = live_events(listener)
    assert (f"dialer:{d.id}", "dialer.state", {"dialer_id": d.id}) in ended
    assert (f"dialer:{idle.id}", "dialer.state", {"dialer_id": idle.id}) in ended
    assert "rate-limit" not in client.get(f"/dialers/{d.id}/state").get_data(as_text=True)
    assert fake_twilio.sent_count() == 2


# -- real workers ----------------------------------------------------------------------------------------
@pytest.mark.per_database
@pytest.mark.slow
def test_sustained_429_then_recovery_two_workers(app: Any, db: Any, make: Any, tmp_path: Path) -> None:
    """The issue's case with two real workers: the Twilio fake answers every send 429 (Retry-After: 1) for
    six seconds, then recovers. 30 messages: none FAILED, each sent exactly once, no attempt spent on a 429."""
    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN
    from webapp.models import SpoolMessage

    with FakeTwilio(retry_after="1") as fake:
        provider = make.provider("twilio", credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
                                 base_url=fake.url, sender="+15005550006", max_per_second=0)
        dialer = make.dialer(make.group(), provider, interval_ms=0, running=False)
        numbers_sent = queue_bulk(app, dialer.id, 30)
        env = {**process_env(app), **FAST_ENGINE, "DIALER_RATE_LIMIT_QUIET": "2"}
        workers = [start_worker(env, tmp_path / f"worker{i}.log") for i in (1, 2)]
        try:
            from rq import Worker

            wait_until(lambda: len(Worker.all(connection=app.extensions["conversa_redis"])) == 2, 60,
                       "both workers listening")
            fake.set_mode("429", seconds=6)
            dialer.running = True
            db.session.commit()
            wait_until(lambda: spool_states(app, dialer.id)[2] + spool_states(app, dialer.id)[5] == 30, 180,
                       "every message SENT or FAILED")
        finally:
            for proc in workers:
                stop_worker(proc)
        assert spool_states(app, dialer.id) == {2: 30}  # none FAILED
        per_destination = sends_per_destination(fake)
        assert sorted(per_destination) == sorted(numbers_sent) and set(per_destination.values()) == {1}
        attempts = db.session.scalars(sa.select(SpoolMessage.attempts).where(SpoolMessage.dialer_id == dialer.id))
        assert set(attempts) == {1}
        assert len(fake.answered(429)) >= 1
