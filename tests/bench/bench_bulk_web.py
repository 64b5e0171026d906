"""A 1,000,000-row bulk file confirmed from the web page, against `flask dialer import` of the same file.

One gunicorn (gthread) web process and one worker (`python -m workers`) on PostgreSQL (SQLite when no
PostgreSQL answers) + Redis. The reference: `flask dialer import FILE.csv` on the same database, its wall
time (interpreter start included). Then the spool is emptied and a supervisor signs in over HTTP, uploads
the same file on the dialer's dashboard (preview), and confirms it; the load runs in the worker. Meanwhile
a second client keeps asking for other pages (the dialer list and the dashboard) and the loads block (the
polling fallback), and a websocket on the dialer's topic counts the progress blocks pushed.

Reported: the preview's time (still in the web request), how long the confirm took to answer, the load's
time (confirm to "done" as the page sees it, and the worker's own claimed-to-finished), its ratio to the
CLI (target ≤ 1.5), the progress values seen (polled and pushed), the other pages' latency while it loads
(p50/p95/max) and the load average. `BENCH_BULK_ROWS=200000` for a quicker run.

    python -m tests.bench bulk_web
"""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from tests.bench.bench_dispatch import ROOT, Stack
from tests.bench.bench_fanout import _gunicorn
from tests.bench.bench_ingest import write_file

ROWS = int(os.environ.get("BENCH_BULK_ROWS", "1000000"))
TARGET_RATIO = 1.5
PASSWORD = "secret-pass-1"
DIALER = "campsms"


def seed(stack: Stack) -> int:
    """A supervisor, a sandbox dialer with DNCR on, and a 2,000-number do-not-contact list."""
    from webapp.extensions import db
    from webapp.models import Dialer, Provider, SecurityGroup, User
    from webapp.services import dnc

    with stack.app.app_context():
        group = SecurityGroup(name="bulk")
        provider = Provider(name="bulk", type="sandbox", sender="+59829000000", options={})
        provider.credentials = {}
        sup = User(username="sup", name="Supervisor", role="supervisor", password_hash="!")
        sup.set_password(PASSWORD)
        sup.security_groups.append(group)
        db.session.add_all([group, provider, sup])
        db.session.flush()
        dialer = Dialer(name=DIALER, security_group_id=group.id, provider_id=provider.id, enabled=True, dncr=True)
        db.session.add(dialer)
        db.session.flush()
        for i in range(2000):
            dnc.add(f"0991{i:05d}", source="manual")
        db.session.commit()
        return dialer.id


def spool_rows(stack: Stack) -> int:
    from webapp.extensions import db

    with stack.app.app_context():
        n = db.session.scalar(sa.text("SELECT count(*) FROM sms_spool"))
        db.session.remove()
    return int(n)


def empty_spool(stack: Stack) -> None:
    from webapp.extensions import db

    with stack.app.app_context():
        db.session.execute(sa.text("DELETE FROM sms_spool"))
        db.session.execute(sa.text("DELETE FROM spool_uploads"))
        db.session.commit()
        db.session.remove()
        if stack.database == "postgresql":  # the web load starts from a table as clean as the CLI's
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE sms_spool")


def run_cli(stack: Stack, path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "flask", "dialer", "import", str(path)], cwd=ROOT,
                            env=dict(stack.env, FLASK_APP="wsgi:app"), capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"flask dialer import failed: {result.stderr[-2000:]}")
    return {"seconds": round(seconds, 2), "loaded": json.loads(result.stdout)["loaded"]}


def sign_in(base: str) -> requests.Session:
    s = requests.Session()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', s.get(f"{base}/login").text).group(1)
    s.post(f"{base}/login", data={"username": "sup", "password": PASSWORD, "csrf_token": token}).raise_for_status()
    return s


class Pushed(threading.Thread):
    """The dashboard's socket: each loads block pushed, with its state and rows."""

    def __init__(self, url: str, cookie: str):
        import websocket

        super().__init__(daemon=True)
        self.ws = websocket.create_connection(url, cookie=cookie, timeout=600)
        assert 'data-live="on"' in self.ws.recv()
        self.blocks: list[tuple[str, int]] = []

    def run(self) -> None:
        try:
            while True:
                frame = self.ws.recv()
                match = re.search(r'class="bulk-load"[^>]*data-state="(\w+)"\s+data-rows="(\d+)"', frame)
                if match:
                    self.blocks.append((match.group(1), int(match.group(2))))
        except Exception:  # noqa: BLE001 - closed at the end
            return


def ms_stats(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": round(statistics.median(values), 1),
            "p95_ms": round(values[min(len(values) - 1, int(len(values) * 0.95))], 1), "max_ms": round(values[-1], 1)}


def run_web(stack: Stack, base: str, dialer_id: int, path: Path) -> dict[str, Any]:
    s = sign_in(base)
    page = s.get(f"{base}/dialers/{dialer_id}").text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    started = time.perf_counter()
    with path.open("rb") as fh:
        html = s.post(f"{base}/dialers/{dialer_id}/bulk", data={"csrf_token": csrf},
                      files={"file": (path.name, fh, "text/csv")}, timeout=1800).text
    preview_seconds = time.perf_counter() - started
    confirm = re.search(rf'action="(/dialers/{dialer_id}/bulk/[A-Za-z0-9_-]+/confirm)"', html)
    if confirm is None:
        raise RuntimeError(f"no preview: {html[:500]}")
    cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
    pushed = Pushed(base.replace("http://", "ws://") + f"/ws?topics=dialer:{dialer_id}", cookie)
    pushed.start()

    other = sign_in(base)
    started = time.perf_counter()
    answer = s.post(base + confirm.group(1), data={"csrf_token": csrf}, allow_redirects=False, timeout=600)
    confirm_ms = (time.perf_counter() - started) * 1000
    assert answer.status_code == 302, answer.status_code
    polled: list[tuple[str, int]] = []
    pages: list[float] = []
    deadline = time.monotonic() + 1800
    state = "queued"
    while state != "done" and time.monotonic() < deadline:
        for url in (f"{base}/dialers", f"{base}/dialers/{dialer_id}"):
            t0 = time.perf_counter()
            other.get(url, timeout=60).raise_for_status()
            pages.append((time.perf_counter() - t0) * 1000)
        block = other.get(f"{base}/dialers/{dialer_id}/loads", headers={"HX-Request": "true"}, timeout=60).text
        match = re.search(r'class="bulk-load"[^>]*data-state="(\w+)"\s+data-rows="(\d+)"', block)
        if match:
            state = match.group(1)
            polled.append((state, int(match.group(2))))
            if state in ("refused", "failed"):
                raise RuntimeError(f"the load ended {state}: {block[:800]}")
        time.sleep(0.25)
    seen_seconds = time.perf_counter() - started
    time.sleep(0.5)  # the last pushed block
    pushed.ws.close()
    from webapp.extensions import db
    from webapp.models import StagedUpload

    with stack.app.app_context():
        upload = db.session.scalar(sa.select(StagedUpload).order_by(StagedUpload.claimed_at.desc()))
        worker_seconds = (upload.finished_at - upload.claimed_at).total_seconds()
        loaded = (upload.result or {}).get("loaded")
        db.session.remove()
    running_polled = sorted({rows for st, rows in polled if st == "running"})
    running_pushed = sorted({rows for st, rows in pushed.blocks if st == "running"})
    return {
        "preview_seconds": round(preview_seconds, 2), "confirm_answer_ms": round(confirm_ms, 1),
        "load_seconds_seen_by_page": round(seen_seconds, 2), "load_seconds_worker": round(worker_seconds, 2),
        "loaded": loaded,
        "progress_polled": {"distinct_running_values": len(running_polled), "first": running_polled[:3],
                            "last": running_polled[-3:]},
        "progress_pushed": {"blocks": len(pushed.blocks), "distinct_running_values": len(running_pushed),
                            "first": running_pushed[:3], "last": running_pushed[-3:]},
        "other_pages_while_loading": ms_stats(pages),
    }


def run() -> dict[str, Any]:
    load_before = os.getloadavg()
    with Stack() as stack:
        dialer_id = seed(stack)
        path = stack.tmp / "BULK1M.csv"
        written = write_file(path, ROWS, dialers=(DIALER,))
        cli = run_cli(stack, path)
        assert spool_rows(stack) == ROWS == cli["loaded"], "the CLI loaded a different count"
        empty_spool(stack)
        log = (stack.tmp / "worker.log").open("wb")
        stack.procs.append(subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=stack.env,
                                            stdout=log, stderr=subprocess.STDOUT))
        log.close()
        _proc, port = _gunicorn(stack, "wsgi:app", 32, ROOT, "web")
        web = run_web(stack, f"http://127.0.0.1:{port}", dialer_id, path)
        assert spool_rows(stack) == ROWS == web["loaded"], "the web load loaded a different count"
        database = stack.database
    ratio = round(web["load_seconds_seen_by_page"] / cli["seconds"], 2)
    return {
        "rows": ROWS, "database": database, **written,
        "cli_flask_dialer_import": {**cli, "rows_per_s": round(ROWS / cli["seconds"])},
        "web_confirm": {**web, "rows_per_s": round(ROWS / web["load_seconds_seen_by_page"])},
        "ratio_web_to_cli": ratio, "target_ratio": TARGET_RATIO,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "ok": ratio <= TARGET_RATIO and web["progress_pushed"]["distinct_running_values"] > 1,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
