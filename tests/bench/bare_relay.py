"""The floor bench_fanout compares against: the barest flask-sock + Redis pub/sub relay.

One subscriber thread puts each message on every socket's queue; each socket's thread sends what it gets.
No sign-in, no topics, no rendering. Served by gunicorn exactly like the app (`bare_relay:app`), on the
channel named by BARE_RELAY_CHANNEL, so the bench measures both with the same client in the same run.
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Any

import redis
from flask import Flask
from flask_sock import Sock

app = Flask(__name__)
sock = Sock(app)
CHANNEL = os.environ.get("BARE_RELAY_CHANNEL", "bare-relay")
_queues: set[queue.Queue[str]] = set()
_lock = threading.Lock()
_ready = threading.Event()


def _relay() -> None:
    pubsub = redis.Redis.from_url(os.environ["REDIS_URL"]).pubsub()
    pubsub.subscribe(CHANNEL)
    for message in pubsub.listen():
        if message["type"] == "subscribe":
            _ready.set()
        if message["type"] != "message":
            continue
        with _lock:
            targets = list(_queues)
        for q in targets:
            q.put(message["data"].decode())


threading.Thread(target=_relay, daemon=True).start()


@app.get("/healthz")
def healthz() -> str:
    return "ok"


@sock.route("/ws")
def relay(ws: Any) -> None:
    q: queue.Queue[str] = queue.Queue()
    with _lock:
        _queues.add(q)
    _ready.wait(5)
    ws.send('<div id="live-status" data-live="on"></div>')
    try:
        while True:
            ws.send(q.get())
    finally:
        with _lock:
            _queues.discard(q)
