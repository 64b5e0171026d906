"""Routing under random sequences of arrivals, replies, closes, calls, breaks and sign-outs.

An independent oracle (written here, not routing.can_take) replays every assignment in
order: none may exceed its mode's capacity or go to an agent in break, signed out or (for
`incall`) on a call; no interaction is ever lost; and nobody who could take a waiting
interaction is left idle after a routing pass.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from webapp.extensions import db
from webapp.models import (
    BreakType,
    Campaign,
    Interaction,
    InteractionStatus,
    Membership,
    Provider,
    SecurityGroup,
    User,
    VoiceCampaign,
    split_strategy,
)
from webapp.services import agents, interactions, routing

STRATEGIES = [f"{d}_{m}" for m in ("incall", "nocall", "interaction", "nopause")
              for d in ("rrmemory", "linear", "wrandom")]
N_AGENTS = 3
T0 = datetime(2025, 3, 4, 12, 0)
OPEN = (InteractionStatus.ASSIGNED, InteractionStatus.ACTIVE)


def _wipe() -> None:
    db.session.remove()
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


class RoutingMachine(RuleBasedStateMachine):
    app: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.ctx = self.app.app_context()
        self.ctx.push()
        _wipe()
        self.arrivals = 0
        self.rng = random.Random(7)

    def teardown(self) -> None:
        _wipe()
        self.ctx.pop()

    @initialize(strategies=st.lists(st.sampled_from(STRATEGIES), min_size=1, max_size=2),
                cap=st.integers(1, 3))
    def build(self, strategies: list[str], cap: int) -> None:
        group = SecurityGroup(name="g")
        provider = Provider(name="sbx", type="sandbox", options={})
        voice = VoiceCampaign(name="voz")
        db.session.add_all([group, provider, voice, BreakType(name="café")])
        db.session.flush()
        self.campaigns = [Campaign(name=f"c{i}", security_group_id=group.id, provider_id=provider.id,
                                   did=f"+5982900{i:04d}", strategy=s, max_interactions_per_agent=cap)
                          for i, s in enumerate(strategies)]
        self.agents = [User(username=f"a{i}", password_hash="!", state="free") for i in range(N_AGENTS)]
        voice.members.extend(self.agents)
        db.session.add_all(self.campaigns + self.agents)
        db.session.flush()
        for c in self.campaigns:
            for i, a in enumerate(self.agents):
                db.session.add(Membership(campaign_id=c.id, user_id=a.id, position=i, penalty=i * 30))
        db.session.commit()
        self.break_id = db.session.scalar(sa.select(BreakType.id))

    # -- the oracle ------------------------------------------------------------------------
    def snapshot(self) -> dict[int, dict[str, Any]]:
        db.session.expire_all()
        view = {}
        for a in self.agents:
            open_ = db.session.scalars(sa.select(Interaction).where(Interaction.agent_id == a.id,
                                                                   Interaction.status.in_(OPEN))).all()
            view[a.id] = {"state": a.state, "on_call": a.on_call, "active": len(open_),
                          "exclusive": any(i.campaign.mode == "incall" for i in open_)}
        return view

    @staticmethod
    def may_take(agent: dict[str, Any], campaign: Campaign) -> bool:
        if agent["state"] not in ("free", "busy") or agent["exclusive"]:
            return False
        mode = split_strategy(campaign.strategy)[1]
        return {"incall": not agent["on_call"] and agent["active"] == 0,
                "interaction": agent["active"] == 0,
                "nocall": agent["active"] < campaign.max_interactions_per_agent,
                "nopause": True}[mode]

    def route(self) -> None:
        before = self.snapshot()
        pairs = routing.route_waiting(rng=self.rng)
        db.session.commit()
        by_id = {c.id: c for c in self.campaigns}
        for iid, aid in pairs:
            campaign = by_id[db.session.get(Interaction, iid).campaign_id]
            assert self.may_take(before[aid], campaign), (iid, aid, before[aid], campaign.strategy)
            before[aid]["active"] += 1
            before[aid]["exclusive"] |= campaign.mode == "incall"
        # Work-conserving: whatever still waits has nobody who could take it.
        after = self.snapshot()
        for c in self.campaigns:
            waits = db.session.scalar(sa.select(sa.func.count(Interaction.id)).where(
                Interaction.campaign_id == c.id, Interaction.status == InteractionStatus.WAITING))
            if waits:
                assert not any(self.may_take(after[a.id], c) for a in self.agents), c.strategy

    def pick_open(self, agent: User, status: str | None = None) -> Interaction | None:
        query = sa.select(Interaction).where(Interaction.agent_id == agent.id, Interaction.status.in_(OPEN))
        if status:
            query = query.where(Interaction.status == status)
        return db.session.scalars(query.order_by(Interaction.id)).first()

    # -- rules ----------------------------------------------------------------------------------
    @rule(which=st.integers(0, 1), n=st.integers(1, 3))
    def arrive(self, which: int, n: int) -> None:
        campaign = self.campaigns[which % len(self.campaigns)]
        for _ in range(n):
            self.arrivals += 1
            at = T0 + timedelta(seconds=self.arrivals)
            db.session.add(Interaction(campaign_id=campaign.id, customer_number=f"+598990{self.arrivals:05d}",
                                       created_at=at, queued_at=at))
        db.session.commit()
        self.route()

    @rule(i=st.integers(0, N_AGENTS - 1))
    def reply(self, i: int) -> None:
        agent = self.agents[i]
        interaction = self.pick_open(agent, InteractionStatus.ASSIGNED)
        if interaction is not None:
            interactions.send_agent_message(interaction, agent, "Hola")
            db.session.commit()

    @rule(i=st.integers(0, N_AGENTS - 1))
    def close(self, i: int) -> None:
        agent = self.agents[i]
        interaction = self.pick_open(agent)
        if interaction is not None:
            interactions.close(interaction, agent, "listo")
            db.session.commit()
            self.route()

    @rule(i=st.integers(0, N_AGENTS - 1), on=st.booleans())
    def call(self, i: int, on: bool) -> None:
        agents.set_on_call(self.agents[i], on)
        db.session.commit()
        self.route()

    @rule(i=st.integers(0, N_AGENTS - 1))
    def toggle_break(self, i: int) -> None:
        agent = self.agents[i]
        if agent.agent_state.in_break:
            agents.end_break(agent)
        elif agent.agent_state.connected:
            agents.start_break(agent, self.break_id)
        db.session.commit()
        self.route()

    @rule(i=st.integers(0, N_AGENTS - 1))
    def toggle_login(self, i: int) -> None:
        agent = self.agents[i]
        if agent.agent_state.connected:
            agents.on_logout(agent)
        else:
            agents.on_login(agent)
        db.session.commit()
        self.route()

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def nothing_lost(self) -> None:
        if not hasattr(self, "campaigns"):
            return
        rows = db.session.execute(sa.select(Interaction.status, Interaction.agent_id)).all()
        assert len(rows) == self.arrivals
        for status, agent_id in rows:
            if status == InteractionStatus.WAITING:
                assert agent_id is None
            elif status in OPEN:
                assert agent_id is not None
            else:
                assert status in (InteractionStatus.CLOSED, InteractionStatus.ABANDONED)

    @invariant()
    def nothing_unanswered_with_an_absent_agent(self) -> None:
        """Break and sign-out hand back what was not answered; answered work stays."""
        if not hasattr(self, "campaigns"):
            return
        rows = db.session.execute(
            sa.select(User.state).join(Interaction, Interaction.agent_id == User.id)
            .where(Interaction.status == InteractionStatus.ASSIGNED)).scalars().all()
        assert all(state in ("free", "busy") for state in rows)


def test_routing_never_overbooks_nor_loses(app: Any) -> None:
    RoutingMachine.app = app
    run_state_machine_as_test(RoutingMachine, settings=settings(
        max_examples=40, stateful_step_count=12, derandomize=True, database=None, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


@pytest.fixture(autouse=True)
def _no_state_between(app: Any) -> Any:
    yield
    app.extensions["conversa_redis"].flushdb()
