"""Issue 15: every agent state change is kept as a span with its cause (services/agent_states.py)."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from tests.helpers import csrf_token, login

T0 = datetime(2026, 3, 1, 12, 0, 0)


def spans(db, agent_id):
    from webapp.models import AgentStateSpan

    db.session.expire_all()
    return [(s.state, s.break_type_id, s.on_call, s.cause, s.started_at, s.ended_at)
            for s in db.session.scalars(sa.select(AgentStateSpan).where(AgentStateSpan.agent_id == agent_id)
                                        .order_by(AgentStateSpan.started_at, AgentStateSpan.id))]


def test_record_state_ends_the_open_span_and_opens_the_next(make, db):
    from webapp.models import AgentState, BreakType
    from webapp.services.agent_states import Cause, record_on_call, record_state

    agent = make.user("ana")
    lunch = BreakType(name="Almuerzo")
    db.session.add(lunch)
    db.session.commit()
    assert record_state(agent, AgentState.FREE, Cause.AGENT, T0)
    assert not record_state(agent, AgentState.FREE, Cause.ROUTING, T0 + timedelta(seconds=5))  # no change
    assert record_state(agent, AgentState.BUSY, Cause.ROUTING, T0 + timedelta(minutes=1))
    assert record_on_call(agent, True, Cause.VOICE, T0 + timedelta(minutes=2))
    assert record_state(agent, AgentState.FREE_BREAK, "supervisor", T0 + timedelta(minutes=3),
                        break_type_id=lunch.id)
    assert record_state(agent, AgentState.DISCONNECTED, Cause.PRESENCE_TIMEOUT, T0 + timedelta(minutes=4),
                        break_type_id=lunch.id)  # a break type outside a break is dropped
    db.session.commit()
    m = [T0 + timedelta(minutes=k) for k in range(5)]
    assert spans(db, agent.id) == [
        ("free", None, False, "agent", m[0], m[1]),
        ("busy", None, False, "routing", m[1], m[2]),
        ("busy", None, True, "voice", m[2], m[3]),
        ("free_break", lunch.id, True, "supervisor", m[3], m[4]),
        ("disconnected", None, True, "presence_timeout", m[4], None),
    ]
    assert agent.state_changed_at == m[4] and agent.break_type_id is None


def test_sign_in_breaks_and_sign_out_leave_their_history(client, make, db):
    from webapp.models import BreakType

    g = make.group()
    make.user("ana", groups=[g])
    lunch = BreakType(name="Almuerzo")
    db.session.add(lunch)
    db.session.commit()
    login(client, "ana")
    token = csrf_token(client, "/inbox")
    assert client.post("/inbox/break", data={"csrf_token": token, "break_type_id": lunch.id}).status_code < 400
    assert client.post("/logout", data={"csrf_token": token}).status_code < 400
    from webapp.models import User

    agent = db.session.scalar(sa.select(User).where(User.username == "ana"))
    rows = spans(db, agent.id)
    assert [(r[0], r[1], r[3]) for r in rows] == [("free", None, "agent"), ("free_break", lunch.id, "agent"),
                                                  ("disconnected", None, "agent")]
    assert all(r[5] is not None for r in rows[:-1]) and rows[-1][5] is None


def test_a_supervisors_log_out_is_recorded_as_theirs(app, make, db):
    from webapp.models import User

    g = make.group()
    make.user("sup", role="supervisor", groups=[g])
    make.user("ana", groups=[g])
    agent_client, sup_client = app.test_client(), app.test_client()
    login(agent_client, "ana")
    login(sup_client, "sup")
    agent = db.session.scalar(sa.select(User).where(User.username == "ana"))
    token = csrf_token(sup_client, "/monitor")
    assert sup_client.post(f"/monitor/agents/{agent.id}/logout", data={"csrf_token": token}).status_code < 400
    assert [(r[0], r[3]) for r in spans(db, agent.id)] == [("free", "agent"), ("disconnected", "supervisor")]
