"""Issue 16 point 4: back-pressure that shows. When inbound outruns routing (webhooks keep coming, no worker
keeps up), the supervisor's monitor says so — jobs waiting per queue and how long the oldest has waited —,
/metrics exposes the same, and nothing is dropped: once a worker runs, every message is stored."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from tests.helpers import login, run_jobs
from webapp.models import Message

TOKEN = "twilio-backlog-token"
DID = "+59829007000"
ARRIVALS = 7


def _post_inbound(client: Any, provider_id: int, n: int) -> None:
    path = f"/webhooks/{provider_id}/inbound"
    sid = f"SM{n:032d}"
    params = {"MessageSid": sid, "AccountSid": "AC" + "7" * 32, "From": f"+5989910{n:04d}", "To": DID,
              "Body": f"hola {n}", "NumMedia": "0"}
    signature = RequestValidator(TOKEN).compute_signature(f"http://localhost{path}", params)
    answer = client.post(path, data=urlencode(params), headers={"X-Twilio-Signature": signature},
                         content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 200


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_inbound_outrunning_routing_shows_on_the_monitor_and_metrics(app: Any, client: Any, make: Any,
                                                                     db: Any) -> None:
    group = make.group()
    provider = make.provider("twilio", sender=DID, credentials={"account_sid": "AC" + "7" * 32,
                                                                "auth_token": TOKEN})
    make.campaign(group, provider, did=DID, strategy="ringall")
    make.user("sup", role="supervisor", groups=[group])
    for n in range(ARRIVALS):
        _post_inbound(client, provider.id, n)
    app.config["BACKLOG_ALERT_SECONDS"] = 0  # any wait counts: the jobs were queued a moment ago
    try:
        login(client, "sup")
        page = _text(client.get("/monitor").get_data(as_text=True))
        assert "Los mensajes llegan más rápido de lo que se enrutan." in page
        assert f"{ARRIVALS} mensajes o tareas de enrutamiento esperan" in page
        fragment = client.get("/monitor/backlog").get_data(as_text=True)
        assert 'class="backlog behind"' in fragment and f'data-queue="inbound">Entrantes y respuestas <b>{ARRIVALS}</b>' \
            in fragment
        app.config["METRICS_TOKEN"] = "scrape-backlog"
        metrics = client.get("/metrics", headers={"Authorization": "Bearer scrape-backlog"}).get_data(as_text=True)
        assert f'conversa_queue_jobs{{queue="inbound"}} {ARRIVALS}' in metrics
        age = re.search(r'conversa_queue_oldest_seconds\{queue="inbound"\} ([0-9.]+)', metrics)
        assert age is not None and float(age.group(1)) >= 0
        assert 'conversa_queue_oldest_seconds{queue="dialer"} 0' in metrics
    finally:
        app.config["BACKLOG_ALERT_SECONDS"] = 5
        app.config["METRICS_TOKEN"] = None
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0  # answered before any work
    run_jobs(app)  # a worker catches up: nothing was dropped
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == ARRIVALS
    fragment = client.get("/monitor/backlog").get_data(as_text=True)
    assert "behind" not in fragment and 'data-queue="inbound">Entrantes y respuestas <b>0</b>' in fragment


def test_the_monitor_says_when_queue_figures_are_missing(app: Any, client: Any, make: Any) -> None:
    make.user("sup", role="supervisor", groups=[make.group()])
    login(client, "sup")
    queues = app.extensions["conversa_queues"]
    real = queues["routing"]
    import redis
    from rq import Queue

    queues["routing"] = Queue("x", connection=redis.Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2))
    try:
        fragment = client.get("/monitor/backlog").get_data(as_text=True)
    finally:
        queues["routing"] = real
    assert "Las cifras de las colas no están disponibles: Redis no responde." in fragment


def test_the_backlog_fragment_is_for_supervisors(client: Any, make: Any) -> None:
    make.user("ana", groups=[make.group()])
    login(client, "ana")
    assert client.get("/monitor/backlog").status_code in (403, 404)
