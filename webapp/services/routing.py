"""C1.1: which agent gets an interaction.

A campaign's strategy is a mode plus a distribution (`rrmemory_nocall`), or a ringall mode.

Eligibility (never an agent signed out, in break, inactive, or in no voice campaign (M2)):
- `incall`: not on a call and no active interaction at all; while it lasts the agent takes
  no other interaction from any campaign (the voice API reports `text_exclusive` so the
  voice platform can hold calls back: Conversa does not refuse the voice platform's word).
- `nocall`: calls ignored; fewer than campaign.max_interactions_per_agent active.
- `interaction`: no active interaction; calls allowed.
- `nopause`: any agent not in break, no cap; calls allowed.
- `ringall`: offered to every eligible member (no active interaction); the agent chooses.
- `ringallmultiple`: offered to every member not in break; no cap.
"Active interactions" of an agent are their ASSIGNED + ACTIVE ones across ALL campaigns.

Distributions (all but ringall): `linear` (first eligible in member order: position, then
membership id), `rrmemory` (the next eligible member after campaign.rr_last_user_id, in
member order, wrapping), `wrandom` (random with weight 101 - penalty: penalty 0 weighs
101, penalty 100 weighs 1, so every member keeps a small chance).

Concurrency: routing runs in web processes and workers at once. Every assignment pass
takes one routing lock (PostgreSQL: a transaction-scoped advisory lock; SQLite: the
database write lock) before reading anything, so the capacity counts it reads cannot
change under it; one lock rather than one per campaign because an agent's capacity spans
campaigns, and per-campaign row locks would need agent locks taken in a global order to
avoid deadlocks. Assignments are also conditional UPDATEs (`status='waiting' AND
agent_id IS NULL`), so an interaction is never assigned twice. The lock lasts until the
caller commits; routing passes take milliseconds.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app

from ..after_commit import enqueue_after_commit, take_jobs_after_commit
from ..extensions import db
from ..live.events import publish
from ..models import (
    RINGALL_MODES,
    AgentState,
    Campaign,
    Interaction,
    InteractionStatus,
    Membership,
    User,
    split_strategy,
    voice_campaign_members_table,
)
from . import presence
from .time import now

ROUTING_LOCK_KEY = 0x436F6E76  # "Conv"
OFFER_REMINDER_SECONDS = 60
ROUTE_JOB = "workers.inbound.route"  # the job request_routing queues
_rng = random.Random()


def weight(penalty: int) -> int:
    """wrandom: the higher the penalty, the fewer interactions."""
    return 101 - max(0, min(100, int(penalty or 0)))


def lock_routing(campaign_id: int | None = None) -> None:
    """Serialise every assignment until the transaction ends (see the module docstring)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(ROUTING_LOCK_KEY)))
    else:
        table = Campaign.__table__
        query = sa.update(table).values(rr_last_user_id=table.c.rr_last_user_id)
        if campaign_id is not None:
            query = query.where(table.c.id == campaign_id)
        else:
            query = query.where(table.c.id == -1)  # any write statement takes SQLite's write lock
        db.session.execute(query)


def request_routing(campaign_id: int | None = None) -> None:
    """Run routing (a job) once the current transaction commits."""
    enqueue_after_commit(ROUTE_JOB, campaign_id)


def take_requests() -> list[int | None]:
    """Withdraw the routing requests the commit would queue (the caller routes at once); their campaign
    ids, once each, in order."""
    return list(dict.fromkeys(campaign_id for campaign_id, in take_jobs_after_commit(ROUTE_JOB)))


# -- who may take work -----------------------------------------------------------------
def active_counts(user_ids: Sequence[int]) -> dict[int, int]:
    if not user_ids:
        return {}
    rows = db.session.execute(
        sa.select(Interaction.agent_id, sa.func.count(Interaction.id))
        .where(Interaction.agent_id.in_(list(user_ids)),
               Interaction.status.in_(InteractionStatus.WITH_AGENT))
        .group_by(Interaction.agent_id)).all()
    return {agent_id: count for agent_id, count in rows}


def exclusive_agents(user_ids: Sequence[int]) -> set[int]:
    """Agents holding an open interaction of an `incall` campaign: they take nothing else meanwhile."""
    if not user_ids:
        return set()
    # Ids and strategies only: loading every campaign as an object cost more than the rest of this check.
    incall = [cid for cid, strategy in db.session.execute(sa.select(Campaign.id, Campaign.strategy))
              if split_strategy(strategy)[1] == "incall"]
    if not incall:
        return set()
    return set(db.session.scalars(
        sa.select(Interaction.agent_id).where(
            Interaction.agent_id.in_(list(user_ids)), Interaction.campaign_id.in_(incall),
            Interaction.status.in_(InteractionStatus.WITH_AGENT))))


def in_voice_campaign(user_ids: Sequence[int]) -> set[int]:
    if not user_ids:
        return set()
    table = voice_campaign_members_table
    return set(db.session.scalars(sa.select(table.c.user_id).where(table.c.user_id.in_(list(user_ids)))))


def can_take(user: User, campaign: Campaign, active: int, exclusive: bool, *, check_capacity: bool = True) -> bool:
    """C1.1's rule for one agent, given their active count (all campaigns) and whether they are exclusive."""
    state = AgentState(user.state)
    if not user.active or not state.connected or state.in_break:
        return False
    if not check_capacity:
        return True
    if exclusive:
        return False
    mode = campaign.mode
    if mode == "incall":
        return not user.on_call and active == 0
    if mode == "nocall":
        return active < max(1, campaign.max_interactions_per_agent)
    if mode in ("interaction", "ringall"):
        return active == 0
    return mode in ("nopause", "ringallmultiple")


def eligible_members(campaign: Campaign, *, check_capacity: bool = True) -> list[tuple[Membership, User]]:
    """Members who may take an interaction of the campaign now, in member order."""
    rows = db.session.execute(
        sa.select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.campaign_id == campaign.id)
        .order_by(Membership.position, Membership.id)
        .execution_options(populate_existing=True)).all()
    ids = [u.id for _, u in rows]
    counts = active_counts(ids)
    exclusive = exclusive_agents(ids)
    voice = in_voice_campaign(ids)
    return [(m, u) for m, u in rows if u.id in voice and can_take(
        u, campaign, counts.get(u.id, 0), u.id in exclusive, check_capacity=check_capacity)]


def is_eligible(user: User, campaign: Campaign, *, check_capacity: bool = True) -> bool:
    return any(u.id == user.id for _, u in eligible_members(campaign, check_capacity=check_capacity))


def offers_for(agent: User) -> list[Interaction]:
    """Waiting interactions of ringall campaigns that this agent may take now, oldest first."""
    campaigns = db.session.scalars(
        sa.select(Campaign).join(Membership, Membership.campaign_id == Campaign.id)
        .where(Membership.user_id == agent.id, Campaign.enabled.is_(True),
               Campaign.strategy.in_(RINGALL_MODES))).all()
    ids = [c.id for c in campaigns if is_eligible(agent, c)]
    if not ids:
        return []
    return list(db.session.scalars(
        sa.select(Interaction).where(Interaction.campaign_id.in_(ids),
                                     Interaction.status == InteractionStatus.WAITING,
                                     Interaction.agent_id.is_(None))
        .order_by(Interaction.queued_at, Interaction.id)))


# -- distributions ------------------------------------------------------------------------
def choose(campaign: Campaign, members: list[tuple[Membership, User]], candidates: list[tuple[Membership, User]],
           rng: random.Random) -> User:
    """Pick one candidate by the campaign's distribution; `members` is every member in order."""
    distribution = campaign.distribution
    if distribution == "rrmemory":
        order = [u.id for _, u in members]
        allowed = {u.id: u for _, u in candidates}
        start = order.index(campaign.rr_last_user_id) + 1 if campaign.rr_last_user_id in order else 0
        for i in range(len(order)):
            uid = order[(start + i) % len(order)]
            if uid in allowed:
                return allowed[uid]
    if distribution == "wrandom":
        return rng.choices([u for _, u in candidates], weights=[weight(m.penalty) for m, _ in candidates])[0]
    return candidates[0][1]  # linear (and the fallback)


# -- routing ---------------------------------------------------------------------------------
def route_waiting(campaign_id: int | None = None, *, rng: random.Random | None = None) -> list[tuple[int, int]]:
    """Assign waiting interactions (oldest first) to eligible agents; ringall campaigns get offers.
    Returns the (interaction_id, agent_id) pairs assigned. The caller commits."""
    lock_routing(campaign_id)
    rng = rng or _rng
    query = sa.select(Campaign).where(Campaign.enabled.is_(True)).order_by(Campaign.id)
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    query = query.where(Campaign.id.in_(sa.select(Interaction.campaign_id).where(
        Interaction.status == InteractionStatus.WAITING)))
    assigned: list[tuple[int, int]] = []
    for campaign in db.session.scalars(query.execution_options(populate_existing=True)).all():
        if campaign.mode in RINGALL_MODES:
            _offer(campaign)
        else:
            assigned.extend(_assign(campaign, rng))
    return assigned


def _waiting(campaign: Campaign) -> list[Interaction]:
    """The campaign's queue in routing order: conversations an agent had already answered (handed back
    by an agent who left) first, then by place (queued_at)."""
    return list(db.session.scalars(
        sa.select(Interaction).where(Interaction.campaign_id == campaign.id,
                                     Interaction.status == InteractionStatus.WAITING,
                                     Interaction.agent_id.is_(None))
        .order_by(Interaction.first_reply_at.is_(None), Interaction.queued_at, Interaction.id)
        .execution_options(populate_existing=True)))


def _assign(campaign: Campaign, rng: random.Random) -> list[tuple[int, int]]:
    waiting = _waiting(campaign)
    if not waiting:
        return []
    members = db.session.execute(
        sa.select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.campaign_id == campaign.id).order_by(Membership.position, Membership.id)
        .execution_options(populate_existing=True)).all()
    ids = [u.id for _, u in members]
    counts = active_counts(ids)
    exclusive = exclusive_agents(ids)
    voice = in_voice_campaign(ids)
    done: list[tuple[int, int]] = []
    for interaction in waiting:
        candidates = [(m, u) for m, u in members if u.id in voice
                      and can_take(u, campaign, counts.get(u.id, 0), u.id in exclusive)]
        if not candidates:
            break  # nobody free: the rest wait, in arrival order
        agent = choose(campaign, members, candidates, rng)
        result = db.session.execute(
            sa.update(Interaction).where(Interaction.id == interaction.id,
                                         Interaction.status == InteractionStatus.WAITING,
                                         Interaction.agent_id.is_(None))
            .values(status=InteractionStatus.ASSIGNED, agent_id=agent.id, assigned_at=now())
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            continue
        db.session.refresh(interaction)
        counts[agent.id] = counts.get(agent.id, 0) + 1
        if campaign.mode == "incall":
            exclusive.add(agent.id)
        campaign.rr_last_user_id = agent.id
        presence.refresh_busy(agent)
        publish(f"user:{agent.id}", "interaction.assigned", interaction_id=interaction.id)
        publish(f"campaign:{campaign.id}", "interaction.changed", interaction_id=interaction.id)
        done.append((interaction.id, agent.id))
    return done


def _offer(campaign: Campaign) -> None:
    """Ringall: announce each waiting interaction to the campaign's members (again each minute)."""
    if not eligible_members(campaign):
        return
    redis = current_app.extensions["conversa_redis"]
    for interaction in _waiting(campaign):
        key = f"conversa:offered:{interaction.id}"
        try:
            fresh = redis.set(key, "1", nx=True, ex=OFFER_REMINDER_SECONDS)
        except Exception:  # Redis down: offer anyway (events cannot go out either)
            fresh = True
        if fresh:
            publish(f"offers:{campaign.id}", "interaction.offered", interaction_id=interaction.id)


@dataclass
class HandBack:
    """What an agent leaving gave up: (interaction id, customer) back to the queue, and to a named agent."""
    queued: list[tuple[int, str]] = field(default_factory=list)
    to_agent: list[tuple[int, str]] = field(default_factory=list)
    agent_name: str = ""

    @property
    def ids(self) -> list[int]:
        return [i for i, _ in self.queued + self.to_agent]


def hand_back(user: User, *, answered: bool, to: User | None = None) -> HandBack:
    """An agent leaving gives back what must not wait: the conversations not answered yet and, when
    they leave for good (sign-out, forced log-out, presence timeout: `answered=True`), the answered
    ones too. Each goes to `to` (a supervisor's choice, when that agent may take its campaign) or back
    to the queue in its place (queued at its arrival; answered ones are routed first: `_waiting`), with
    its messages, remembering who had it (`previous_agent_id`, on the monitor)."""
    statuses = InteractionStatus.WITH_AGENT if answered else (InteractionStatus.ASSIGNED,)
    interactions = db.session.scalars(
        sa.select(Interaction).where(Interaction.agent_id == user.id, Interaction.status.in_(statuses))
        .order_by(Interaction.created_at, Interaction.id)).all()
    moved = HandBack(agent_name=to.display_name if to is not None else "")
    takers: dict[int, bool] = {}
    for interaction in interactions:
        interaction.previous_agent_id = user.id
        campaign = interaction.campaign
        if to is not None and campaign.id not in takers:
            takers[campaign.id] = is_eligible(to, campaign, check_capacity=False)
        if to is not None and takers[campaign.id]:
            interaction.agent_id = to.id
            interaction.status = InteractionStatus.ASSIGNED
            interaction.assigned_at = now()
            moved.to_agent.append((interaction.id, interaction.customer_number))
            publish(f"user:{to.id}", "interaction.assigned", interaction_id=interaction.id)
        else:
            interaction.agent_id = None
            interaction.status = InteractionStatus.WAITING
            interaction.assigned_at = None
            interaction.queued_at = interaction.created_at  # keeps its place: arrival order
            moved.queued.append((interaction.id, interaction.customer_number))
        publish(f"campaign:{interaction.campaign_id}", "interaction.changed", interaction_id=interaction.id)
        publish(f"user:{user.id}", "interaction.removed", interaction_id=interaction.id)
    if interactions:
        db.session.flush()
        if moved.to_agent and to is not None:
            presence.refresh_busy(to)
        publish("routing", "routing.requeued", ids=moved.ids, at=str(now()))
        request_routing(None)
    return moved
