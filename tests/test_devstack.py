"""`make run`'s launcher on a fresh instance folder: it serves sign-in, the demo logins work, Ctrl-C stops it all
(the embedded Redis last, so nobody logs a lost Redis), and a second `make run` in the same folder leaves the
first alone."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
import requests

from tests.helpers import ROOT, free_port, redis_errors, wait_until


def devstack_env(instance: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "TEST_DATABASE_URL"}}
    env.update(INSTANCE_DIR=str(instance), DATABASE_URL=f"sqlite:///{instance / 'demo.db'}", PORT=str(port),
               DEMO_PASSWORD="demo-pass-9", SANDBOX_CUSTOMERS="0")
    return env


def start_devstack(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`make run` in a process group of its own, as a terminal's foreground job; output in `log_path`."""
    with log_path.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "webapp.devstack"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_up(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    def up() -> bool:
        assert proc.poll() is None, log_path.read_text()
        return "Conversa is up" in log_path.read_text()

    wait_until(up, 90, "`make run` to say it is up", step=0.1)


def refuses(port: int) -> bool:
    """Nothing accepts connections on loopback `port` any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, theirs, ...), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        children = {p for p, pp in parents.items() if pp == parent and p not in found}
        found |= children
        todo.extend(children)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_group(proc: subprocess.Popen[bytes], others: Iterable[int] = ()) -> None:
    """Leave nothing behind a failed test: the group, and any process that left it."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in others:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(10)


@pytest.mark.slow
def test_devstack_serves_the_demo_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "TEST_DATABASE_URL"}}
    env.update(INSTANCE_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}", PORT=str(port),
               DEMO_PASSWORD="demo-pass-9", SANDBOX_CUSTOMERS="0")
    proc = subprocess.Popen([sys.executable, "-m", "webapp.devstack"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    output = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            output.append(line)
            if "Conversa is up" in line:
                break
        text = "".join(output)
        assert f"http://127.0.0.1:{port}/login" in text, text
        with requests.Session() as http:
            assert http.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["status"] == "ok"
            page = http.get(f"http://127.0.0.1:{port}/login", timeout=5)
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
            signed_in = http.post(f"http://127.0.0.1:{port}/login", timeout=5, allow_redirects=False,
                                  data={"username": "admin", "password": "demo-pass-9", "csrf_token": token})
            assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"
        # Ctrl-C reaches the whole process group, as in a terminal.
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(20) == 0
        wait_until(lambda: refuses(port), 10, "the web server's port to close")
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/login", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        proc.stdout.close()


@pytest.mark.slow
def test_devstack_refuses_a_port_in_use_and_says_which(tmp_path):
    """A second `make run` on a taken port stops at once with the port named, starting nothing."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "TEST_DATABASE_URL"}}
        env.update(INSTANCE_DIR=str(tmp_path / "instance"), PORT=str(port))
        done = subprocess.run([sys.executable, "-m", "webapp.devstack"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr and "PORT=5001 make run" in done.stderr
    assert not (tmp_path / "instance").exists()  # nothing started, nothing written


@pytest.mark.slow
def test_ctrl_c_stops_the_web_server_and_worker_then_redis_without_errors(tmp_path, record_property):
    """Ctrl-C (SIGINT to the whole foreground group) stops every process within a bound, and the embedded
    Redis outlives the worker and web server: no process logs a lost Redis on the way out."""
    instance = tmp_path / "instance"
    log_path = tmp_path / "devstack.log"
    proc = start_devstack(devstack_env(instance, free_port()), log_path)
    children: set[int] = set()
    try:
        wait_up(proc, log_path)
        children = descendants(proc.pid)
        assert len(children) >= 4, children  # redis, the worker, gunicorn's arbiter and its worker
        os.killpg(proc.pid, signal.SIGINT)
        interrupted = time.monotonic()
        assert proc.wait(30) == 0, log_path.read_text()
        wait_until(lambda: not any(alive(pid) for pid in children), 30, "every child of `make run` to stop")
        record_property("ctrl_c_stopped", {"processes": len(children),
                                           "seconds": round(time.monotonic() - interrupted, 2)})
    finally:
        if proc.poll() is None or any(alive(pid) for pid in children):
            kill_group(proc, {pid for pid in children if alive(pid)})
    log = log_path.read_text()
    assert not redis_errors(log), log
    assert not (instance / "redis.sock").exists()


@pytest.mark.slow
def test_the_children_stop_when_make_run_is_killed(tmp_path):
    """Out of its process group, no child of `make run` outlives it when it is killed outright (SIGKILL)."""
    log_path = tmp_path / "devstack.log"
    proc = start_devstack(devstack_env(tmp_path / "instance", free_port()), log_path)
    children: set[int] = set()
    try:
        wait_up(proc, log_path)
        children = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_until(lambda: not any(alive(pid) for pid in children), 30, "every child to stop with its parent")
    finally:
        if proc.poll() is None or any(alive(pid) for pid in children):
            kill_group(proc, {pid for pid in children if alive(pid)})


@pytest.mark.slow
def test_a_second_make_run_in_the_same_folder_says_the_first_runs_and_leaves_it_alone(tmp_path):
    """On its own port or the first one's, a second `make run` on the same instance folder names the running
    one and exits non-zero, without touching its Redis socket, database or processes."""
    instance = tmp_path / "instance"
    port = free_port()
    first = start_devstack(devstack_env(instance, port), tmp_path / "first.log")
    try:
        wait_up(first, tmp_path / "first.log")
        sock = instance / "redis.sock"
        sock_before = sock.stat().st_ino
        children = descendants(first.pid)
        for second_port in (free_port(), port):
            log_path = tmp_path / f"second-{second_port}.log"
            second = start_devstack(devstack_env(instance, second_port), log_path)
            try:
                wait_until(lambda: second.poll() is not None, 60, "the second `make run` to exit")  # noqa: B023
            finally:
                if second.poll() is None:
                    kill_group(second, descendants(second.pid))
            said = log_path.read_text()
            assert second.returncode != 0, said
            assert "already running" in said and f"pid {first.pid}" in said, said
            assert f"http://127.0.0.1:{port}/login" in said, said
            assert "Conversa is up" not in said, said
        assert sock.stat().st_ino == sock_before  # the first's Redis socket, not a new server's
        assert all(alive(pid) for pid in children), children  # none of the first's processes stopped
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        assert health == {"status": "ok", "database": "ok", "redis": "ok"}, health
    finally:
        children = descendants(first.pid)
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGINT)
            try:
                first.wait(30)
            except subprocess.TimeoutExpired:
                pass
        if first.poll() is None or any(alive(pid) for pid in children):
            kill_group(first, {pid for pid in children if alive(pid)})
    assert first.returncode == 0
