"""A1-A5: the agent workspace over HTTP, its socket renderers, topic checks and client handlers."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers import csrf_token, login, run_jobs
from webapp.models import (
    AgentChatMessage,
    BreakType,
    CannedResponse,
    Interaction,
    InteractionStatus,
    Message,
    User,
    utcnow,
)

CUSTOMER = "+59899123456"


@pytest.fixture
def world(make: Any, db: Any) -> dict[str, Any]:
    group = make.group()
    provider = make.provider("sandbox")
    sales = make.campaign(group, provider, name="Ventas", did="+59829001000", strategy="linear_nopause")
    support = make.campaign(group, provider, name="Soporte", did="+59829002000", strategy="linear_nopause")
    ana = make.user("ana", name="Ana Agente", groups=[group], state="free")
    beto = make.user("beto", groups=[group], state="free")
    for campaign in (sales, support):
        make.member(campaign, ana)
        make.member(campaign, beto)
    db.session.add_all([
        CannedResponse(campaign_id=sales.id, title="Saludo", body="¡Hola! Soy Ana, ¿en qué te ayudo?", position=0),
        CannedResponse(campaign_id=sales.id, title="Recordatorio", body="Te recordamos tu turno.",
                       template_ref="HXrecordatorio", position=1),
    ])
    db.session.commit()
    return {"group": group, "provider": provider, "sales": sales, "support": support, "ana": ana, "beto": beto}


def conversation(db: Any, campaign: Any, agent: Any | None, number: str = CUSTOMER, name: str = "",
                 texts: tuple[str, ...] = ("Hola",), status: str = InteractionStatus.ASSIGNED,
                 channel: str = "sms", minutes_ago: int = 0, unread: int = 0) -> Interaction:
    """An interaction with customer messages, as routing leaves it."""
    at = utcnow() - timedelta(minutes=minutes_ago)
    interaction = Interaction(campaign_id=campaign.id, customer_number=number, customer_name=name, channel=channel,
                              status=status, agent_id=agent.id if agent else None, created_at=at, queued_at=at,
                              assigned_at=at if agent else None, last_message_at=at,
                              last_customer_message_at=at, unread=unread)
    db.session.add(interaction)
    db.session.flush()
    for text in texts:
        db.session.add(Message(interaction_id=interaction.id, sender_kind="customer", body=text, created_at=at))
    db.session.commit()
    return interaction


def next_event(pubsub: Any) -> dict[str, Any]:
    """The next live event on a subscription (the subscribe confirmation is skipped)."""
    for _ in range(20):
        message = pubsub.get_message(timeout=0.5)
        if message is not None:
            return json.loads(message["data"])
    raise AssertionError("no live event")


def htmx(client: Any, path: str = "/inbox") -> dict[str, str]:
    return {"HX-Request": "true", "X-CSRFToken": csrf_token(client, path)}


def page(client: Any, path: str = "/inbox", **kw: Any) -> str:
    response = client.get(path, **kw)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


# -- access --------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/inbox", "/inbox/list", "/inbox/offers", "/inbox/state", "/inbox/chat"])
def test_pages_need_an_agent(client: Any, make: Any, path: str) -> None:
    assert client.get(path).status_code == 302
    make.user("sup", role="supervisor")
    login(client, "sup")
    assert client.get(path).status_code == 403


def test_agent_cannot_reach_another_agents_interaction(client: Any, world: dict[str, Any], db: Any) -> None:
    """Every door to a conversation of someone else answers 404, never its data."""
    theirs = conversation(db, world["sales"], world["beto"], texts=("secreto de beto",))
    login(client, "ana")
    headers = htmx(client)
    for path in ("", "/messages", "/history"):
        assert client.get(f"/inbox/{theirs.id}{path}").status_code == 404
    for path in ("/send", "/close", "/transfer", "/open", "/take"):
        response = client.post(f"/inbox/{theirs.id}{path}", data={"body": "x", "disposition": "resolved"},
                               headers=headers)
        assert response.status_code == 404, path
    assert "secreto de beto" not in page(client)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 1


def test_state_changes_need_csrf(client: Any, world: dict[str, Any], db: Any) -> None:
    mine = conversation(db, world["sales"], world["ana"])
    login(client, "ana")
    assert client.post(f"/inbox/{mine.id}/send", data={"body": "hola"}).status_code == 400
    assert client.post("/inbox/break", data={"break_type_id": "1"}).status_code == 400


# -- the list ------------------------------------------------------------------------------
def test_list_shows_own_open_conversations_newest_first_and_searches(client: Any, world: dict[str, Any],
                                                                      db: Any) -> None:
    old = conversation(db, world["sales"], world["ana"], number="+59899000001", name="Marta Gómez",
                       texts=("Consulta vieja",), minutes_ago=30)
    new = conversation(db, world["support"], world["ana"], number="+59899000002", name="Pedro",
                       texts=("Se cortó internet",), minutes_ago=1, unread=2)
    closed = conversation(db, world["sales"], world["ana"], number="+59899000003", status=InteractionStatus.CLOSED)
    conversation(db, world["sales"], world["beto"], number="+59899000004", name="Cliente de Beto")
    login(client, "ana")
    html = page(client)
    assert html.index(f'id="interaction-{new.id}"') < html.index(f'id="interaction-{old.id}"') \
        < html.index(f'id="interaction-{closed.id}"')
    assert "Cliente de Beto" not in html
    assert "Se cortó internet" in html and 'class="unread"' in html
    assert 'ws-connect="/ws?topics=offers%3A' in html

    def found(q: str) -> set[int]:
        fragment = page(client, "/inbox/list", query_string={"q": q}, headers={"HX-Request": "true"})
        return {i.id for i in (old, new, closed) if f'id="interaction-{i.id}"' in fragment}

    assert found("soporte") == {new.id}  # campaign name, any case
    assert found("marta") == {old.id}  # customer name
    assert found("0003") == {closed.id}  # number digits
    assert found("99 000 001") == {old.id}  # spaces in a typed number do not matter
    assert found("nadie") == set()
    # Without JavaScript the search is a plain GET of the page.
    assert f'id="interaction-{new.id}"' in page(client, "/inbox", query_string={"q": "Pedro"})
    assert f'id="interaction-{old.id}"' not in page(client, "/inbox", query_string={"q": "Pedro"})


def test_opening_a_conversation_marks_it_read(client: Any, world: dict[str, Any], db: Any) -> None:
    mine = conversation(db, world["sales"], world["ana"], texts=("uno", "dos"), unread=2)
    login(client, "ana")
    html = page(client, f"/inbox/{mine.id}")
    assert "Ventas" in html and CUSTOMER in html  # campaign name and customer number on top
    assert f'hx-post="/inbox/{mine.id}/open" hx-trigger="load"' in html
    response = client.post(f"/inbox/{mine.id}/open", headers=htmx(client))
    assert response.status_code == 200
    assert f'id="interaction-{mine.id}"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Interaction, mine.id).unread == 0
    assert 'hx-trigger="load"' not in page(client, f"/inbox/{mine.id}")


def test_a_conversation_answers_page_or_fragment_and_says_it_varies(client: Any, world: dict[str, Any],
                                                                    db: Any) -> None:
    """The same URL is the full page or the pane's fragment: a cache must keep them apart (Vary)."""
    mine = conversation(db, world["sales"], world["ana"])
    login(client, "ana")
    full = client.get(f"/inbox/{mine.id}")
    fragment = client.get(f"/inbox/{mine.id}", headers={"HX-Request": "true"})
    assert "<html" in full.get_data(as_text=True) and "<html" not in fragment.get_data(as_text=True)
    assert f'id="conv-{mine.id}"' in fragment.get_data(as_text=True)
    for response in (full, fragment):
        assert response.status_code == 200
        assert "HX-Request" in response.headers.get("Vary", "")


def test_a_back_button_restore_gets_the_whole_page(client: Any, world: dict[str, Any], db: Any) -> None:
    """htmx's history restore (back button, page not in its cache) sends HX-Request too, with
    HX-History-Restore-Request: it swaps the answer in as the whole body, so it must get the page."""
    mine = conversation(db, world["sales"], world["ana"])
    login(client, "ana")
    restored = client.get(f"/inbox/{mine.id}", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert restored.status_code == 200 and "<html" in restored.get_data(as_text=True)
    assert "HX-History-Restore-Request" in restored.headers.get("Vary", "")


def test_customer_html_shows_as_text(client: Any, world: dict[str, Any], db: Any) -> None:
    mine = conversation(db, world["sales"], world["ana"], name="<b>Eve</b>",
                        texts=("<script>alert('x')</script><img src=x onerror=alert(1)>",))
    login(client, "ana")
    for html in (page(client), page(client, f"/inbox/{mine.id}")):
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>Eve</b>" not in html
        assert "&lt;script&gt;alert(" in html


# -- composer ------------------------------------------------------------------------------
def test_send_queues_the_message_and_the_gateway_gets_it(client: Any, make: Any, db: Any, app: Any,
                                                         fake_twilio: Any) -> None:
    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN

    group = make.group()
    provider = make.provider("twilio", sender="+15005550006", base_url=fake_twilio.url, max_per_second=0,
                             credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN})
    campaign = make.campaign(group, provider, did="+15005550006", strategy="linear_nopause")
    ana = make.user("ana", groups=[group], state="free")
    make.member(campaign, ana)
    mine = conversation(db, campaign, ana)
    login(client, "ana")
    queue = app.extensions["conversa_queues"]["inbound"]
    response = client.post(f"/inbox/{mine.id}/send", data={"body": "Hola, ¿cómo te ayudo? 😊"},
                           headers=htmx(client))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    sent = db.session.scalar(sa.select(Message).where(Message.sender_kind == "agent"))
    assert f'id="message-{sent.id}"' in html and 'class="tick queued"' in html
    # The first reply makes it active: the header's label ("New") follows out of band.
    assert f'<span class="status-label active" id="conv-status-{mine.id}" hx-swap-oob="true">' in html
    assert sent.status == "queued" and sent.body == "Hola, ¿cómo te ayudo? 😊"
    assert queue.count == 1
    run_jobs(app)
    assert [m["body"] for m in fake_twilio.sends_for(CUSTOMER)] == ["Hola, ¿cómo te ayudo? 😊"]
    db.session.expire_all()
    assert db.session.get(Message, sent.id).status == "sent"
    assert db.session.get(Interaction, mine.id).status == InteractionStatus.ACTIVE
    again = client.post(f"/inbox/{mine.id}/send", data={"body": "¿Sigue ahí?"}, headers=htmx(client))
    assert again.status_code == 200 and "¿Sigue ahí?" in again.get_data(as_text=True)
    assert "conv-status-" not in again.get_data(as_text=True)  # already active: nothing to change


def test_send_without_javascript_redirects_back(client: Any, world: dict[str, Any], db: Any) -> None:
    mine = conversation(db, world["sales"], world["ana"])
    login(client, "ana")
    token = csrf_token(client, "/inbox")
    response = client.post(f"/inbox/{mine.id}/send", data={"body": "línea 1\r\nlínea 2", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == f"/inbox/{mine.id}"
    assert db.session.scalar(sa.select(Message.body).where(Message.sender_kind == "agent")) == "línea 1\nlínea 2"


def test_canned_responses_and_emoji_are_in_the_composer(client: Any, world: dict[str, Any], db: Any) -> None:
    mine = conversation(db, world["sales"], world["ana"])
    login(client, "ana")
    html = page(client, f"/inbox/{mine.id}")
    assert 'data-insert="¡Hola! Soy Ana, ¿en qué te ayudo?"' in html and "<b>Saludo</b>" in html
    assert html.count('data-insert="') >= 40 + 2
    assert 'data-segments="seg-' in html


def test_whatsapp_outside_24h_offers_only_templates(client: Any, make: Any, world: dict[str, Any], db: Any) -> None:
    mine = conversation(db, world["sales"], world["ana"], channel="whatsapp")
    mine.last_customer_message_at = utcnow() - timedelta(hours=25)
    db.session.commit()
    login(client, "ana")
    html = page(client, f"/inbox/{mine.id}", headers={"HX-Request": "true"})  # the conversation alone
    assert 'name="body"' not in html and "24" in html
    template = db.session.scalar(sa.select(CannedResponse).where(CannedResponse.template_ref.is_not(None)))
    assert f'name="canned_id" value="{template.id}"' in html
    assert "Saludo" not in html  # a free-text canned response is no template
    headers = htmx(client)
    refused = client.post(f"/inbox/{mine.id}/send", data={"body": "texto libre"}, headers=headers)
    assert refused.headers["HX-Retarget"] == f"#composer-error-{mine.id}"
    assert "24" in refused.get_data(as_text=True)
    ok = client.post(f"/inbox/{mine.id}/send", data={"canned_id": str(template.id)}, headers=headers)
    assert ok.status_code == 200 and "HX-Retarget" not in ok.headers
    sent = db.session.scalars(sa.select(Message).where(Message.sender_kind == "agent")).all()
    assert [(m.body, m.template_ref) for m in sent] == [("Te recordamos tu turno.", "HXrecordatorio")]
    # Within the window the composer is free text again.
    mine.last_customer_message_at = utcnow()
    db.session.commit()
    assert 'name="body"' in page(client, f"/inbox/{mine.id}", headers={"HX-Request": "true"})


def test_a_template_of_another_campaign_is_refused(client: Any, world: dict[str, Any], db: Any) -> None:
    mine = conversation(db, world["support"], world["ana"], channel="whatsapp")
    template = db.session.scalar(sa.select(CannedResponse).where(CannedResponse.template_ref.is_not(None)))
    login(client, "ana")
    assert client.post(f"/inbox/{mine.id}/send", data={"canned_id": str(template.id)},
                       headers=htmx(client)).status_code == 404


def test_earlier_interactions_menu(client: Any, world: dict[str, Any], db: Any) -> None:
    conversation(db, world["support"], world["beto"], texts=("Mi pedido anterior",), status=InteractionStatus.CLOSED,
                 minutes_ago=600)
    mine = conversation(db, world["sales"], world["ana"])
    login(client, "ana")
    fragment = page(client, f"/inbox/{mine.id}/history", headers={"HX-Request": "true"})
    assert "Mi pedido anterior" in fragment and "Soporte" in fragment
    assert "Mi pedido anterior" in page(client, f"/inbox/{mine.id}/history")  # without JavaScript too


# -- close and transfer -----------------------------------------------------------------------
def test_close_with_a_disposition(client: Any, world: dict[str, Any], db: Any) -> None:
    mine = conversation(db, world["sales"], world["ana"])
    login(client, "ana")
    html = page(client, f"/inbox/{mine.id}")
    assert f'action="/inbox/{mine.id}/close"' in html and 'value="resolved"' in html
    response = client.post(f"/inbox/{mine.id}/close", data={"disposition": "sale", "note": ""},
                           headers=htmx(client))
    assert response.headers["HX-Retarget"] == "#conversation"
    assert f'<i data-remove="interaction-{mine.id}">' in response.get_data(as_text=True)
    db.session.expire_all()
    closed = db.session.get(Interaction, mine.id)
    assert closed.status == InteractionStatus.CLOSED and closed.disposition == "Venta"  # as the agent read it
    other = conversation(db, world["sales"], world["ana"], number="+59899000009")
    client.post(f"/inbox/{other.id}/close", data={"disposition": "resolved", "note": "Pidió baja del plan"},
                headers=htmx(client))
    db.session.expire_all()
    assert db.session.get(Interaction, other.id).disposition == "Pidió baja del plan"


def test_transfer_to_an_agent_or_a_campaign(client: Any, world: dict[str, Any], db: Any) -> None:
    first = conversation(db, world["sales"], world["ana"])
    second = conversation(db, world["sales"], world["ana"], number="+59899000002")
    login(client, "ana")
    html = page(client, f"/inbox/{first.id}")
    assert f'<option value="{world["beto"].id}">beto · Libre</option>' in html
    assert f'<option value="{world["support"].id}">Soporte</option>' in html
    headers = htmx(client)
    response = client.post(f"/inbox/{first.id}/transfer", data={"agent_id": world["beto"].id, "campaign_id": 0},
                           headers=headers)
    assert "beto" in response.get_data(as_text=True)
    client.post(f"/inbox/{second.id}/transfer", data={"agent_id": 0, "campaign_id": world["support"].id},
                headers=headers)
    db.session.expire_all()
    assert db.session.get(Interaction, first.id).agent_id == world["beto"].id
    moved = db.session.get(Interaction, second.id)
    assert (moved.campaign_id, moved.agent_id, moved.status) == (world["support"].id, None, InteractionStatus.WAITING)
    # Neither a target nor one outside the agent's reach.
    third = conversation(db, world["sales"], world["ana"], number="+59899000003")
    empty = client.post(f"/inbox/{third.id}/transfer", data={"agent_id": 0, "campaign_id": 0}, headers=headers)
    assert empty.headers["HX-Retarget"] == f"#conv-notice-{third.id}"
    assert client.post(f"/inbox/{third.id}/transfer", data={"agent_id": 99999}, headers=headers).status_code == 404


def test_the_transfer_menu_shows_each_agents_state_and_leaves_out_who_cannot_take_it(
        client: Any, make: Any, world: dict[str, Any], db: Any) -> None:
    """Issue 12.4: the menu listed disconnected and resting agents, and no states."""
    mine = conversation(db, world["sales"], world["ana"])
    conversation(db, world["sales"], world["beto"], number="+59899000002")
    world["beto"].state = "busy"
    people = {name: make.user(name, groups=[world["group"]], state=state) for name, state in (
        ("caro", "free"), ("dani", "disconnected"), ("eli", "free_break"), ("fede", "busy_break"))}
    people["gabi"] = make.user("gabi", groups=[world["group"]], state="free", voice=False)  # M2: no voice campaign
    for agent in people.values():
        make.member(world["sales"], agent)
    db.session.commit()
    login(client, "ana")
    menu = client.get(f"/inbox/{mine.id}/transfer", headers=htmx(client)).get_data(as_text=True)
    options = re.findall(r'<option value="(\d+)">([^<]*)</option>', menu.split('name="campaign_id"')[0])
    assert [label for _, label in options] == ["—", "caro · Libre", "beto · Ocupado"], menu
    for name in ("dani", "eli", "fede", "gabi"):  # and a hand-made post to them answers 404
        response = client.post(f"/inbox/{mine.id}/transfer", data={"agent_id": people[name].id, "campaign_id": 0},
                               headers=htmx(client))
        assert response.status_code == 404, name
    db.session.expire_all()
    assert db.session.get(Interaction, mine.id).agent_id == world["ana"].id


def test_the_workspace_refuses_what_the_agent_may_not_use(client: Any, make: Any, world: dict[str, Any],
                                                          db: Any) -> None:
    """A disabled break, a campaign or an agent outside the transfer menu, an offer of a campaign that is
    not the agent's: each answers 404 and changes nothing."""
    off = BreakType(name="Apagado", icon="x", enabled=False)
    db.session.add(off)
    other = make.campaign(world["group"], world["provider"], name="Ajena", did="+59829003000", strategy="ringall")
    inactive = make.user("ceci", groups=[world["group"]], state="free", active=False)
    make.member(world["sales"], inactive)
    mine = conversation(db, world["sales"], world["ana"])
    offer = conversation(db, other, None, number="+59899000009", status=InteractionStatus.WAITING)
    login(client, "ana")
    headers = htmx(client)
    assert client.post("/inbox/break", data={"break_type_id": off.id}, headers=headers).status_code == 404
    for data in ({"agent_id": 0, "campaign_id": other.id}, {"agent_id": inactive.id, "campaign_id": 0}):
        assert client.post(f"/inbox/{mine.id}/transfer", data=data, headers=headers).status_code == 404
    assert client.post(f"/inbox/{offer.id}/take", headers=headers).status_code == 404
    db.session.expire_all()
    assert db.session.get(User, world["ana"].id).break_type_id is None
    assert (db.session.get(Interaction, mine.id).agent_id, db.session.get(Interaction, mine.id).campaign_id) == (
        world["ana"].id, world["sales"].id)
    assert db.session.get(Interaction, offer.id).agent_id is None


# -- ringall offers -------------------------------------------------------------------------------
def test_ringall_offer_goes_to_the_first_taker(client: Any, app: Any, make: Any, world: dict[str, Any],
                                               db: Any) -> None:
    world["sales"].strategy = "ringall"
    db.session.commit()
    offer = conversation(db, world["sales"], None, status=InteractionStatus.WAITING, texts=("¿Alguien?",))
    login(client, "ana")
    html = page(client)
    assert f'id="offer-{offer.id}"' in html
    assert f'hx-post="/inbox/{offer.id}/take" hx-target="#conversation"' in html
    other = app.test_client()
    login(other, "beto")
    won = other.post(f"/inbox/{offer.id}/take", headers=htmx(other))
    # No retarget: the Take forms target #conversation themselves, and htmx would look a retarget up from
    # the offer, which the socket may have removed by then (the offer leaves for everyone once taken).
    assert "HX-Retarget" not in won.headers and "¿Alguien?" in won.get_data(as_text=True)
    lost = client.post(f"/inbox/{offer.id}/take", headers=htmx(client))
    assert "HX-Retarget" not in lost.headers
    assert "Otro agente ya tomó esta conversación." in lost.get_data(as_text=True)
    assert f'<i data-remove="offer-{offer.id}">' in lost.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Interaction, offer.id).agent_id == world["beto"].id
    assert f'id="offer-{offer.id}"' not in page(client)


def test_a_second_ringall_offer_is_refused_saying_why_and_stays(client: Any, world: dict[str, Any],
                                                                db: Any) -> None:
    """Issue 12.4: holding one in one-at-a-time ringall, Take said "another agent took it" and the offer
    vanished until a reload."""
    world["sales"].strategy = "ringall"
    db.session.commit()
    conversation(db, world["sales"], world["ana"], number="+59899000001")
    offer = conversation(db, world["sales"], None, status=InteractionStatus.WAITING, texts=("¿Alguien?",))
    login(client, "ana")
    assert f'id="offer-notice-{offer.id}"' in page(client)
    refused = client.post(f"/inbox/{offer.id}/take", headers=htmx(client))
    html = refused.get_data(as_text=True)
    reason = "Ya tiene una conversación abierta y esta campaña da una a la vez"
    assert refused.headers["HX-Reswap"] == "none"  # the open conversation stays on screen
    assert f'data-fill="offer-notice-{offer.id}">{reason}' in html, html
    assert "Otro agente" not in html and "data-remove" not in html
    db.session.expire_all()
    assert db.session.get(Interaction, offer.id).agent_id is None
    assert f'id="offer-{offer.id}"' in page(client)
    plain = client.post(f"/inbox/{offer.id}/take", data={"csrf_token": csrf_token(client, "/inbox")})
    assert plain.status_code == 302 and reason in page(client)


# -- softphone, state, chat ------------------------------------------------------------------------------
def test_softphone_starts_an_outbound_conversation(client: Any, world: dict[str, Any], db: Any) -> None:
    login(client, "ana")
    html = page(client)
    assert 'action="/inbox/outbound"' in html
    response = client.post("/inbox/outbound", data={"campaign_id": world["support"].id, "number": "099 765 432",
                                                    "body": "Hola, te escribimos de Soporte"}, headers=htmx(client))
    assert response.status_code == 200 and response.headers["HX-Retarget"] == "#conversation"
    created = db.session.scalar(sa.select(Interaction).where(Interaction.direction == "outbound"))
    assert created.customer_number == "+59899765432" and created.agent_id == world["ana"].id
    assert response.headers["HX-Push-Url"] == f"/inbox/{created.id}"
    assert "Hola, te escribimos de Soporte" in response.get_data(as_text=True)
    bad = client.post("/inbox/outbound", data={"campaign_id": world["support"].id, "number": "12",
                                               "body": "x"}, headers=htmx(client))
    assert bad.headers["HX-Retarget"] == "#softphone" and 'class="error"' in bad.get_data(as_text=True)


def test_break_picker_and_on_call(client: Any, world: dict[str, Any], db: Any) -> None:
    db.session.add_all([BreakType(name="Almuerzo", icon="🍽"), BreakType(name="Apagado", icon="x", enabled=False)])
    db.session.commit()
    lunch = db.session.scalar(sa.select(BreakType).where(BreakType.name == "Almuerzo"))
    login(client, "ana")
    html = page(client)
    assert "Almuerzo" in html and "Apagado" not in html and "Libre" in html
    response = client.post("/inbox/break", data={"break_type_id": lunch.id}, headers=htmx(client))
    assert "Libre en break" in response.get_data(as_text=True) and "🍽 Almuerzo" in response.get_data(as_text=True)
    db.session.expire_all()
    ana = db.session.get(User, world["ana"].id)
    assert (ana.state, ana.break_type_id) == ("free_break", lunch.id)
    client.post("/inbox/back", headers=htmx(client))
    client.post("/inbox/on-call", headers=htmx(client))
    db.session.expire_all()
    ana = db.session.get(User, world["ana"].id)
    assert (ana.state, ana.on_call) == ("free", True)


def test_chat_with_a_supervisor(client: Any, app: Any, make: Any, world: dict[str, Any], db: Any) -> None:
    sup = make.user("sup", role="supervisor", groups=[world["group"]], name="Sofía")
    db.session.add(AgentChatMessage(agent_id=world["ana"].id, author_id=sup.id, body="¿Podés tomar el 12?"))
    db.session.commit()
    login(client, "ana")
    html = page(client)
    assert "¿Podés tomar el 12?" in html and "Sofía" in html and 'id="chat-badge"' in html
    pubsub = app.extensions["conversa_redis"].pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"conversa:live:chat:{world['ana'].id}")
    response = client.post("/inbox/chat", data={"body": "Sí, ya lo tomo"}, headers=htmx(client))
    assert "Sí, ya lo tomo" in response.get_data(as_text=True)
    line = db.session.scalar(sa.select(AgentChatMessage).where(AgentChatMessage.author_id == world["ana"].id))
    assert line.body == "Sí, ya lo tomo"
    assert next_event(pubsub)["data"] == {"chat_id": line.id}
    pubsub.close()
    db.session.expire_all()
    assert db.session.scalar(sa.select(AgentChatMessage.read_at).where(AgentChatMessage.author_id == sup.id))


# -- the socket: topic checks, renderers, client handlers ----------------------------------------------
def test_topic_checks_follow_get_interaction_or_404(app: Any, world: dict[str, Any], db: Any, make: Any) -> None:
    from webapp.live.registry import allowed

    mine = conversation(db, world["sales"], world["ana"])
    theirs = conversation(db, world["sales"], world["beto"], number="+59899000002")
    sup = make.user("sup", role="supervisor", groups=[world["group"]])
    outsider = make.user("sup2", role="supervisor", groups=[make.group()])
    ana = world["ana"]
    assert allowed(ana, f"interaction:{mine.id}") and not allowed(ana, f"interaction:{theirs.id}")
    assert not allowed(ana, "interaction:abc") and not allowed(ana, "interaction:999999")
    assert allowed(sup, f"interaction:{theirs.id}") and not allowed(outsider, f"interaction:{theirs.id}")
    assert allowed(ana, f"offers:{world['sales'].id}")
    loner = make.campaign(make.group())
    assert not allowed(ana, f"offers:{loner.id}")


def test_renderers_make_oob_fragments(app: Any, world: dict[str, Any], db: Any) -> None:
    from webapp.live.channel import render_event
    from webapp.live.events import make_event

    mine = conversation(db, world["sales"], world["ana"], texts=("<i>hola</i>",), unread=1)
    message_id, mine_id = db.session.scalar(sa.select(Message.id)), mine.id
    ana_id, beto_id = world["ana"].id, world["beto"].id

    def render(topic: str, kind: str, **data: Any) -> str:
        viewer = db.session.get(User, ana_id)
        with app.test_request_context("/ws"):
            return "".join(render_event(make_event(topic, kind, data), viewer, "es"))

    new = render(f"interaction:{mine_id}", "message.new", message_id=message_id)
    item = render(f"user:{ana_id}", "interaction.assigned", interaction_id=mine_id)
    gone = render(f"user:{beto_id}", "interaction.updated", interaction_id=mine_id)
    db.session.execute(sa.update(Message).values(status="failed", error="30003: Unreachable"))
    db.session.commit()
    status = render(f"interaction:{mine_id}", "message.status", message_id=message_id)
    state = render(f"user:{ana_id}", "agent.state", agent_id=ana_id)
    assert f'hx-swap-oob="beforeend:#messages-{mine_id}"' in new and "&lt;i&gt;hola&lt;/i&gt;" in new
    assert 'hx-swap-oob="afterbegin:#inbox-list"' in item and f'id="interaction-{mine_id}"' in item
    assert f'<i data-remove="interaction-{mine_id}">' in gone  # not (or no longer) this agent's
    assert f'id="message-{message_id}-status"' in status and "30003: Unreachable" in status
    assert 'id="agent-state" hx-swap-oob="true"' in state and "csrf_token" not in state


def test_draft_handler_respects_monitor_screen_allowed(app: Any, world: dict[str, Any], db: Any) -> None:
    from flask import g

    from webapp.inbox import live
    from webapp.services import supervision

    mine = conversation(db, world["sales"], world["ana"])
    theirs = conversation(db, world["sales"], world["beto"], number="+59899000002")
    redis = app.extensions["conversa_redis"]
    key = f"conversa:screen:{world['ana'].id}"
    payload = {"type": "draft", "interaction_id": mine.id, "draft": "Hola, estoy escrib"}
    with app.test_request_context("/ws"):
        live.draft(world["ana"], payload)
        g.pop("inbox_last_draft")  # each socket has its own throttle; this test reuses one app context
    assert redis.get(key) is None  # the agent does not allow the mirror
    world["ana"].monitor_screen_allowed = True
    db.session.commit()
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"conversa:live:screen:{world['ana'].id}")
    with app.test_request_context("/ws"):
        live.draft(world["ana"], payload)
        live.draft(world["ana"], {**payload, "draft": "too soon"})  # throttled on the server too
        g.pop("inbox_last_draft")
    state = json.loads(redis.get(key))
    assert (state["interaction_id"], state["draft"]) == (mine.id, "Hola, estoy escrib")
    assert 0 < redis.ttl(key) <= supervision.SCREEN_TTL
    event = next_event(pubsub)
    assert event["kind"] == "screen.state" and event["data"]["interaction_id"] == mine.id
    with app.test_request_context("/ws"):
        live.draft(world["ana"], {**payload, "interaction_id": theirs.id})
    assert json.loads(redis.get(key))["interaction_id"] is None  # never another agent's conversation
    pubsub.close()


def test_follow_handler_swaps_the_open_conversation_topic(app: Any, world: dict[str, Any], db: Any) -> None:
    from flask import g

    from webapp.inbox import live

    first = conversation(db, world["sales"], world["ana"])
    second = conversation(db, world["sales"], world["ana"], number="+59899000002")
    theirs = conversation(db, world["sales"], world["beto"], number="+59899000003")
    hub = app.extensions["conversa_hub"]
    sub = hub.subscribe({f"user:{world['ana'].id}", f"interaction:{first.id}"})
    try:
        with app.test_request_context("/ws"):
            g.live_subscriber = sub
            live.follow(world["ana"], {"type": "follow", "topics": [f"interaction:{second.id}",
                                                                    f"interaction:{theirs.id}", "user:1"]})
        assert sub.topics == {f"user:{world['ana'].id}", f"interaction:{second.id}"}
    finally:
        hub.unsubscribe(sub)
