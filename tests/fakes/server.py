"""A threaded loopback HTTP server that provider fakes build on.

Real sockets, HTTP/1.1 keep-alive and a daemon thread per connection, so an
adapter's pooled session is exercised as in production and a few hundred
requests a second are no trouble. Every request is recorded; failures
("timeout", "500", "429", "malformed", "close") can be switched on per test,
in-process (`fail_next`, `set_mode`) or from another process (`POST /_fake/mode`);
`set_mode("429", seconds=5)` is a gateway that rate limits for five seconds and then
recovers by itself (its Retry-After is `retry_after`).
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

MODES = ("timeout", "timeout_unprocessed", "500", "429", "malformed", "close")


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    form_lists: dict[str, list[str]] = field(default_factory=dict)
    json: Any = None
    at: float = 0.0  # time.monotonic() on arrival
    status: int = 0  # the HTTP status answered (0 while unanswered or when the connection was dropped)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lname), None)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "query": self.query, "headers": self.headers,
                "body": self.body.decode("utf-8", "replace"), "form": self.form, "json": self.json,
                "at": self.at, "status": self.status}


@dataclass
class Reply:
    """What a route answers."""

    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Reply:
        return cls(status, text.encode(), {"Content-Type": content_type})


@dataclass
class _Failure:
    mode: str
    remaining: int | None  # None: until switched off
    path: str | None  # only requests whose path contains this
    until: float | None = None  # time.monotonic() after which it is over by itself
    after: int = 0  # matching requests answered normally before it starts


Route = Callable[[Recorded, re.Match[str]], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30  # an idle keep-alive connection's thread ends after this

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def _handle(self) -> None:
        self.server.fake._dispatch(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], fake: FakeServer):
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.conn_lock:
                self.connections.discard(request)


class FakeServer:
    """Base fake: subclasses register routes and keep their gateway's state."""

    name = "fake"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, timeout_seconds: float = 1.5,
                 retry_after: str = "1"):
        self.host = host
        self.port = port
        self.timeout_seconds = timeout_seconds  # how long "timeout" mode stalls
        self.retry_after = retry_after  # the Retry-After "429" mode sends
        self.latency = 0.0  # seconds every API answer takes, as from a gateway across the internet
        self.in_flight = 0  # API requests being answered now
        self.max_in_flight = 0  # the most at once since the last reset
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self._failures: list[_Failure] = []
        self._routes: list[tuple[str, re.Pattern[str], Route]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.route("GET", r"/_fake/requests")(lambda req, m: Reply.json([r.to_dict() for r in self.api_requests()]))
        self.route("GET", r"/_fake/sent")(lambda req, m: Reply.json(self.sent()))
        self.route("POST", r"/_fake/mode")(self._control_mode)
        self.route("POST", r"/_fake/reset")(lambda req, m: (self.reset(), Reply.json({"ok": True}))[1])

    # -- lifecycle -------------------------------------------------------
    def start(self) -> FakeServer:
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.name}-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.conn_lock:
            open_connections = list(server.connections)
        for conn in open_connections:  # wake keep-alive threads blocked on read
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- routes ----------------------------------------------------------
    def route(self, method: str, pattern: str) -> Callable[[Route], Route]:
        def register(fn: Route) -> Route:
            self._routes.append((method, re.compile(pattern + r"\Z"), fn))
            return fn
        return register

    # -- failure modes -----------------------------------------------------
    def fail_next(self, n: int, mode: str, path: str | None = None, after: int = 0) -> None:
        """The next `n` API requests (optionally only those whose path contains `path`) fail in `mode`;
        with `after`, once that many more have been answered normally."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        with self.lock:
            self._failures.append(_Failure(mode, n, path, after=after))

    def set_mode(self, mode: str | None, path: str | None = None, seconds: float | None = None) -> None:
        """Every API request fails in `mode` until set_mode(None), or for `seconds` from now."""
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        until = time.monotonic() + seconds if seconds is not None else None
        with self.lock:
            self._failures = [f for f in self._failures if f.remaining is not None]
            if mode is not None:
                self._failures.append(_Failure(mode, None, path, until))

    def answered(self, status: int, path: str | None = None) -> list[Recorded]:
        """The API requests answered with this HTTP status (e.g. 429: how often it rate limited)."""
        return [r for r in self.api_requests(path) if r.status == status]

    def _take_failure(self, path: str) -> str | None:
        with self.lock:
            now = time.monotonic()
            self._failures = [f for f in self._failures if f.until is None or f.until > now]
            for failure in self._failures:
                if failure.path is not None and failure.path not in path:
                    continue
                if failure.after > 0:
                    failure.after -= 1
                    return None
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                return failure.mode
        return None

    def _control_mode(self, req: Recorded, match: re.Match[str]) -> Reply:
        data = req.json if isinstance(req.json, dict) else req.form
        mode = data.get("mode") or None
        if "timeout_seconds" in data:
            self.timeout_seconds = float(data["timeout_seconds"])
        if "retry_after" in data:
            self.retry_after = str(data["retry_after"])
        if "latency" in data:  # seconds every API answer takes from now on
            self.latency = float(data["latency"])
        if data.get("n"):
            self.fail_next(int(data["n"]), str(mode), data.get("path"))
        else:
            self.set_mode(mode, data.get("path"), float(data["seconds"]) if data.get("seconds") else None)
        return Reply.json({"ok": True})

    # -- what subclasses override -------------------------------------------
    def failure_reply(self, mode: str) -> Reply:
        """The gateway's own shape of a 500 / 429 answer."""
        if mode == "429":
            return Reply.json({"error": "too many requests"}, 429, {"Retry-After": self.retry_after})
        return Reply.json({"error": "internal error"}, 500)

    def malformed_reply(self, reply: Reply) -> Reply:
        return Reply(reply.status, b'{"sid": "SM', {"Content-Type": "application/json"})

    def preflight(self, req: Recorded) -> Reply | None:
        """An answer given before any failure mode applies (Dinstar's digest challenge)."""
        return None

    def sent(self) -> list[dict[str, Any]]:
        """The sends this fake accepted (subclasses keep them)."""
        return []

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self._failures.clear()
            self.max_in_flight = 0

    # -- request log ---------------------------------------------------------
    def api_requests(self, path: str | None = None, method: str | None = None) -> list[Recorded]:
        """Recorded requests other than the /_fake control ones."""
        with self.lock:
            return [r for r in self.requests if not r.path.startswith("/_fake/")
                    and (path is None or path in r.path) and (method is None or r.method == method)]

    # -- dispatch --------------------------------------------------------------
    def _dispatch(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        headers = dict(handler.headers.items())
        req = Recorded(handler.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                       headers, body, at=time.monotonic())
        ctype = (req.header("Content-Type") or "").lower()
        if "application/x-www-form-urlencoded" in ctype:
            req.form_lists = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            req.form = {k: v[-1] for k, v in req.form_lists.items()}
        elif body:
            try:
                req.json = json.loads(body)
            except ValueError:
                req.json = None
        with self.lock:
            self.requests.append(req)

        control = parts.path.startswith("/_fake/")
        if control:
            self._answer(handler, req, parts.path, control)
            return
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            self._answer(handler, req, parts.path, control)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _answer(self, handler: _Handler, req: Recorded, path: str, control: bool) -> None:
        early = None if control else self.preflight(req)
        if early is not None:  # an auth challenge: does not use up a failure
            self._write(handler, early, req)
            return
        mode = None if control else self._take_failure(path)
        if mode == "close":
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if mode == "timeout_unprocessed":
            time.sleep(self.timeout_seconds)
            self._write(handler, self.failure_reply("500"), req)
            return
        if mode in ("500", "429"):
            self._write(handler, self.failure_reply(mode), req)
            return
        reply = self._route(req)
        if mode == "timeout":  # processed, but the answer comes too late
            time.sleep(self.timeout_seconds)
        if mode == "malformed":
            reply = self.malformed_reply(reply)
        self._write(handler, reply, req)

    def _route(self, req: Recorded) -> Reply:
        allowed = False
        for method, pattern, fn in self._routes:
            match = pattern.match(req.path)
            if match is None:
                continue
            allowed = True
            if method == req.method:
                try:
                    return fn(req, match)
                except Exception as exc:  # noqa: BLE001 - a fake's bug must show up as a 500, not a hang
                    return Reply.json({"error": f"fake crashed: {exc!r}"}, 500)
        return Reply.json({"error": "method not allowed" if allowed else "not found"}, 405 if allowed else 404)

    @staticmethod
    def _write(handler: _Handler, reply: Reply, req: Recorded | None = None) -> None:
        if req is not None:
            req.status = reply.status
        body = reply.body
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode()
        head = [f"HTTP/1.1 {reply.status} {handler.responses.get(reply.status, ('',))[0]}"]
        headers = {"Content-Type": "application/json", **reply.headers, "Content-Length": str(len(body))}
        head += [f"{k}: {v}" for k, v in headers.items()]
        if handler.close_connection:
            head.append("Connection: close")
        try:  # one write: headers and body in a single segment
            handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True


def basic_credentials(req: Recorded) -> tuple[str, str] | None:
    """(user, password) from a Basic Authorization header."""
    value = req.header("Authorization") or ""
    if not value.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, password


def post_form(url: str, data: dict[str, str], headers: dict[str, str] | None = None) -> requests.Response:
    """POST a form to a webhook (the fakes' way of calling the app back)."""
    with requests.Session() as session:
        return session.post(url, data=data, headers=headers or {}, timeout=10)


def post_json(url: str, payload: Any, headers: dict[str, str] | None = None) -> requests.Response:
    with requests.Session() as session:
        body = json.dumps(payload).encode()
        return session.post(url, data=body, headers={"Content-Type": "application/json", **(headers or {})},
                            timeout=10)


def run_standalone(factory: Callable[[argparse.Namespace], FakeServer], description: str,
                   extra: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """`python -m tests.fakes.<gateway> --port N`: print the URL, serve until killed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    fake = factory(args)
    fake.host, fake.port = args.host, args.port
    fake.start()
    print(fake.url, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    fake.stop()
