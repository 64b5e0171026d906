"""Webhook → agent browser latency with 50 agents connected over websockets.

gunicorn (gthread) on loopback and one worker process (`python -m workers`) on PostgreSQL + Redis;
50 agents sign in over HTTP and hold a websocket each (websocket-client, their session cookie). Each
agent is the only member of its own campaign (its own DID), so every customer message routes to a
known agent. Signed Twilio webhooks are posted one every 200 ms (a busy center; faster than one worker drains measures the queue, not the path); the latency of one is the time from
just before its POST to the frame carrying its text arriving at that agent's socket (the inbox list
item with the new snippet). Target p95 ≤ 150 ms.

`python -m tests.bench.bench_latency` prints the JSON; `run()` returns it.
"""
from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.bench.bench_dispatch import ROOT, Stack
from tests.helpers import free_port, wait_healthy

AGENTS = 50
WEBHOOKS = 150
INTERVAL = 0.2
TARGET_MS = 150
PASSWORD = "secret-pass-1"
BIN = Path(sys.executable).parent


def seed(stack: Stack) -> tuple[int, str, list[tuple[str, str]]]:
    """One Twilio provider; per agent a campaign with its own DID. Returns provider id, token, (user, DID)."""
    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN
    from webapp.extensions import db
    from webapp.models import Campaign, Membership, Provider, SecurityGroup, User, VoiceCampaign

    with stack.app.app_context():
        group = SecurityGroup(name="latency")
        provider = Provider(name="lat-twilio", type="twilio", sender="+15005550006", base_url=stack.fake_url,
                            max_per_second=0, options={})
        provider.credentials = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
        voice = VoiceCampaign(name="voz")
        db.session.add_all([group, provider, voice])
        db.session.flush()
        pairs = []
        for n in range(AGENTS):
            did = f"+1500555{n:04d}"
            agent = User(username=f"lat{n:02d}", name=f"Agente {n}", role="agent", password_hash="!")
            agent.set_password(PASSWORD)
            voice.members.append(agent)
            campaign = Campaign(name=f"lat-{n:02d}", security_group_id=group.id, provider_id=provider.id, did=did,
                                strategy="linear_nopause", max_interactions_per_agent=1000)
            db.session.add_all([agent, campaign])
            db.session.flush()
            db.session.add(Membership(campaign_id=campaign.id, user_id=agent.id))
            pairs.append((agent.username, did))
        db.session.commit()
        return provider.id, AUTH_TOKEN, pairs


class Agent(threading.Thread):
    """One agent's socket: records when each awaited text first arrives."""

    def __init__(self, base: str, username: str):
        super().__init__(daemon=True)
        import websocket

        http = requests.Session()
        page = http.get(f"{base}/login", timeout=30)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
        answer = http.post(f"{base}/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                           allow_redirects=False, timeout=30)
        assert answer.status_code == 302, answer.status_code
        cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
        self.ws = websocket.create_connection(base.replace("http", "ws") + "/ws", cookie=cookie, timeout=60)
        self.first = self.ws.recv()  # the live-status frame: the socket is subscribed
        self.arrived: dict[str, float] = {}
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            try:
                frame = self.ws.recv()
            except Exception:  # noqa: BLE001 - closed at the end
                return
            now = time.perf_counter()
            for token in re.findall(r"lat-\d+-x", frame if isinstance(frame, str) else frame.decode()):
                self.arrived.setdefault(token, now)


def run() -> dict[str, Any]:
    from twilio.request_validator import RequestValidator

    with Stack() as stack:
        provider_id, auth_token, pairs = seed(stack)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(stack.env, PUBLIC_BASE_URL=base, LOG_LEVEL="WARNING")
        log = open(stack.tmp / "web.log", "wb")  # noqa: SIM115 - closed below
        stack.procs.append(subprocess.Popen(
            [str(BIN / "gunicorn"), "--worker-class", "gthread", "--workers", "2", "--threads", "64",
             "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2", "wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        stack.procs.append(subprocess.Popen([sys.executable, "-m", "workers", "--no-clock"], cwd=ROOT, env=env,
                                            stdout=log, stderr=subprocess.STDOUT))
        wait_healthy(base, stack.procs[-2], time.monotonic() + 60)
        agents = [Agent(base, username) for username, _ in pairs]
        for a in agents:
            a.start()
        url = f"{base}/webhooks/{provider_id}/inbound"
        validator = RequestValidator(auth_token)
        http = requests.Session()
        sent: dict[str, tuple[int, float]] = {}
        started = time.perf_counter()
        for i in range(WEBHOOKS):
            n = i % AGENTS
            token = f"lat-{i}-x"
            params = {"MessageSid": f"SM{i:032d}", "AccountSid": "AC" + "0" * 31 + "1",
                      "From": f"+598991{(i // AGENTS) % 3:02d}{n:03d}", "To": pairs[n][1], "Body": f"Hola {token}",
                      "NumMedia": "0", "ApiVersion": "2010-04-01"}
            headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
            t0 = time.perf_counter()
            assert http.post(url, data=params, headers=headers, timeout=30).status_code == 200
            sent[token] = (n, t0)
            time.sleep(max(0.0, started + (i + 1) * INTERVAL - time.perf_counter()))
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline and any(t not in agents[n].arrived for t, (n, _) in sent.items()):
            time.sleep(0.05)
        latencies = sorted((agents[n].arrived[t] - t0) * 1000 for t, (n, t0) in sent.items() if t in agents[n].arrived)
        for a in agents:
            a.stop = True
            a.ws.close()
        log.close()
        if not latencies:
            return {"error": "no frame arrived", "log": (stack.tmp / "web.log").read_text()[-2000:]}
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
        return {"database": stack.database, "agents": AGENTS, "webhooks": WEBHOOKS, "arrived": len(latencies),
                "interval_ms": INTERVAL * 1000, "p50_ms": round(statistics.median(latencies), 1),
                "p95_ms": round(p95, 1), "max_ms": round(latencies[-1], 1), "target_p95_ms": TARGET_MS,
                "meets_target": p95 <= TARGET_MS and len(latencies) == WEBHOOKS}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
