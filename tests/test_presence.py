"""Issue 12.1 and 12.3: an agent is connected only while one of their pages is live; the sweep disconnects
the others after the grace, and every way of leaving hands the conversations back, saying what went where."""
from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa
import websocket

from tests.helpers import csrf_token, login
from tests.test_live import _session_cookie, _ws_url
from webapp.models import AgentStateSpan, BreakType, Interaction, InteractionStatus, User
from webapp.services import agents, presence
from webapp.services import interactions as conversations
from webapp.services.agent_states import Cause

GRACE = 1.0


@pytest.fixture
def grace(app: Any, monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setitem(app.config, "PRESENCE_GRACE_SECONDS", GRACE)
    return GRACE


@pytest.fixture
def world(make: Any, db: Any, grace: float) -> dict[str, Any]:
    group = make.group()
    campaign = make.campaign(group, did="+59829001000", strategy="linear_nopause")
    ana = make.user("ana", groups=[group], name="Ana", state="free")
    beto = make.user("beto", groups=[group], name="Beto", state="disconnected")
    make.member(campaign, ana, position=0)
    make.member(campaign, beto, position=1)
    return {"group": group, "campaign": campaign, "ana": ana, "beto": beto}


def conversation(db: Any, campaign: Any, agent: Any, status: str, number: str) -> Interaction:
    item = Interaction(campaign_id=campaign.id, customer_number=number, status=status, agent_id=agent.id)
    db.session.add(item)
    db.session.commit()
    return item


def state(db: Any, user: Any) -> str:
    db.session.expire_all()
    return db.session.get(User, user.id).state


def test_no_live_page_past_the_grace_disconnects_and_hands_everything_back(world: dict[str, Any], db: Any) -> None:
    ana = world["ana"]
    unanswered = conversation(db, world["campaign"], ana, InteractionStatus.ASSIGNED, "+59899000001")
    answered = conversation(db, world["campaign"], ana, InteractionStatus.ACTIVE, "+59899000002")
    conversations.send_agent_message(answered, ana, "Hola")
    db.session.commit()
    presence.beat(ana.id, "ws:one")
    assert agents.sweep_presence() == []  # within the grace: nothing
    before = db.session.get(User, ana.id).state_changed_at
    time.sleep(GRACE + 0.2)
    assert agents.sweep_presence() == [ana.id]
    db.session.expire_all()
    ana = db.session.get(User, ana.id)
    assert ana.state == "disconnected" and ana.state_changed_at > before
    span = db.session.scalars(sa.select(AgentStateSpan).where(AgentStateSpan.agent_id == ana.id)
                              .order_by(AgentStateSpan.id.desc())).first()
    assert (span.state, span.cause, span.started_at) == ("disconnected", "presence_timeout", ana.state_changed_at)
    for item in (unanswered, answered):
        assert (item.status, item.agent_id, item.previous_agent_id) == (InteractionStatus.WAITING, None, ana.id)
    assert [m.body for m in answered.messages] == ["Hola"]
    notice = agents.leave_notice(ana.id)
    assert (notice["cause"], notice["queued"]) == ("presence timeout", ["+59899000001", "+59899000002"])
    assert agents.sweep_presence() == []  # once


def test_a_page_back_within_the_grace_changes_nothing(world: dict[str, Any], db: Any) -> None:
    ana = world["ana"]
    presence.beat(ana.id, "ws:one")
    for _ in range(3):
        time.sleep(GRACE * 0.6)
        agents.sweep_presence()
        presence.beat(ana.id, "http:7")  # another page (the polling fallback) keeps going
    assert agents.sweep_presence() == []
    assert state(db, ana) == "free"


def test_an_agent_the_sweep_never_saw_gets_a_grace_from_the_first_sweep(world: dict[str, Any], db: Any) -> None:
    """Redis restarted, or signed in before presence existed: not disconnected on sight."""
    world["beto"].state = "busy"
    db.session.commit()
    assert agents.sweep_presence() == []
    time.sleep(GRACE + 0.2)
    assert sorted(agents.sweep_presence()) == sorted([world["ana"].id, world["beto"].id])


def test_two_sweepers_at_once_disconnect_each_agent_once(world: dict[str, Any], db: Any) -> None:
    ana = world["ana"]
    presence.beat(ana.id, "ws:one")
    later = time.time() + GRACE + 1
    assert presence.lapsed([ana.id], now=later) == [ana.id]
    assert presence.lapsed([ana.id], now=later) == []


def test_a_page_back_after_the_timeout_reconnects_the_agent(world: dict[str, Any], db: Any, client: Any) -> None:
    conversation(db, world["campaign"], world["ana"], InteractionStatus.ACTIVE, "+59899000002")
    login(client, "ana")
    assert client.get("/inbox").status_code == 200  # a workspace request is a beat
    time.sleep(GRACE + 0.2)
    assert agents.sweep_presence() == [world["ana"].id]
    assert state(db, world["ana"]) == "disconnected"
    page = client.get("/inbox").get_data(as_text=True)  # the session lasts: the page comes back
    assert state(db, world["ana"]) == "free"
    assert "Su página estuvo cerrada demasiado tiempo: quedó desconectado." in page


def test_a_signed_out_agent_is_not_brought_back_by_another_browser(world: dict[str, Any], db: Any,
                                                                    client: Any) -> None:
    presence.beat(world["ana"].id, "ws:other-browser")
    agents.on_logout(world["ana"])
    db.session.commit()
    presence.beat(world["ana"].id, "ws:other-browser")
    assert state(db, world["ana"]) == "disconnected"
    assert agents.sweep_presence() == []


def test_an_open_socket_keeps_the_agent_connected_and_its_close_starts_the_grace(live_server: str,
                                                                                   world: dict[str, Any],
                                                                                   db: Any) -> None:
    cookie = _session_cookie(live_server, "ana")
    ws = websocket.create_connection(_ws_url(live_server), cookie=cookie, timeout=5)
    try:
        ws.recv()  # live-status: the socket is served
        deadline = time.monotonic() + GRACE * 3
        while time.monotonic() < deadline:
            assert agents.sweep_presence() == []
            time.sleep(0.2)
        assert state(db, world["ana"]) == "free"
        assert presence.live_pages(world["ana"].id) == 1
    finally:
        ws.close()
    time.sleep(0.3)
    assert agents.sweep_presence() == []  # the close beat: the grace runs from now
    gone: list[int] = []
    deadline = time.monotonic() + GRACE * 4
    while not gone and time.monotonic() < deadline:
        time.sleep(0.2)
        gone = agents.sweep_presence()
    assert gone == [world["ana"].id]


@pytest.mark.parametrize("leave", ["break", "logout", "forced logout", "presence timeout"])
def test_every_way_of_leaving_leaves_a_notice_of_what_went_where(world: dict[str, Any], db: Any, make: Any,
                                                                 leave: str, client: Any) -> None:
    ana = world["ana"]
    conversation(db, world["campaign"], ana, InteractionStatus.ASSIGNED, "+59899000001")
    answered = conversation(db, world["campaign"], ana, InteractionStatus.ACTIVE, "+59899000002")
    if leave == "break":
        lunch = BreakType(name="Almuerzo")
        db.session.add(lunch)
        db.session.commit()
        agents.start_break(ana, lunch.id)
    elif leave == "presence timeout":
        agents.on_presence_timeout(ana)
    else:
        agents.on_logout(ana, Cause.SUPERVISOR if leave == "forced logout" else Cause.AGENT)
    db.session.commit()
    open_with_ana = db.session.scalars(sa.select(Interaction.customer_number).where(
        Interaction.agent_id == ana.id, Interaction.status.in_(InteractionStatus.OPEN))).all()
    # A break keeps what the agent answered (they finish it, busy in break); leaving for good keeps nothing.
    assert open_with_ana == (["+59899000002"] if leave == "break" else [])
    notice = agents.leave_notice(ana.id)
    assert notice["cause"] == leave
    assert notice["queued"] == (["+59899000001"] if leave == "break" else ["+59899000001", "+59899000002"])
    # The agent sees it on their workspace until they dismiss it.
    if leave != "break":
        agents.on_login(db.session.get(User, ana.id))
        db.session.commit()
    login(client, "ana")
    page = client.get("/inbox").get_data(as_text=True)
    assert "volvi" in page[page.index('id="handback-notice"'):][:600]
    response = client.post("/inbox/notice/dismiss", data={"csrf_token": csrf_token(client, "/inbox")},
                           headers={"HX-Request": "true"})
    assert '<div id="handback-notice" hidden' in response.get_data(as_text=True)
    assert agents.leave_notice(ana.id) is None
    assert answered.id


def test_a_hand_back_rolled_back_leaves_no_notice(world: dict[str, Any], db: Any) -> None:
    """The notice says what the database did: a hand-back whose transaction rolls back tells the agent nothing."""
    ana = world["ana"]
    conversation(db, world["campaign"], ana, InteractionStatus.ASSIGNED, "+59899000003")
    agents.on_logout(ana, Cause.SUPERVISOR)
    assert agents.leave_notice(ana.id) is None  # not before the commit either
    db.session.rollback()
    assert agents.leave_notice(ana.id) is None
    db.session.expire_all()
    assert db.session.scalars(sa.select(Interaction.agent_id).where(
        Interaction.customer_number == "+59899000003")).one() == ana.id
