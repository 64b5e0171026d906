"""S1/S2: who reaches the monitor and the actions, what each action does, its audit entry, the live fragments."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.helpers import csrf_token, login


@pytest.fixture
def world(make, db):
    """Two security groups, each with a campaign, a supervisor and an agent; one break type."""
    from webapp.models import BreakType

    g1, g2 = make.group("norte"), make.group("sur")
    c1 = make.campaign(g1, name="Ventas")
    c2 = make.campaign(g2, name="Cobranzas")
    sup = make.user("sup", role="supervisor", groups=[g1], name="Sofía Supervisora")
    sup2 = make.user("sup2", role="supervisor", groups=[g2])
    agent = make.user("ana", groups=[g1], name="Ana Agente", state="free", monitor_screen_allowed=False)
    other = make.user("oto", groups=[g2], name="Otto", state="free")
    make.member(c1, agent)
    make.member(c2, other)
    lunch = BreakType(name="Almuerzo", icon="🍽")
    db.session.add(lunch)
    db.session.commit()
    return {"g1": g1, "g2": g2, "c1": c1, "c2": c2, "sup": sup, "sup2": sup2, "agent": agent, "other": other,
            "lunch": lunch}


def interaction(db, campaign, agent=None, status="waiting", number="+59899111222", channel="sms", **kw):
    from webapp.models import Interaction

    item = Interaction(campaign_id=campaign.id, customer_number=number, status=status, channel=channel,
                       agent_id=agent.id if agent else None, **kw)
    db.session.add(item)
    db.session.commit()
    return item


def message(db, item, kind, body, user=None):
    from webapp.models import Message

    msg = Message(interaction_id=item.id, sender_kind=kind, body=body, sender_user_id=user.id if user else None)
    db.session.add(msg)
    db.session.commit()
    return msg


def audit_actions(db, target_id):
    from webapp.models import AuditEntry

    db.session.expire_all()
    return [(e.actor_id, e.action, e.target_type, e.target_id) for e in db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.target_id == target_id).order_by(AuditEntry.id))]


@pytest.fixture
def events(app):
    """Collect the live events published to Redis while the test runs: events() -> list."""
    pubsub = app.extensions["conversa_redis"].pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe("conversa:live:*")
    pubsub.get_message(timeout=1)  # the subscription confirmation
    seen: list[dict] = []

    def collect() -> list[dict]:
        while (msg := pubsub.get_message(timeout=0.5)) is not None:
            if msg["type"] == "pmessage":
                seen.append(json.loads(msg["data"]))
        return seen

    yield collect
    pubsub.close()


def agent_urls(agent_id: int, interaction_id: int = 0) -> list[tuple[str, str]]:
    base = f"/monitor/agents/{agent_id}"
    return [("GET", base), ("GET", base + "/spy"), ("GET", base + "/screen"), ("GET", base + "/info"),
            ("GET", base + "/chat"), ("GET", base + "/chat/log"), ("POST", base + "/pause"),
            ("POST", base + "/resume"), ("POST", base + "/logout"), ("POST", base + "/chat")]


# -- access ---------------------------------------------------------------------------
def test_agents_reach_none_of_it(client, world):
    login(client, "ana")
    token = csrf_token(client, "/inbox")
    pages = ["/monitor", "/monitor/stats", "/monitor/agents", "/monitor/waiting", "/transcripts",
             "/transcripts/export.csv", "/transcripts/1", "/transcripts/1.txt"]
    for url in pages:
        assert client.get(url).status_code == 403, url
    for method, url in agent_urls(world["agent"].id):
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 403, url


def test_signed_out_goes_to_sign_in(client, world):
    response = client.get("/monitor")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_supervisor_gets_404_for_another_groups_agent_and_interaction(client, world, db):
    item = interaction(db, world["c2"], world["other"], status="active")
    login(client, "sup")
    token = csrf_token(client, "/monitor")
    for method, url in agent_urls(world["other"].id):
        response = client.open(url, method=method, data={"csrf_token": token, "break_type_id": world["lunch"].id,
                                                         "body": "hola"})
        assert response.status_code == 404, url
    for url in (f"/transcripts/{item.id}", f"/transcripts/{item.id}.txt", f"/transcripts/{item.id}.csv",
                f"/monitor/agents/{world['agent'].id}/spy/{item.id}"):
        assert client.get(url).status_code == 404, url
    db.session.expire_all()
    assert world["other"].state == "free"


def test_monitor_shows_only_own_groups_campaigns_and_agents(client, world, db):
    interaction(db, world["c1"], number="+59891000001")
    interaction(db, world["c2"], number="+59892000002")
    login(client, "sup")
    page = client.get("/monitor").get_data(as_text=True)
    assert "Ventas" in page and "Cobranzas" not in page
    assert f'id="agent-{world["agent"].id}-row"' in page and "Otto" not in page
    assert "+59891000001" in page and "+59892000002" not in page
    assert f"campaign:{world['c1'].id}" in page and f"group:{world['g1'].id}" in page
    assert f"campaign:{world['c2'].id}" not in page
    # Choosing another group's campaign is ignored.
    token = csrf_token(client, "/monitor")
    client.post("/monitor/campaigns", data={"csrf_token": token, "campaigns": [world["c2"].id]})
    page = client.get("/monitor").get_data(as_text=True)
    assert "Cobranzas" not in page and "Ventas" in page  # nothing valid chosen: all own campaigns


def test_campaign_choice_is_remembered(client, world, make, db):
    extra = make.campaign(world["g1"], name="Postventa")
    login(client, "sup")
    token = csrf_token(client, "/monitor")
    assert client.post("/monitor/campaigns", data={"csrf_token": token, "campaigns": [extra.id]}).status_code == 302
    page = client.get("/monitor").get_data(as_text=True)
    assert f'id="campaign-{extra.id}-stats"' in page
    assert f'id="campaign-{world["c1"].id}-stats"' not in page
    assert client.post("/monitor/campaigns", data={"campaigns": [extra.id]}).status_code == 400  # no CSRF


def test_topic_checks_follow_the_groups(ctx, world, db):
    from webapp.live.registry import allowed

    sup, agent = world["sup"], world["agent"]
    assert allowed(sup, f"campaign:{world['c1'].id}") and not allowed(sup, f"campaign:{world['c2'].id}")
    assert allowed(sup, f"group:{world['g1'].id}") and not allowed(sup, f"group:{world['g2'].id}")
    assert allowed(sup, f"chat:{agent.id}") and not allowed(sup, f"chat:{world['other'].id}")
    assert not allowed(sup, f"screen:{agent.id}")  # not allowed by the agent's settings
    agent.monitor_screen_allowed = True
    db.session.commit()
    assert allowed(sup, f"screen:{agent.id}")
    # Agents follow none of the supervision topics.
    for topic in (f"campaign:{world['c1'].id}", f"group:{world['g1'].id}", f"chat:{agent.id}",
                  f"screen:{agent.id}"):
        assert not allowed(agent, topic), topic


# -- actions ----------------------------------------------------------------------------
def test_pause_puts_the_agent_in_break_and_is_audited(client, world, db, events):
    from webapp.models import User

    login(client, "sup")
    token = csrf_token(client, "/monitor")
    agent_id = world["agent"].id
    response = client.post(f"/monitor/agents/{agent_id}/pause", data={"csrf_token": token,
                                                                      "break_type_id": world["lunch"].id},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Almuerzo" in response.get_data(as_text=True)
    agent = db.session.get(User, agent_id)
    db.session.refresh(agent)
    assert agent.state == "free_break" and agent.break_type_id == world["lunch"].id
    assert audit_actions(db, agent_id) == [(world["sup"].id, "agent.pause", "user", agent_id)]
    topics = {(e["topic"], e["kind"]) for e in events()}
    assert (f"user:{agent_id}", "agent.state") in topics  # the agent's page
    assert (f"group:{world['g1'].id}", "agent.state") in topics  # every monitor of the group
    # And back.
    response = client.post(f"/monitor/agents/{agent_id}/resume", data={"csrf_token": token},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    db.session.refresh(agent)
    assert agent.state == "free" and agent.break_type_id is None
    assert [a[1] for a in audit_actions(db, agent_id)] == ["agent.pause", "agent.resume"]


def test_pause_needs_csrf_and_a_break_type(client, world, db):
    login(client, "sup")
    url = f"/monitor/agents/{world['agent'].id}/pause"
    assert client.post(url, data={"break_type_id": world["lunch"].id}).status_code == 400
    token = csrf_token(client, "/monitor")
    response = client.post(url, data={"csrf_token": token, "break_type_id": 999}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    db.session.expire_all()
    assert world["agent"].state == "free"
    assert audit_actions(db, world["agent"].id) == []


def test_logout_ends_the_session_and_hands_back_every_conversation(app, world, db, events):
    """Issue 12.3: a forced log-out leaves nothing stranded (answered ones too); the agent, signing in
    again, reads what went where."""
    from webapp.models import User

    agent_client, sup_client = app.test_client(), app.test_client()
    login(agent_client, "ana")
    assert agent_client.get("/inbox").status_code == 200
    unanswered = interaction(db, world["c1"], world["agent"], status="assigned")
    answered = interaction(db, world["c1"], world["agent"], status="active", number="+59899333444")
    login(sup_client, "sup")
    token = csrf_token(sup_client, "/monitor")
    response = sup_client.post(f"/monitor/agents/{world['agent'].id}/logout", data={"csrf_token": token})
    assert response.status_code == 302
    # The agent's very next request goes to sign-in.
    nxt = agent_client.get("/inbox")
    assert nxt.status_code == 302 and "/login" in nxt.headers["Location"]
    db.session.expire_all()
    agent = db.session.get(User, world["agent"].id)
    assert agent.state == "disconnected"
    assert (unanswered.status, unanswered.agent_id, unanswered.previous_agent_id) == ("waiting", None, agent.id)
    assert (answered.status, answered.agent_id, answered.previous_agent_id) == ("waiting", None, agent.id)
    seen = {(e["topic"], e["kind"]) for e in events()}
    assert (f"user:{agent.id}", "session.ended") in seen
    assert (f"campaign:{world['c1'].id}", "interaction.changed") in seen
    entry, = audit_actions(db, agent.id)
    assert entry == (world["sup"].id, "agent.logout", "user", agent.id)
    # Signing in again works, and says what went where.
    login(agent_client, "ana")
    page = agent_client.get("/inbox").get_data(as_text=True)
    notice = page[page.index('id="handback-notice"'):]
    notice = notice[:notice.index("</div>")]
    assert "Un supervisor cerró su sesión." in notice
    assert "2 conversaciones volvieron a la cola: +59899111222, +59899333444" in notice
    monitor = sup_client.get("/monitor/waiting").get_data(as_text=True)
    assert monitor.count("estaba con Ana Agente") == 2


def test_a_supervisor_may_hand_the_conversations_to_a_named_agent(app, world, db, make):
    from webapp.models import User

    beto = make.user("beto", groups=[world["g1"]], name="Beto", state="free")
    make.member(world["c1"], beto)
    answered = interaction(db, world["c1"], world["agent"], status="active", number="+59899333444")
    agent_client, sup_client = app.test_client(), app.test_client()
    login(sup_client, "sup")
    panel = sup_client.get(f"/monitor/agents/{world['agent'].id}").get_data(as_text=True)
    assert f'<option value="{beto.id}">Beto</option>' in panel
    token = csrf_token(sup_client, "/monitor")
    # Another group's agent is 404, and nothing moved.
    assert sup_client.post(f"/monitor/agents/{world['agent'].id}/logout",
                           data={"csrf_token": token, "to_agent_id": world["other"].id}).status_code == 404
    response = sup_client.post(f"/monitor/agents/{world['agent'].id}/logout",
                               data={"csrf_token": token, "to_agent_id": beto.id}, headers={"HX-Request": "true"})
    assert "1 conversación pasó a Beto." in response.get_data(as_text=True)
    db.session.expire_all()
    assert (answered.status, answered.agent_id, answered.previous_agent_id) == ("assigned", beto.id, world["agent"].id)
    assert db.session.get(User, beto.id).state == "busy"
    login(agent_client, "ana")
    assert "1 conversación pasó a Beto: +59899333444" in agent_client.get("/inbox").get_data(as_text=True)


def test_monitor_screen_refused_unless_the_agent_allows_it(client, world, db, app):
    from webapp.models import User

    login(client, "sup")
    url = f"/monitor/agents/{world['agent'].id}/screen"
    panel = client.get(f"/monitor/agents/{world['agent'].id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-action="screen"' not in panel
    refused = client.get(url, headers={"HX-Request": "true"})
    assert refused.status_code == 403
    assert "not enabled" in refused.get_data(as_text=True) or "no está habilitado" in refused.get_data(as_text=True)
    agent = db.session.get(User, world["agent"].id)
    agent.monitor_screen_allowed = True
    db.session.commit()
    item = interaction(db, world["c1"], agent, status="active")
    message(db, item, "customer", "¿Tienen stock?")
    app.extensions["conversa_redis"].set(f"conversa:screen:{agent.id}", json.dumps(
        {"agent_id": agent.id, "interaction_id": item.id, "draft": "Sí, <b>tenemos</b>", "ts": 1}))
    panel = client.get(f"/monitor/agents/{agent.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-action="screen"' in panel
    page = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'id="screen-{agent.id}"' in page and "¿Tienen stock?" in page
    assert "Sí, &lt;b&gt;tenemos&lt;/b&gt;" in page  # escaped
    assert "agent.screen" in [a[1] for a in audit_actions(db, agent.id)]


def test_spy_shows_the_open_conversations_escaped(client, world, db):
    item = interaction(db, world["c1"], world["agent"], status="active")
    message(db, item, "customer", "<script>alert(1)</script> hola")
    message(db, item, "agent", "Buenas, ¿en qué ayudo?", world["agent"])
    login(client, "sup")
    page = client.get(f"/monitor/agents/{world['agent'].id}/spy", headers={"HX-Request": "true"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'id="messages-{item.id}"' in text and f"interaction:{item.id}" in text
    assert "&lt;script&gt;" in text and "<script>alert" not in text
    assert text.index("hola") < text.index("Buenas")
    assert "agent.spy" in [a[1] for a in audit_actions(db, world["agent"].id)]


def test_info_shows_the_agents_details(client, world, db, make):
    from webapp.models import Membership

    membership = db.session.scalar(sa.select(Membership).where(Membership.user_id == world["agent"].id))
    membership.position, membership.penalty = 3, 40
    db.session.commit()
    login(client, "sup")
    text = client.get(f"/monitor/agents/{world['agent'].id}/info", headers={"HX-Request": "true"}).get_data(
        as_text=True)
    for expected in ("Ana Agente", "ana", "norte", "Ventas", ">3<", ">40<"):
        assert expected in text, expected


def test_chat_both_ways_is_stored(app, world, db, events):
    from webapp.models import AgentChatMessage

    sup_client, agent_client = app.test_client(), app.test_client()
    login(sup_client, "sup")
    login(agent_client, "ana")
    token = csrf_token(sup_client, "/monitor")
    url = f"/monitor/agents/{world['agent'].id}/chat"
    response = sup_client.post(url, data={"csrf_token": token, "body": "¿Podés tomar la cola de Ventas?"},
                               headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "chat-sent"
    agent_token = csrf_token(agent_client, "/inbox")
    reply = agent_client.post("/inbox/chat", data={"csrf_token": agent_token, "body": "Sí, ya voy"},
                              headers={"HX-Request": "true"})
    assert reply.status_code == 200
    db.session.expire_all()
    lines = db.session.scalars(sa.select(AgentChatMessage).order_by(AgentChatMessage.id)).all()
    assert [(line.author_id, line.body) for line in lines] == [
        (world["sup"].id, "¿Podés tomar la cola de Ventas?"), (world["agent"].id, "Sí, ya voy")]
    assert all(line.agent_id == world["agent"].id for line in lines)
    log = sup_client.get(url + "/log").get_data(as_text=True)
    assert log.index("tomar la cola") < log.index("ya voy")
    seen = [(e["topic"], e["kind"], e["data"].get("chat_id")) for e in events()]
    assert (f"user:{world['agent'].id}", "chat.message", lines[0].id) in seen
    assert (f"chat:{world['agent'].id}", "chat.message", lines[0].id) in seen
    assert (f"chat:{world['agent'].id}", "chat.message", lines[1].id) in seen
    assert "agent.chat" in [a[1] for a in audit_actions(db, world["agent"].id)]


# -- live fragments ---------------------------------------------------------------------------
def render(app, topic, kind, **data):
    from webapp.live.events import make_event
    from webapp.live.registry import find_renderer

    fn, _per_viewer = find_renderer({"topic": topic, "kind": kind})
    with app.test_request_context("/ws"):
        return fn(make_event(topic, kind, data), None)


def test_live_renderers_produce_stable_ids(app, world, db):
    from webapp.models import AgentChatMessage

    waiting = interaction(db, world["c1"], number="+59899000111")
    handled = interaction(db, world["c1"], world["agent"], status="active", channel="whatsapp")
    html, rows = render(app, f"campaign:{world['c1'].id}", "interaction.changed", interaction_id=waiting.id)
    assert f'id="campaign-{world["c1"].id}-stats" hx-swap-oob="true"' in html
    assert f'<i data-remove="waiting-{waiting.id}">' in html  # then inserted afresh
    assert 'hx-swap-oob="beforeend:#waiting-list"' in html and "+59899000111" in html
    assert rows == ""  # nobody has it yet
    html, rows = render(app, f"campaign:{world['c1'].id}", "interaction.changed", interaction_id=handled.id)
    assert f'<i data-remove="waiting-{handled.id}">' in html
    assert "beforeend:#waiting-list" not in html
    # The agent's row comes in a frame of its own that starts with it: after the stats block in the same
    # frame, the browser's parser would drop the <tr> (the row would never update live).
    assert "<tr" not in html
    assert re.match(rf'\s*<tr id="agent-{world["agent"].id}-row"[^>]*hx-swap-oob="true"', rows)
    assert "ch-whatsapp" in rows
    html = render(app, f"group:{world['g1'].id}", "agent.state", agent_id=world["agent"].id)
    assert re.search(rf'<tr id="agent-{world["agent"].id}-row"[^>]*hx-swap-oob="true"', html)
    # An agent of another group is not rendered on this group's topic.
    assert render(app, f"group:{world['g1'].id}", "agent.state", agent_id=world["other"].id) is None
    line = AgentChatMessage(agent_id=world["agent"].id, author_id=world["agent"].id, body="<i>listo</i>")
    db.session.add(line)
    db.session.commit()
    html = render(app, f"chat:{world['agent'].id}", "chat.message", chat_id=line.id)
    assert f'hx-swap-oob="beforeend:#chat-log-{world["agent"].id}"' in html
    assert f'id="chat-line-{line.id}"' in html and "&lt;i&gt;listo&lt;/i&gt;" in html
    world["agent"].monitor_screen_allowed = True
    db.session.commit()
    html = render(app, f"screen:{world['agent'].id}", "screen.state", agent_id=world["agent"].id,
                  interaction_id=handled.id, draft="Hola <3")
    assert f'id="screen-{world["agent"].id}"' in html and 'hx-swap-oob="true"' in html and "Hola &lt;3" in html


def test_monitor_renders_with_controlled_clock(client, world, db, monkeypatch):
    """The waiting timer starts from queued_at; the stats block shows the threshold crossing."""
    from webapp.models import utcnow
    from webapp.services import time as service_time

    now = utcnow()
    monkeypatch.setattr(service_time, "now", lambda: now)
    world["c1"].acd_max_waiting = 1
    db.session.commit()
    for n in range(2):
        interaction(db, world["c1"], number=f"+5989900000{n}", created_at=now - timedelta(minutes=n),
                    queued_at=now - timedelta(minutes=n))
    login(client, "sup")
    text = client.get("/monitor/stats").get_data(as_text=True)
    assert re.search(r'class="fig over" data-fig="waiting"><span>[^<]+</span><b>2</b>', text)
