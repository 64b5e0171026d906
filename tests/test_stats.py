"""S1 figures on fixed scenarios with a controlled clock (center time zone America/Montevideo, UTC-3)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

NOW = datetime(2025, 3, 10, 15, 0, 0)  # 12:00 in Montevideo; the local day began at 03:00 UTC


def at(hh: int, mm: int = 0, ss: int = 0, day: int = 10) -> datetime:
    return datetime(2025, 3, day, hh, mm, ss)


@pytest.fixture
def clock(monkeypatch):
    from webapp.services import time as service_time

    monkeypatch.setattr(service_time, "now", lambda: NOW)
    return NOW


def add(db, campaign, status, created, *, reply=None, closed=None, agent=None, channel="sms", number=None):
    from webapp.models import Interaction

    interaction = Interaction(campaign_id=campaign.id, customer_number=number or f"+5989{created:%H%M%S}{status[:2]}",
                              status=status, created_at=created, queued_at=created, first_reply_at=reply,
                              closed_at=closed, agent_id=agent.id if agent else None, channel=channel,
                              assigned_at=created if agent else None, last_message_at=created)
    db.session.add(interaction)
    db.session.commit()
    return interaction


@pytest.fixture
def scenario(db, make, clock):
    """Campaign A: every case of the definitions in services/stats.py; campaign B: nothing today."""
    group = make.group()
    a = make.campaign(group, name="Ventas", sl_threshold_seconds=60, abandon_threshold_seconds=600,
                      chat_time_threshold_seconds=900, acd_max_waiting=2, service_level_target=80)
    b = make.campaign(group, name="Soporte", acd_max_waiting=5)
    agent = make.user("ana", groups=[group])
    make.member(a, agent)
    W, AS, AC, CL, AB = "waiting", "assigned", "active", "closed", "abandoned"
    add(db, a, CL, at(14), reply=at(14, 0, 30), closed=at(14, 10), agent=agent)  # in SL, completed
    add(db, a, AC, at(14), reply=at(14, 2), agent=agent)  # out of SL (120 s), long chat (1 h > 900 s)
    add(db, a, AC, at(14, 50), reply=at(14, 51), agent=agent, channel="whatsapp")  # exactly 60 s: in SL
    add(db, a, W, at(14, 40))  # waiting 1200 s: waiting and abandoned
    add(db, a, W, at(14, 55))  # waiting 300 s: waiting only
    add(db, a, W, at(14, 50))  # waiting exactly 600 s: abandoned (>=)
    add(db, a, AB, at(10), closed=at(10, 20))  # abandoned today
    add(db, a, CL, at(20, day=9), reply=at(20, 1, day=9), closed=at(4), agent=agent)  # arrived yesterday, closed today
    add(db, a, CL, at(2), reply=at(2, 0, 10), closed=at(2, 30), agent=agent)  # 23:00 local yesterday: not today
    add(db, a, CL, at(13), closed=at(13, 5), agent=agent)  # closed unanswered: completed, not abandoned
    add(db, a, AS, at(14, 58), agent=agent)  # routed, not answered, 120 s: active
    return {"a": a, "b": b, "agent": agent, "group": group}


def test_day_starts_at_local_midnight(ctx):
    from webapp.services.time import center_day_start as day_start

    assert day_start(NOW) == datetime(2025, 3, 10, 3, 0)
    # 23:00 local on the 9th still belongs to the 9th.
    assert day_start(datetime(2025, 3, 10, 2, 0)) == datetime(2025, 3, 9, 3, 0)


def test_campaign_figures_on_the_scenario(scenario):
    from webapp.services.stats import campaign_stats

    a_stats, = [s for s in campaign_stats([scenario["a"].id]) if s.name == "Ventas"]
    assert (a_stats.waiting, a_stats.active, a_stats.completed, a_stats.abandoned) == (3, 3, 3, 3)
    assert (a_stats.answered, a_stats.answered_in_sl, a_stats.long_chats) == (3, 2, 1)
    # 2 answered within 60 s over 3 answered + 3 abandoned.
    assert a_stats.service_level == pytest.approx(100 * 2 / 6)
    assert a_stats.waiting_over is True  # 3 > ACD 2
    assert a_stats.chat_time_over is True
    assert a_stats.service_level_under is True  # 33 % < 80 %


def test_empty_campaign_has_no_service_level_and_no_breach(scenario):
    from webapp.services.stats import campaign_stats

    result = campaign_stats([scenario["a"].id, scenario["b"].id])
    assert [s.name for s in result] == ["Soporte", "Ventas"]  # name order
    b_stats = result[0]
    assert (b_stats.waiting, b_stats.active, b_stats.completed, b_stats.abandoned) == (0, 0, 0, 0)
    assert b_stats.service_level is None
    assert not (b_stats.waiting_over or b_stats.chat_time_over or b_stats.service_level_under)


def test_thresholds_move_with_the_clock(scenario, monkeypatch):
    """Ten minutes later the 300 s customer has waited 900 s and the routed-but-unanswered one 720 s:
    both count as abandoned now; SL drops to 2 / (3 + 5)."""
    from webapp.services import stats
    from webapp.services import time as service_time

    later = NOW + timedelta(minutes=10)
    monkeypatch.setattr(service_time, "now", lambda: later)
    a_stats, = stats.campaign_stats([scenario["a"].id])
    assert a_stats.abandoned == 5
    assert a_stats.service_level == pytest.approx(25.0)
    assert (a_stats.waiting, a_stats.active) == (3, 3)


def test_service_level_meets_target(db, make, clock):
    from webapp.services.stats import campaign_stats

    group = make.group()
    campaign = make.campaign(group, sl_threshold_seconds=30, service_level_target=75)
    for secs in (5, 10, 29, 30):
        add(db, campaign, "closed", at(13), reply=at(13) + timedelta(seconds=secs), closed=at(13, 30))
    add(db, campaign, "closed", at(12), reply=at(12, 0, 31), closed=at(12, 30))  # 31 s: late
    s, = campaign_stats([campaign.id])
    assert s.service_level == pytest.approx(80.0)  # 4 of 5
    assert s.service_level_under is False
    assert s.completed == 5


def test_agent_rows_count_today_and_channels(scenario, make):
    from webapp.security import visible_agents
    from webapp.services.stats import agent_rows

    row, = agent_rows(campaign_ids=[scenario["a"].id])
    assert row.name == "ana"
    assert row.active == 3  # two ACTIVE, one ASSIGNED
    assert row.completed == 3  # closed today: 14:10, 04:00 (arrived yesterday) and 13:05
    assert row.channels == {"sms": 2, "whatsapp": 1}
    assert agent_rows(campaign_ids=[scenario["b"].id]) == []
    own = make.user("sup", role="supervisor", groups=[scenario["group"]])
    other = make.user("sup2", role="supervisor", groups=[make.group()])
    assert [r.id for r in agent_rows(viewer_agents=visible_agents(own), campaign_ids=[scenario["a"].id])] == [row.id]
    assert agent_rows(viewer_agents=visible_agents(other), campaign_ids=[scenario["a"].id]) == []


def test_agent_today_average_first_response(scenario):
    from webapp.services.stats import agent_today

    figures = agent_today(scenario["agent"].id)
    # First replies today, measured from assignment: 30 s, 120 s, 60 s; the 02:00 UTC one is before the
    # local day began and the 20:01 one was yesterday → (30 + 120 + 60) / 3.
    assert figures == {"active": 3, "completed": 3, "avg_first_response": 70.0}


def test_waiting_rows_longest_first(scenario):
    from webapp.services.stats import waiting_rows

    rows = waiting_rows([scenario["a"].id])
    assert [r.queued_at for r in rows] == [at(14, 40), at(14, 50), at(14, 55)]
    assert {r.campaign_name for r in rows} == {"Ventas"}
