"""D3 exactly once with two worker processes on one dialer, no pacing: no message goes out twice."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.helpers import (
    FAST_ENGINE,
    process_env,
    queue_bulk,
    sends_per_destination,
    spool_states,
    start_worker,
    stop_worker,
    wait_until,
)

TOTAL = 1200


@pytest.mark.slow
@pytest.mark.per_database
def test_two_workers_one_dialer_no_duplicates(app: Any, db: Any, make: Any, tmp_path: Path) -> None:
    """Two real workers, one job each on the same dialer: 1,200 sent, each exactly once, both took part."""
    from workers.dialer import job_id

    with FakeTwilio() as fake:
        provider = make.provider("twilio", credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
                                 base_url=fake.url, sender="+15005550006", max_per_second=0)
        dialer = make.dialer(make.group(), provider, interval_ms=0, running=False)
        numbers = queue_bulk(app, dialer.id, TOTAL)
        env = {**process_env(app), **FAST_ENGINE, "DIALER_LEASE_SECONDS": "10"}
        workers = [start_worker(env, tmp_path / f"worker{i}.log") for i in (1, 2)]
        try:
            from rq import Worker

            redis = app.extensions["conversa_redis"]
            wait_until(lambda: len(Worker.all(connection=redis)) == 2, 60, "both workers listening")
            dialer.running = True  # both slots are enqueued on the same clock tick
            db.session.commit()
            wait_until(lambda: spool_states(app, dialer.id)[2] == TOTAL, 120, "every message SENT")
        finally:
            for proc in workers:
                stop_worker(proc)
        per_destination = sends_per_destination(fake)
        assert sorted(per_destination) == sorted(numbers)
        assert set(per_destination.values()) == {1}
        assert spool_states(app, dialer.id) == {2: TOTAL}
        queue = app.extensions["conversa_queues"]["dialer"]
        claimed = [queue.fetch_job(job_id(dialer.id, slot)).return_value()["claimed"] for slot in (0, 1)]
        assert min(claimed) > 0, f"both jobs should have sent part of the batch: {claimed}"
