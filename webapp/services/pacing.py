"""Pacing shared by every worker on every machine: time slots reserved atomically in Redis.

`reserve(key, interval)` returns how long the caller must wait before its send; two
workers asking at once get consecutive slots, so "one every N ms" and "M messages a
second per provider" hold across all of them.
"""
from __future__ import annotations

import time
from typing import Any

# KEYS[1]: the slot key; ARGV: now (ms), interval (ms), ttl (ms). Returns the reserved slot (ms).
_RESERVE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local next_slot = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, next_slot)
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', tonumber(ARGV[3]))
return tostring(slot)
"""


class Pacer:
    def __init__(self, redis_client: Any):
        self.redis = redis_client
        self._script = redis_client.register_script(_RESERVE)

    def reserve(self, key: str, interval_s: float) -> float:
        """Reserve the next slot on `key`; returns seconds to wait (0 when the slot is now)."""
        if interval_s <= 0:
            return 0.0
        now_ms = time.time() * 1000.0
        interval_ms = interval_s * 1000.0
        slot = float(self._script(keys=[key], args=[f"{now_ms:.3f}", f"{interval_ms:.3f}",
                                                    int(max(interval_ms * 10, 60_000))]))
        return max(0.0, (slot - now_ms) / 1000.0)

    def wait(self, key: str, interval_s: float) -> float:
        delay = self.reserve(key, interval_s)
        if delay > 0:
            time.sleep(delay)
        return delay


def dialer_key(dialer_id: int) -> str:
    return f"conversa:pace:dialer:{dialer_id}"


def provider_key(provider_id: int) -> str:
    return f"conversa:pace:provider:{provider_id}"
