"""Memory of a web process refusing oversized forged webhooks (issue 10, point 6).

One gunicorn gthread worker (one process, so its RSS is the whole story) on PostgreSQL (or SQLite) +
Redis. Each scenario streams 150 MB forged-signature POSTs in 64 KB chunks from raw sockets, to the
Twilio (form) and the WhatsApp Cloud (JSON) webhook, once declared by Content-Length and once with
chunked transfer-encoding and no length; one at a time and six at once. Before each scenario the worker's
peak RSS mark is reset (/proc/<pid>/clear_refs); the figures are its RSS before, its peak during and its
RSS after, with the status each client got and how much of its body it had sent when the answer came.
The reference, in the same run, is ordinary traffic: 200 small signed Twilio webhooks through the same
worker. Nothing may be queued by a forged request.

`python -m tests.bench.bench_webhook_body` prints the JSON; `run()` returns it (tests/bench/__main__.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.bench.bench_dispatch import ROOT, Stack
from tests.helpers import free_port, stream_post, wait_healthy

BODY = 150 * 1024 * 1024
CONCURRENT = 6
REFERENCE_WEBHOOKS = 200
BIN = Path(sys.executable).parent
AUTH_TOKEN = "bench-twilio-token"
APP_SECRET = "bench-meta-secret"


def seed(stack: Stack) -> dict[str, int]:
    from webapp.extensions import db
    from webapp.models import Campaign, Provider, SecurityGroup

    with stack.app.app_context():
        group = SecurityGroup(name="bench-webhooks")
        twilio = Provider(name="bench-twilio", type="twilio", sender="+15005550006", options={})
        twilio.credentials = {"account_sid": "AC" + "0" * 32, "auth_token": AUTH_TOKEN}
        meta = Provider(name="bench-meta", type="whatsapp_cloud", channel="whatsapp", sender="15005550007",
                        options={"phone_number_id": "1"})
        meta.credentials = {"access_token": "t", "app_secret": APP_SECRET, "verify_token": "v"}
        db.session.add_all([group, twilio, meta])
        db.session.flush()
        db.session.add_all([Campaign(name="bench-sms", security_group_id=group.id, provider_id=twilio.id,
                                     did="+15005550006"),
                            Campaign(name="bench-wa", security_group_id=group.id, provider_id=meta.id,
                                     did="+15005550007")])
        db.session.commit()
        return {"twilio": twilio.id, "whatsapp_cloud": meta.id}


def _status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = round(int(value.split()[0]) / 1024, 1)
    return found


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _worker_pid(master: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def _forged(kind: str, provider_id: int, base: str) -> tuple[str, dict[str, str]]:
    url = f"{base}/webhooks/{provider_id}/inbound"
    if kind == "twilio":
        return url, {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "Zm9yZ2Vk"}
    return url, {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + "0" * 64}


def _scenario(worker: int, posts: list[tuple[str, dict[str, str]]], chunked: bool) -> dict[str, Any]:
    peak_reset = _reset_peak(worker)
    before = _status(worker)
    results: list[tuple[int | None, int]] = [(None, 0)] * len(posts)

    def post(i: int, url: str, headers: dict[str, str]) -> None:
        results[i] = stream_post(url, headers, BODY, chunked=chunked, timeout=120)

    started = time.perf_counter()
    threads = [threading.Thread(target=post, args=(i, url, headers)) for i, (url, headers) in enumerate(posts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    time.sleep(0.5)  # let the worker drop what it was holding before reading "after"
    after = _status(worker)
    return {"requests": len(posts), "chunked": chunked, "statuses": sorted(str(s) for s, _ in results),
            "client_sent_mb_max": round(max(sent for _, sent in results) / 2**20, 1),
            "rss_before_mb": before["VmRSS"], "peak_mb": after["VmHWM"] if peak_reset else None,
            "peak_over_before_mb": round(after["VmHWM"] - before["VmRSS"], 1) if peak_reset else None,
            "rss_after_mb": after["VmRSS"], "seconds": round(elapsed, 2)}


def _reference(worker: int, base: str, provider_id: int) -> dict[str, Any]:
    """Ordinary traffic: small signed Twilio webhooks, one after another."""
    from twilio.request_validator import RequestValidator

    peak_reset = _reset_peak(worker)
    before = _status(worker)
    url = f"{base}/webhooks/{provider_id}/inbound"
    validator = RequestValidator(AUTH_TOKEN)
    http = requests.Session()
    codes = set()
    for i in range(REFERENCE_WEBHOOKS):
        params = {"MessageSid": f"SM{i:032d}", "AccountSid": "AC" + "0" * 32, "From": f"+59899{i:06d}",
                  "To": "+15005550006", "Body": f"Hola {i}", "NumMedia": "0"}
        codes.add(http.post(url, data=params, headers={"X-Twilio-Signature": validator.compute_signature(url, params)},
                            timeout=30).status_code)
    after = _status(worker)
    return {"requests": REFERENCE_WEBHOOKS, "statuses": sorted(codes), "rss_before_mb": before["VmRSS"],
            "peak_mb": after["VmHWM"] if peak_reset else None,
            "peak_over_before_mb": round(after["VmHWM"] - before["VmRSS"], 1) if peak_reset else None,
            "rss_after_mb": after["VmRSS"]}


def run() -> dict[str, Any]:
    load_before = os.getloadavg()
    with Stack() as stack:
        providers = seed(stack)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(stack.env, PUBLIC_BASE_URL=base)
        log = open(stack.tmp / "web.log", "wb")  # noqa: SIM115 - closed below
        master = subprocess.Popen(
            [str(BIN / "gunicorn"), "--worker-class", "gthread", "--workers", "1", "--threads", "16",
             "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2", "--timeout", "120", "wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        stack.procs.append(master)
        wait_healthy(base, master, time.monotonic() + 60)
        worker = _worker_pid(master.pid)
        queue = stack.app.extensions["conversa_queues"]["inbound"]  # where webhooks queue their jobs
        out: dict[str, Any] = {"database": stack.database, "body_mb": BODY // 2**20,
                               "webhook_max_bytes": stack.app.config.get("WEBHOOK_MAX_BYTES"),
                               "reference": _reference(worker, base, providers["twilio"])}
        queue.empty()
        for kind in ("twilio", "whatsapp_cloud"):
            for chunked in (False, True):
                name = f"{kind}_{'chunked' if chunked else 'content_length'}"
                out[f"{name}_x1"] = _scenario(worker, [_forged(kind, providers[kind], base)], chunked)
                out[f"{name}_x{CONCURRENT}"] = _scenario(
                    worker, [_forged(kind, providers[kind], base)] * CONCURRENT, chunked)
        out["queued_by_forged"] = queue.count
        log.close()
    load_after = os.getloadavg()
    out["load_average"] = {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]}
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
