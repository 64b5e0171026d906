"""Pacing shared by every worker on every machine: time slots reserved atomically in Redis.

`reserve(key, interval)` returns how long the caller must wait before its send; two
workers asking at once get consecutive slots, so "one every N ms" and "M messages a
second per provider" hold across all of them. `GatewayLimits` is the same idea for a
gateway that says "too many requests": every worker slows down together.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
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


# -- a gateway's rate limit, shared by every worker ------------------------------------------
# When a gateway answers 429 (or its own "too many requests" code) every worker sending through that
# provider slows down together: one Redis hash per provider holds the limit while it lasts.
#   until     no request before this moment (ms): at least Retry-After, growing with each refusal in a row
#             (the gateway is closed for a while: the backoff)
#   interval  the pace imposed meanwhile (ms between requests, all workers together): doubles on a refusal
#             that follows an accepted request (we were too fast), shrinks by SPEEDUP on each accepted one
#   next      the next free slot at that pace (ms)
#   since / last / hits / strikes   for the dashboard and the backoff: first and last refusal, how many,
#             how many in a row without an accepted request between them
# A refusal of a request sent before the last known refusal (several were on their way at once) adds to
# the count and the wait but not to the backoff. The limit ends when an accepted request finds the pace
# back at its floor and no refusal for `quiet` seconds, or, with nothing sent, when its key expires.
LIMIT_START_INTERVAL = 0.1  # seconds between requests after a first refusal (10 a second)
LIMIT_MAX_INTERVAL = 60.0
LIMIT_SPEEDUP = 0.85

# KEYS[1]: the limit; ARGV: now, sent_at, retry_after, backoff, max_backoff, start, max_interval, linger
# (ms), jitter (0..1). Returns {wait ms as text, 1 when this refusal started the limit}.
_REFUSED = """
local now = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'since', 'last', 'until', 'interval', 'strikes', 'hits')
local started = not h[1]
local strikes = tonumber(h[5] or '0')
local interval = tonumber(h[4] or '0')
local wait = tonumber(ARGV[3])
if started or tonumber(ARGV[2]) >= tonumber(h[2]) then
  strikes = strikes + 1
  if strikes == 1 then  -- refused after an accepted request: we were too fast at this pace
    interval = math.min(tonumber(ARGV[7]), math.max(tonumber(ARGV[6]), interval * 2))
  end
  local backoff = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ (strikes - 1)) * (1 + 0.2 * tonumber(ARGV[9]))
  wait = math.max(wait, backoff)
end
local not_before = math.max(tonumber(h[3] or '0'), now + wait)
redis.call('HSET', KEYS[1], 'since', h[1] or ARGV[1], 'last', ARGV[1], 'until', tostring(not_before),
           'interval', tostring(interval), 'strikes', tostring(strikes), 'hits', tostring(tonumber(h[6] or '0') + 1))
redis.call('PEXPIRE', KEYS[1], math.ceil(not_before - now + tonumber(ARGV[8])))
return {tostring(not_before - now), started and 1 or 0}
"""

# ARGV: now, sent_at, floor (ms), quiet (ms), speedup. Returns 0 no limit, 1 still limited, 2 limit over.
_ACCEPTED = """
local h = redis.call('HMGET', KEYS[1], 'last', 'interval')
if not h[1] then return 0 end
local now = tonumber(ARGV[1])
local last = tonumber(h[1])
if tonumber(ARGV[2]) < last then return 1 end
local floor = tonumber(ARGV[3])
local interval = math.max(floor, tonumber(h[2]) * tonumber(ARGV[5]))
if interval <= floor and now - last >= tonumber(ARGV[4]) then
  redis.call('DEL', KEYS[1])
  return 2
end
redis.call('HSET', KEYS[1], 'interval', tostring(interval), 'strikes', '0')
return 1
"""

# ARGV: now, max_wait (ms). Returns the wait (ms) for this caller's slot, "-1" when beyond max_wait (nothing
# reserved), "0" when there is no limit.
_LIMITED_SLOT = """
local h = redis.call('HMGET', KEYS[1], 'until', 'interval', 'next')
if not h[1] then return '0' end
local now = tonumber(ARGV[1])
local slot = math.max(now, tonumber(h[1]), tonumber(h[3] or '0'))
if slot - now > tonumber(ARGV[2]) then return '-1' end
redis.call('HSET', KEYS[1], 'next', tostring(slot + tonumber(h[2])))
return tostring(slot - now)
"""


@dataclass(frozen=True)
class GatewayLimit:
    """A provider's rate limit as it stands (times are time.time() seconds)."""

    since: float
    last: float
    until: float
    interval: float
    hits: int
    strikes: int

    def retry_in(self, now: float | None = None) -> float:
        """Seconds before anyone may send through this provider again (0: paced sending goes on)."""
        return max(0.0, self.until - (time.time() if now is None else now))

    def lasted(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.since)

    @property
    def since_at(self) -> datetime:
        """`since` as the naive UTC datetime the templates' `localtime` filter takes."""
        return datetime.fromtimestamp(self.since, UTC).replace(tzinfo=None)

    @property
    def per_minute(self) -> int:
        """The pace imposed meanwhile, in messages a minute (all workers together)."""
        return max(1, round(60.0 / self.interval)) if self.interval > 0 else 0


def limit_key(provider_id: int) -> str:
    return f"conversa:limit:provider:{provider_id}"


class GatewayLimits:
    """The shared rate limits of the gateways: record refusals and acceptances, pace sends through a limit."""

    def __init__(self, redis_client: Any, *, backoff: float = 1.0, max_backoff: float = 300.0,
                 quiet: float = 30.0, rng: Any = random.random):
        self.redis = redis_client
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.quiet = quiet
        self.rng = rng
        self._refused = redis_client.register_script(_REFUSED)
        self._accepted = redis_client.register_script(_ACCEPTED)
        self._slot = redis_client.register_script(_LIMITED_SLOT)

    def refused(self, provider_id: int, retry_after: float | None, sent_at: float,
                now: float | None = None) -> tuple[float, bool]:
        """The gateway refused a request sent at `sent_at` as too fast. Returns (seconds nobody may send
        through it: at least Retry-After, more after each refusal in a row; whether the limit starts now)."""
        now_ms = (time.time() if now is None else now) * 1000.0
        wait, started = self._refused(keys=[limit_key(provider_id)], args=[
            f"{now_ms:.3f}", f"{sent_at * 1000.0:.3f}", f"{max(0.0, retry_after or 0.0) * 1000.0:.3f}",
            f"{self.backoff * 1000.0:.3f}", f"{self.max_backoff * 1000.0:.3f}",
            f"{LIMIT_START_INTERVAL * 1000.0:.3f}", f"{LIMIT_MAX_INTERVAL * 1000.0:.3f}",
            f"{self.quiet * 1000.0 + 60_000:.3f}", f"{self.rng():.6f}"])
        return float(wait) / 1000.0, bool(int(started))

    def accepted(self, provider_id: int, sent_at: float, floor: float = 0.0, now: float | None = None) -> int:
        """A request sent at `sent_at` went through: the pace speeds up. 0 no limit, 1 still limited,
        2 the limit is over (pace back at `floor` seconds and no refusal for `quiet` seconds)."""
        now_ms = (time.time() if now is None else now) * 1000.0
        floor_ms = max(floor, LIMIT_START_INTERVAL) * 1000.0
        return int(self._accepted(keys=[limit_key(provider_id)], args=[
            f"{now_ms:.3f}", f"{sent_at * 1000.0:.3f}", f"{floor_ms:.3f}", f"{self.quiet * 1000.0:.3f}",
            str(LIMIT_SPEEDUP)]))

    def reserve(self, provider_id: int, max_wait: float, now: float | None = None) -> float | None:
        """Reserve the next slot through the provider's limit: seconds to wait (0 without a limit), or None
        when the slot is more than `max_wait` away (nothing is reserved then)."""
        now_ms = (time.time() if now is None else now) * 1000.0
        wait = float(self._slot(keys=[limit_key(provider_id)],
                                args=[f"{now_ms:.3f}", f"{max(0.0, max_wait) * 1000.0:.3f}"]))
        return None if wait < 0 else wait / 1000.0

    def state(self, provider_id: int) -> GatewayLimit | None:
        """The provider's limit, or None while it sends freely."""
        raw = self.redis.hgetall(limit_key(provider_id))
        if not raw:
            return None
        h = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}
        if "since" not in h:
            return None
        return GatewayLimit(since=h["since"] / 1000.0, last=h.get("last", h["since"]) / 1000.0,
                            until=h.get("until", 0.0) / 1000.0, interval=h.get("interval", 0.0) / 1000.0,
                            hits=int(h.get("hits", 0)), strikes=int(h.get("strikes", 0)))

    def hold(self, provider_id: int) -> float:
        """Seconds before anyone may send through this provider again (0 when free or only paced)."""
        until = self.redis.hget(limit_key(provider_id), "until")
        return max(0.0, float(until) / 1000.0 - time.time()) if until is not None else 0.0
