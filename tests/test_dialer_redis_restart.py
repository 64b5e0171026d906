"""D3 with Redis restarted mid-send: pages keep answering, the dialer resumes by itself, nothing twice."""
from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.helpers import (
    FAST_ENGINE,
    IsolatedClient,
    free_port,
    process_env,
    queue_bulk,
    redis_binary,
    redis_errors,
    sends_per_destination,
    spool_states,
    start_worker,
    stop_worker,
    wait_until,
)

TOTAL = 300


class OwnRedis:
    """A redis-server of this test alone, on a TCP port, that can be stopped and started again."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen([redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, "redis-server to listen")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.mark.slow
def test_redis_restart_mid_send(app: Any, make: Any, own_redis: OwnRedis, tmp_path: Path) -> None:
    """Stop Redis while a dialer sends: /login still answers; after a restart on the same port the
    dialer resumes by itself and every message is sent exactly once."""
    from config import TestConfig
    from webapp import create_app

    class Cfg(TestConfig):
        SQLALCHEMY_DATABASE_URI = app.config["SQLALCHEMY_DATABASE_URI"]
        REDIS_URL = own_redis.url

    web = create_app(Cfg)
    web.test_client_class = IsolatedClient
    client = web.test_client()
    with FakeTwilio() as fake:
        provider = make.provider("twilio", credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
                                 base_url=fake.url, sender="+15005550006", max_per_second=0)
        dialer = make.dialer(make.group(), provider, interval_ms=20, running=True)
        numbers = queue_bulk(app, dialer.id, TOTAL)
        env = {**process_env(app), **FAST_ENGINE, "REDIS_URL": own_redis.url}
        worker = start_worker(env, tmp_path / "worker.log")
        try:
            wait_until(lambda: fake.sent_count() >= 60, 90, "the worker to send 60")
            own_redis.stop()
            during = fake.sent_count()
            assert during < TOTAL, "Redis must go away mid-batch"
            assert client.get("/login").status_code == 200
            assert client.get("/healthz").status_code == 503
            log = tmp_path / "worker.log"
            wait_until(lambda: redis_errors(log.read_text(errors="replace")), 60,
                       "the worker to meet the outage (its job fails, its clock waits)")
            stalled = fake.sent_count()
            assert stalled < TOTAL
            own_redis.start()
            wait_until(lambda: spool_states(app, dialer.id)[2] == TOTAL, 120, "every message SENT")
            assert client.get("/healthz").status_code == 200
        finally:
            stop_worker(worker)
        with web.app_context():  # this second app's pool holds connections of its own
            from webapp.extensions import db

            db.engine.dispose()
        per_destination = sends_per_destination(fake)
        assert sorted(per_destination) == sorted(numbers)
        assert set(per_destination.values()) == {1}
        assert spool_states(app, dialer.id) == {2: TOTAL}
