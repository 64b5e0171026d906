"""C1.1 routing: every mode with every distribution, ringall offers, capacities and agent states."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from webapp.models import (
    DISTRIBUTIONS,
    BreakType,
    Interaction,
    InteractionStatus,
    Membership,
    split_strategy,
)
from webapp.services import agents, interactions, routing

T0 = datetime(2025, 3, 4, 12, 0)
NON_RINGALL = [f"{d}_{m}" for m in ("incall", "nocall", "interaction", "nopause") for d in DISTRIBUTIONS]


def setup(make: Any, strategy: str, n_agents: int = 3, cap: int = 2, **agent_kw: Any) -> tuple[Any, list[Any]]:
    group = make.group()
    campaign = make.campaign(group, strategy=strategy, max_interactions_per_agent=cap)
    people = []
    for i in range(n_agents):
        agent = make.user(f"agent{i}", groups=[group], state="free", **agent_kw)
        make.member(campaign, agent, position=i)
        people.append(agent)
    return campaign, people


def arrive(db: Any, campaign: Any, n: int, start: int = 0) -> list[int]:
    rows = [Interaction(campaign_id=campaign.id, customer_number=f"+5989900{start + i:04d}",
                        queued_at=T0 + timedelta(seconds=start + i), created_at=T0 + timedelta(seconds=start + i))
            for i in range(n)]
    db.session.add_all(rows)
    db.session.commit()
    return [r.id for r in rows]


def route(db: Any, campaign_id: int | None = None, rng: random.Random | None = None) -> list[tuple[int, int]]:
    pairs = routing.route_waiting(campaign_id, rng=rng or random.Random(1))
    db.session.commit()
    return pairs


EXPECTED_COUNT = {"incall": 3, "interaction": 3, "nocall": 4, "nopause": 4}
EXPECTED_ORDER = {
    ("linear", "incall"): [0, 1, 2], ("linear", "interaction"): [0, 1, 2],
    ("linear", "nocall"): [0, 0, 1, 1], ("linear", "nopause"): [0, 0, 0, 0],
    ("rrmemory", "incall"): [0, 1, 2], ("rrmemory", "interaction"): [0, 1, 2],
    ("rrmemory", "nocall"): [0, 1, 2, 0], ("rrmemory", "nopause"): [0, 1, 2, 0],
}


@pytest.mark.parametrize("strategy", NON_RINGALL)
def test_mode_and_distribution(make: Any, db: Any, strategy: str) -> None:
    """Four arrivals, three free agents, a cap of two: who gets what, oldest first."""
    distribution, mode = split_strategy(strategy)
    campaign, people = setup(make, strategy)
    ids = arrive(db, campaign, 4)
    pairs = route(db)
    index = {p.id: i for i, p in enumerate(people)}
    assert [iid for iid, _ in pairs] == ids[:EXPECTED_COUNT[mode]]  # arrival order
    got = [index[aid] for _, aid in pairs]
    if (distribution, mode) in EXPECTED_ORDER:
        assert got == EXPECTED_ORDER[(distribution, mode)]
    else:  # wrandom: any agent, within the mode's capacity
        cap = {"incall": 1, "interaction": 1, "nocall": 2, "nopause": 4}[mode]
        assert max(got.count(i) for i in set(got)) <= cap
    waiting = db.session.scalars(sa.select(Interaction.id).where(
        Interaction.status == InteractionStatus.WAITING)).all()
    assert waiting == ids[EXPECTED_COUNT[mode]:]
    for iid, aid in pairs:
        interaction = db.session.get(Interaction, iid)
        assert (interaction.status, interaction.agent_id) == (InteractionStatus.ASSIGNED, aid)
        assert interaction.assigned_at is not None
    assert {p.state for p in people if p.id in {a for _, a in pairs}} == {"busy"}


def test_rrmemory_remembers_across_passes(make: Any, db: Any) -> None:
    campaign, people = setup(make, "rrmemory_nopause")
    got = []
    for n in range(5):
        arrive(db, campaign, 1, start=n)
        got.extend(aid for _, aid in route(db))
    assert got == [people[i].id for i in (0, 1, 2, 0, 1)]
    assert campaign.rr_last_user_id == people[1].id


def test_rrmemory_skips_busy_members_in_order(make: Any, db: Any) -> None:
    campaign, people = setup(make, "rrmemory_interaction")
    campaign.rr_last_user_id = people[0].id
    people[1].state = "free_break"
    db.session.commit()
    arrive(db, campaign, 1)
    assert [aid for _, aid in route(db)] == [people[2].id]


def test_linear_follows_position_not_creation(make: Any, db: Any) -> None:
    campaign, people = setup(make, "linear_interaction")
    db.session.execute(sa.update(Membership).where(Membership.user_id == people[2].id).values(position=-5))
    db.session.commit()
    arrive(db, campaign, 1)
    assert [aid for _, aid in route(db)] == [people[2].id]


def test_never_to_an_agent_in_break_or_signed_out(make: Any, db: Any) -> None:
    campaign, people = setup(make, "linear_nopause")
    people[0].state = "free_break"
    people[1].state = "disconnected"
    db.session.commit()
    arrive(db, campaign, 3)
    assert {aid for _, aid in route(db)} == {people[2].id}


def test_an_agent_in_no_voice_campaign_gets_nothing(make: Any, db: Any) -> None:
    """M2: membership alone is not enough."""
    campaign, people = setup(make, "linear_nopause", n_agents=1, voice=False)
    arrive(db, campaign, 1)
    assert route(db) == []


def test_nocall_cap_keeps_the_rest_waiting_in_arrival_order(make: Any, db: Any) -> None:
    campaign, (agent,) = setup(make, "linear_nocall", n_agents=1, cap=2)
    ids = arrive(db, campaign, 5)
    assert [iid for iid, _ in route(db)] == ids[:2]
    agent.on_call = True  # nocall ignores telephony
    db.session.commit()
    interactions.close(db.session.get(Interaction, ids[1]), agent, "listo")
    db.session.commit()
    assert route(db) == [(ids[2], agent.id)]
    assert route(db) == []


def test_the_cap_counts_active_interactions_of_every_campaign(make: Any, db: Any) -> None:
    campaign, (agent,) = setup(make, "linear_nocall", n_agents=1, cap=2)
    other = make.campaign(make.group(), strategy="linear_nopause")
    make.member(other, agent)
    arrive(db, other, 1, start=100)
    route(db, other.id)
    ids = arrive(db, campaign, 3)
    assert route(db, campaign.id) == [(ids[0], agent.id)]


@pytest.mark.parametrize(("mode", "gets_it"), [("incall", False), ("interaction", True), ("nocall", True),
                                               ("nopause", True)])
def test_on_a_call(make: Any, db: Any, mode: str, gets_it: bool) -> None:
    """Only incall keeps an agent on a call from text work."""
    campaign, (agent,) = setup(make, f"linear_{mode}", n_agents=1)
    agents.set_on_call(agent, True)
    db.session.commit()
    arrive(db, campaign, 1)
    assert bool(route(db)) is gets_it


def test_incall_holds_the_agent_for_every_campaign(make: Any, db: Any, client: Any) -> None:
    campaign, (agent,) = setup(make, "linear_incall", n_agents=1)
    other = make.campaign(make.group(), strategy="linear_nopause")
    make.member(other, agent)
    arrive(db, campaign, 1)
    assert len(route(db)) == 1
    arrive(db, other, 1, start=10)
    assert route(db) == []
    answer = client.post(f"/api/voice/agents/{agent.username}/call", json={"on_call": True},
                         headers={"Authorization": "Bearer voice-test-token"})
    assert answer.get_json()["text_exclusive"] is True


def test_interaction_mode_one_at_a_time(make: Any, db: Any) -> None:
    campaign, (agent,) = setup(make, "linear_interaction", n_agents=1)
    ids = arrive(db, campaign, 2)
    assert route(db) == [(ids[0], agent.id)]
    assert route(db) == []


def _listen(app: Any, topic: str) -> Any:
    pubsub = app.extensions["conversa_redis"].pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"conversa:live:{topic}")
    pubsub.get_message(timeout=1.0)
    return pubsub


def _events(pubsub: Any) -> list[dict[str, Any]]:
    found = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        found.append(json.loads(message["data"]))
    return found


def test_ringall_offers_and_the_first_taker_wins(make: Any, db: Any, app: Any) -> None:
    campaign, people = setup(make, "ringall")
    pubsub = _listen(app, f"offers:{campaign.id}")
    ids = arrive(db, campaign, 2)
    assert route(db) == []
    offered = [(e["kind"], e["data"]["interaction_id"]) for e in _events(pubsub)]
    assert offered == [("interaction.offered", ids[0]), ("interaction.offered", ids[1])]
    route(db)  # offers are not repeated at every pass
    assert _events(pubsub) == []
    assert [i.id for i in routing.offers_for(people[1])] == ids
    first = db.session.get(Interaction, ids[0])
    assert interactions.take_offer(first, people[1]) is True
    db.session.commit()
    assert interactions.take_offer(first, people[0]) is False
    db.session.commit()
    assert (first.agent_id, first.status) == (people[1].id, InteractionStatus.ASSIGNED)
    assert [(e["kind"], e["data"]["interaction_id"]) for e in _events(pubsub)] == [("interaction.taken", ids[0])]
    # ringall: one at a time
    second = db.session.get(Interaction, ids[1])
    assert routing.offers_for(people[1]) == []
    with pytest.raises(interactions.InteractionError, match="una a la vez"):  # issue 12.4: says why
        interactions.take_offer(second, people[1])
    assert interactions.take_offer(second, people[2]) is True
    db.session.commit()
    pubsub.close()


def test_ringallmultiple_takes_as_many_as_the_agent_wants(make: Any, db: Any) -> None:
    campaign, people = setup(make, "ringallmultiple")
    ids = arrive(db, campaign, 3)
    for iid in ids:
        assert interactions.take_offer(db.session.get(Interaction, iid), people[0]) is True
        db.session.commit()
    people[1].state = "free_break"
    db.session.commit()
    assert routing.offers_for(people[1]) == []


def test_wrandom_shares_follow_the_penalties(make: Any, db: Any) -> None:
    """Weights 101 - penalty: 101, 51 and 11 of 163; chi-square with 2 degrees of freedom, p = 0.001."""
    campaign, people = setup(make, "wrandom_nopause")
    for agent, penalty in zip(people, (0, 50, 90), strict=True):
        db.session.execute(sa.update(Membership).where(Membership.user_id == agent.id).values(penalty=penalty))
    db.session.commit()
    members = routing.eligible_members(campaign)
    rng = random.Random(20250304)
    draws = 6000
    counts = {p.id: 0 for p in people}
    for _ in range(draws):
        counts[routing.choose(campaign, members, members, rng).id] += 1
    weights = [101, 51, 11]
    expected = [draws * w / sum(weights) for w in weights]
    observed = [counts[p.id] for p in people]
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    assert chi2 < 13.82, (observed, expected)
    assert observed[0] > observed[1] > observed[2] > 0


def test_wrandom_assigns_through_route_waiting(make: Any, db: Any) -> None:
    campaign, people = setup(make, "wrandom_nopause")
    db.session.execute(sa.update(Membership).where(Membership.user_id != people[0].id).values(penalty=100))
    db.session.commit()
    arrive(db, campaign, 60)
    got = [aid for _, aid in route(db, rng=random.Random(5))]
    assert len(got) == 60
    assert got.count(people[0].id) > 40  # 101 of 103 parts


@pytest.mark.parametrize("leave", ["break", "logout"])
def test_break_requeues_what_was_not_answered_and_logout_everything(make: Any, db: Any, leave: str) -> None:
    """Issue 12.3: a break hands back what is not answered (the agent finishes the rest); a sign-out hands
    back everything, the answered one routed first, each remembering who had it."""
    campaign, (first, second) = setup(make, "linear_nopause", n_agents=2)
    ids = arrive(db, campaign, 2)
    route(db)
    answered = db.session.get(Interaction, ids[0])
    interactions.send_agent_message(answered, first, "Hola")
    db.session.commit()
    if leave == "break":
        pause = BreakType(name="almuerzo")
        db.session.add(pause)
        db.session.commit()
        agents.start_break(first, pause.id)
    else:
        agents.on_logout(first)
    db.session.commit()
    unanswered = db.session.get(Interaction, ids[1])
    assert (unanswered.status, unanswered.agent_id, unanswered.previous_agent_id) == (
        InteractionStatus.WAITING, None, first.id)
    if leave == "break":
        assert (answered.status, answered.agent_id) == (InteractionStatus.ACTIVE, first.id)
        assert route(db) == [(ids[1], second.id)]
    else:
        assert (answered.status, answered.agent_id, answered.previous_agent_id) == (
            InteractionStatus.WAITING, None, first.id)
        assert [m.body for m in answered.messages] == ["Hola"]  # its history goes with it
        assert route(db) == [(ids[0], second.id), (ids[1], second.id)]


def test_answered_conversations_handed_back_are_routed_before_the_rest(make: Any, db: Any) -> None:
    """Issue 12.1: a customer already talking with an agent who left goes first, even arriving later."""
    campaign, (first, second) = setup(make, "linear_interaction", n_agents=2)
    waiting_id, = arrive(db, campaign, 1)  # arrived first, never answered
    talking = Interaction(campaign_id=campaign.id, customer_number="+59899111000", status="active", agent_id=first.id,
                          created_at=T0 + timedelta(seconds=30), queued_at=T0 + timedelta(seconds=30),
                          first_reply_at=T0 + timedelta(seconds=40))
    db.session.add(talking)
    second.state = "busy_break"
    db.session.commit()
    moved = agents.on_logout(first)
    db.session.commit()
    assert [i for i, _ in moved.queued] == [talking.id]
    second.state = "free"
    db.session.commit()
    assert route(db) == [(talking.id, second.id)]  # one at a time (interaction mode): the answered one
    assert db.session.get(Interaction, waiting_id).status == InteractionStatus.WAITING


def test_disabled_campaigns_are_not_routed(make: Any, db: Any) -> None:
    campaign, _ = setup(make, "linear_nopause", n_agents=1)
    campaign.enabled = False
    db.session.commit()
    arrive(db, campaign, 1)
    assert route(db) == []
