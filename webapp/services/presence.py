"""Agent presence (A4): busy or free follows the agent's open interactions; every change is announced;
and whether an agent has a live page at all (issue 12.1).

The lowest layer of the agent services: routing and the conversation services call `refresh_busy`
after they hand out or take back work; `agents` (sign-in, breaks, on call, the presence sweep) sits
above routing.

Live pages, in Redis (any number of web processes): each page of an agent beats (`beat`): its socket
every `beat_every()` seconds and once more when it closes, and, for the polling fallback, every request
of the agent workspace. A beat sets that page's deadline (now + PRESENCE_GRACE_SECONDS) in the hash
`conversa:presence:pages:<agent>` and the agent's latest deadline in the sorted set
`conversa:presence:deadlines`. `lapsed()` (the sweep, one worker at a time) atomically takes the agents
whose every page passed its deadline out of the set and marks them in `conversa:presence:lapsed`: they
go disconnected (`agents.sweep_presence`). A page of a lapsed agent that beats again brings them back
(`agents.page_back`); one that comes back within the grace changes nothing. An agent signed in whom the
set does not know (Redis restarted, a sign-in before this existed) gets a grace from the first sweep.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from flask import current_app

from ..extensions import db
from ..live.events import publish
from ..models import AgentState, Interaction, InteractionStatus, User
from . import agent_states
from .agent_states import Cause


def active_count(user: User) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(Interaction.id)).where(
            Interaction.agent_id == user.id,
            Interaction.status.in_(InteractionStatus.WITH_AGENT))) or 0


def announce(user: User) -> None:
    """The agent's own page, and the monitors of each of the agent's security groups."""
    publish(f"user:{user.id}", "agent.state", agent_id=user.id)
    for group in user.security_groups:
        publish(f"group:{group.id}", "agent.state", agent_id=user.id)


def refresh_busy(user: User) -> bool:
    """Busy/free follows the agent's open interactions; breaks and sign-out stay as they are."""
    state = user.agent_state
    if state is AgentState.DISCONNECTED:
        return False
    busy = active_count(user) > 0
    if state.in_break:
        target = AgentState.BUSY_BREAK if busy else AgentState.FREE_BREAK
    else:
        target = AgentState.BUSY if busy else AgentState.FREE
    changed = agent_states.record_state(user, target, Cause.ROUTING, break_type_id=user.break_type_id)
    if changed:
        announce(user)
    return changed


# -- live pages (Redis) ---------------------------------------------------------------------------------
DEADLINES = "conversa:presence:deadlines"
LAPSED = "conversa:presence:lapsed"
PAGES = "conversa:presence:pages:"

_BEAT = """
local pages = KEYS[3] .. ARGV[1]
redis.call('HSET', pages, ARGV[2], ARGV[3])
redis.call('EXPIRE', pages, ARGV[4])
redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[1])
return redis.call('SISMEMBER', KEYS[2], ARGV[1])
"""

_LAPSED = """
local now = tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV do
  local agent = ARGV[i]
  local deadline = redis.call('ZSCORE', KEYS[1], agent)
  if not deadline then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), agent)
  elseif tonumber(deadline) <= now then
    local pages = KEYS[3] .. agent
    local latest = 0
    local fields = redis.call('HGETALL', pages)
    for j = 1, #fields, 2 do
      local d = tonumber(fields[j + 1])
      if d and d > now then
        if d > latest then latest = d end
      else
        redis.call('HDEL', pages, fields[j])
      end
    end
    if latest > 0 then
      redis.call('ZADD', KEYS[1], latest, agent)
    else
      redis.call('ZREM', KEYS[1], agent)
      redis.call('DEL', pages)
      redis.call('SADD', KEYS[2], agent)
      table.insert(out, agent)
    end
  end
end
return out
"""


def _redis() -> Any:
    return current_app.extensions["conversa_redis"]


def grace() -> float:
    """Seconds without a live page before an agent counts as disconnected (PRESENCE_GRACE_SECONDS)."""
    return float(current_app.config["PRESENCE_GRACE_SECONDS"])


def beat_every() -> float:
    """How often an open socket beats: three beats fit in the grace, so one lost beat changes nothing."""
    return max(0.5, min(30.0, grace() / 3))


def beat(agent_id: int, page: str) -> bool:
    """A page of the agent is live now (a socket's beat, its close, a workspace request). True when the
    agent had lapsed (the sweep took them out): the caller brings them back (`agents.page_back`)."""
    redis = _redis()
    deadline = time.time() + grace()
    script = redis.register_script(_BEAT)
    lapsed = script(keys=[DEADLINES, LAPSED, PAGES],
                    args=[agent_id, page, f"{deadline:.3f}", int(grace()) + 60])
    return bool(lapsed)


def lapsed(connected_ids: Sequence[int], now: float | None = None) -> list[int]:
    """Of these signed-in agents, the ones with no live page past the grace; each is returned once (to
    one sweeper) and stays marked lapsed until `back` or `forget`."""
    if not connected_ids:
        return []
    script = _redis().register_script(_LAPSED)
    out = script(keys=[DEADLINES, LAPSED, PAGES],
                 args=[f"{(now if now is not None else time.time()):.3f}", grace(), *connected_ids])
    return [int(x) for x in out]


def back(agent_id: int) -> None:
    """The lapsed agent is connected again (or signed out): no longer marked."""
    _redis().srem(LAPSED, agent_id)


def signed_in(agent_id: int) -> None:
    """A fresh sign-in: the grace starts now, whatever came before."""
    redis = _redis()
    pipe = redis.pipeline()
    pipe.srem(LAPSED, agent_id)
    pipe.zadd(DEADLINES, {str(agent_id): time.time() + grace()})
    pipe.execute()


def forget(agent_id: int) -> None:
    """Signed out: nothing about the agent's pages is kept (another browser's page cannot sign them in)."""
    redis = _redis()
    pipe = redis.pipeline()
    pipe.zrem(DEADLINES, agent_id)
    pipe.delete(f"{PAGES}{agent_id}")
    pipe.srem(LAPSED, agent_id)
    pipe.execute()


def live_pages(agent_id: int, now: float | None = None) -> int:
    """How many pages of the agent are live now (the supervisor's agent card shows it)."""
    now = now if now is not None else time.time()
    return sum(1 for d in _redis().hvals(f"{PAGES}{agent_id}") if float(d) > now)
