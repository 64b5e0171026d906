"""Across processes: a webhook posted to web process B reaches, through the worker and Redis, the agent's
websocket on web process A."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from twilio.request_validator import RequestValidator

from tests.helpers import PASSWORD, ROOT, process_env, stop_processes, web_processes

pytestmark = [pytest.mark.slow, pytest.mark.per_database]
TOKEN = "twilio-token-multiprocess"
DID = "+59829001000"
TEXT = "Hola, escribo desde otro proceso"


@pytest.fixture
def processes(app: Any, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two gunicorn web processes and one worker, on this session's database and Redis."""
    env = process_env(app)
    with web_processes(env, tmp_path, 2) as urls, (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            yield urls[0], urls[1]
        finally:
            stop_processes([worker])


def login(session: requests.Session, base: str, username: str) -> None:
    page = session.get(f"{base}/login", timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert token, "no CSRF token on the login page"
    answer = session.post(f"{base}/login", data={"username": username, "password": PASSWORD,
                                                 "csrf_token": token.group(1)}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302


def test_webhook_on_one_process_reaches_the_agents_socket_on_another(app: Any, make: Any, db: Any,
                                                                     processes: tuple[str, str]) -> None:
    import websocket

    web_a, web_b = processes
    group = make.group()
    provider = make.provider("twilio", sender=DID, credentials={"account_sid": "AC" + "2" * 32,
                                                                "auth_token": TOKEN})
    campaign = make.campaign(group, provider, did=DID, strategy="linear_nopause")
    agent = make.user("ana", groups=[group])
    make.member(campaign, agent)

    http = requests.Session()
    login(http, web_a, "ana")
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    ws = websocket.create_connection(web_a.replace("http", "ws") + f"/ws?topics=offers:{campaign.id}",
                                     cookie=cookie, timeout=30)
    try:
        assert 'id="live-status"' in ws.recv()
        path = f"/webhooks/{provider.id}/inbound"
        params = {"MessageSid": "SM" + "e" * 32, "AccountSid": "AC" + "2" * 32, "From": "+59899123456",
                  "To": DID, "Body": TEXT, "NumMedia": "0"}
        signature = RequestValidator(TOKEN).compute_signature(f"{app.config['PUBLIC_BASE_URL']}{path}", params)
        answer = requests.post(web_b + path, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)
        assert answer.status_code == 200 and "<Response/>" in answer.text
        frames = []
        deadline = time.monotonic() + 60  # a generous bound for a slow machine, not a timing assertion
        while time.monotonic() < deadline and not any(TEXT in f for f in frames):
            try:
                frames.append(ws.recv())
            except websocket.WebSocketTimeoutException:
                break
    finally:
        ws.close()
    from webapp.models import Interaction

    db.session.expire_all()
    interaction = db.session.query(Interaction).one()
    assert interaction.agent_id == agent.id
    assert any(f'id="interaction-{interaction.id}"' in f and TEXT in f for f in frames), frames
