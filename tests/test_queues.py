"""Issue 16 point 3: routing, inbound, dialer sends and housekeeping on queues of their own, so none waits
behind another; each worker serves the queues it is told (`python -m workers --queues ...`), by default all
of them with routing first. Real Redis, real worker processes."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rq.registry import StartedJobRegistry

from tests.helpers import ROOT, kill_hard, process_env, start_worker, stop_worker, wait_until
from webapp import queues
from webapp.models import Interaction, InteractionStatus
from webapp.services.routing import ROUTE_JOB


def test_each_job_kind_has_its_queue(app: Any) -> None:
    from workers.dialer import run_dialer

    assert queues.kind_of(ROUTE_JOB) == queues.ROUTING
    assert queues.kind_of("workers.inbound.process_inbound") == queues.INBOUND
    assert queues.kind_of(run_dialer) == queues.DIALER
    assert queues.kind_of("workers.whatsapp.fetch_media") == queues.HOUSEKEEPING
    base = app.config["RQ_QUEUE"]
    assert [app.extensions["conversa_queues"][k].name for k in queues.PRIORITY] == \
        [f"{base}-routing", f"{base}-inbound", f"{base}-dialer", base]


def test_worker_queue_choice_is_checked_and_ordered() -> None:
    assert queues.parse(None) == list(queues.PRIORITY)
    assert queues.parse("all") == list(queues.PRIORITY)
    assert queues.parse("housekeeping, Routing") == [queues.ROUTING, queues.HOUSEKEEPING]
    with pytest.raises(ValueError, match="unknown queue routeing"):
        queues.parse("routeing,dialer")


def _waiting_customer(make: Any, db: Any) -> int:
    group = make.group()
    campaign = make.campaign(group, strategy="linear_nopause")
    make.member(campaign, make.user("ana", groups=[group], state="free"))
    interaction = Interaction(campaign_id=campaign.id, customer_number="+59899000111", queued_at=datetime.utcnow())
    db.session.add(interaction)
    db.session.commit()
    return interaction.id


def _assigned(db: Any, interaction_id: int) -> bool:
    db.session.rollback()
    return db.session.get(Interaction, interaction_id).status == InteractionStatus.ASSIGNED


@pytest.mark.slow
def test_one_worker_routes_before_a_dialer_backlog(app: Any, make: Any, db: Any, tmp_path: Path) -> None:
    """One worker serving every queue (as `make run`'s) with a backlog of dialer and housekeeping jobs
    queued first: the routing job queued last runs before them (on one shared queue it waited behind all)."""
    interaction_id = _waiting_customer(make, db)
    with app.app_context():
        for _ in range(6):
            queues.queue(queues.DIALER).enqueue("time.sleep", 0.5, result_ttl=0)
            queues.queue(queues.HOUSEKEEPING).enqueue("time.sleep", 0.5, result_ttl=0)
        queues.enqueue(ROUTE_JOB, None, result_ttl=0)
        dialer, housekeeping = queues.queue(queues.DIALER), queues.queue(queues.HOUSEKEEPING)
    worker = start_worker(process_env(app), tmp_path / "worker.log", "--no-clock")  # no periodic routing pass
    try:
        wait_until(lambda: _assigned(db, interaction_id), 60, "the routing job to assign the customer", step=0.02)
        backlog = dialer.count, housekeeping.count
    finally:
        stop_worker(worker)
    assert backlog[0] >= 5 and backlog[1] == 6, (backlog, (tmp_path / "worker.log").read_text())


@pytest.mark.slow
def test_a_routing_worker_is_not_held_by_a_long_dialer_job(app: Any, make: Any, db: Any, tmp_path: Path) -> None:
    """A worker told to serve the dialer is busy with a long send job; another told to serve routing and
    inbound assigns the waiting customer meanwhile; the dialer worker never touches routing."""
    interaction_id = _waiting_customer(make, db)
    env = process_env(app)
    with app.app_context():
        dialer = queues.queue(queues.DIALER)
        dialer.enqueue("time.sleep", 0, result_ttl=0)
        queues.enqueue(ROUTE_JOB, None, result_ttl=0)
    # In burst mode a dialer-only worker runs the dialer's jobs and stops, leaving the routing job queued.
    done = subprocess.run([sys.executable, "-m", "workers", "--burst", "--no-clock", "--queues", "dialer"],
                          cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with app.app_context():
        assert (dialer.count, queues.queue(queues.ROUTING).count) == (0, 1)
        assert not _assigned(db, interaction_id)
        dialer.enqueue("time.sleep", 30, result_ttl=0, job_timeout=60)
    busy = start_worker(env, tmp_path / "dialer.log", "--no-clock", "--queues", "dialer")
    router = None
    try:
        started = StartedJobRegistry(queue=dialer)
        wait_until(lambda: started.count == 1, 60, "the dialer worker to start its long job")
        router = start_worker(env, tmp_path / "router.log", "--no-clock", "--queues", "routing,inbound")
        wait_until(lambda: _assigned(db, interaction_id), 60, "the routing worker to assign the customer", step=0.02)
        assert started.count == 1  # the long send job is still running
    finally:
        kill_hard(busy)
        if router is not None:
            stop_worker(router)


def test_an_unknown_queue_is_refused_by_name(app: Any) -> None:
    done = subprocess.run([sys.executable, "-m", "workers", "--queues", "dialr"], cwd=ROOT, env=process_env(app),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unknown queue dialr" in done.stderr
