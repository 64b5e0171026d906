"""`make run`'s launcher on a fresh instance folder: it serves sign-in, the demo logins work, Ctrl-C stops it all."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.services import free_port

ROOT = Path(__file__).resolve().parent.parent


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
        time.sleep(0.3)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/login", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        proc.stdout.close()


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
