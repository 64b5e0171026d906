"""The per-process fan-out: one Redis subscription, many local sockets.

Every web process runs one hub thread. It subscribes to all live topics and
hands each event to the local sockets that asked for its topic. The hub holds
no state that matters: a restarted process or Redis loses only in-flight
events, and pages poll to catch up.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import defaultdict
from typing import Any

from .events import CHANNEL_PREFIX

log = logging.getLogger(__name__)


class Subscriber:
    """One socket's mailbox."""

    def __init__(self, topics: set[str], maxsize: int = 1000):
        self.topics = set(topics)
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=maxsize)
        self.dropped = 0

    def deliver(self, event: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(event)
        except queue.Full:  # a stuck client must not stall the others
            self.dropped += 1


class Hub:
    def __init__(self, redis_factory: Any):
        self._redis_factory = redis_factory
        self._lock = threading.Lock()
        self._by_topic: dict[str, set[Subscriber]] = defaultdict(set)
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def subscribe(self, topics: set[str]) -> Subscriber:
        """A mailbox for the topics; `connected` tells when events published from now on will reach it."""
        sub = Subscriber(topics)
        with self._lock:
            for topic in sub.topics:
                self._by_topic[topic].add(sub)
        self._ensure_thread()
        return sub

    def add_topics(self, sub: Subscriber, topics: set[str]) -> None:
        with self._lock:
            for topic in topics - sub.topics:
                sub.topics.add(topic)
                self._by_topic[topic].add(sub)

    def remove_topics(self, sub: Subscriber, topics: set[str]) -> None:
        with self._lock:
            for topic in topics & sub.topics:
                sub.topics.discard(topic)
                subs = self._by_topic.get(topic)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._by_topic[topic]

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            for topic in sub.topics:
                subs = self._by_topic.get(topic)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._by_topic[topic]

    def dispatch(self, event: dict[str, Any]) -> int:
        with self._lock:
            targets = list(self._by_topic.get(event.get("topic", ""), ()))
        for sub in targets:
            sub.deliver(event)
        return len(targets)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="conversa-live-hub", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        delay = 0.2
        while True:
            pubsub = None
            try:
                pubsub = self._redis_factory().pubsub()
                pubsub.psubscribe(CHANNEL_PREFIX + "*")
                delay = 0.2
                for message in pubsub.listen():
                    if message.get("type") == "psubscribe":
                        # Redis confirmed the subscription: from now on no event is missed.
                        self.connected.set()
                    if message.get("type") != "pmessage":
                        continue
                    try:
                        self.dispatch(json.loads(message["data"]))
                    except (ValueError, KeyError) as exc:
                        log.warning("bad live event: %s", exc)
            except Exception as exc:  # Redis went away: retry with backoff, forever
                self.connected.clear()
                log.warning("live hub lost Redis: %s", exc)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # noqa: BLE001 - closing a dead connection
                        pass
