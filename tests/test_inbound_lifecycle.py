"""The life of a conversation: open/continue, opt-out, out-of-hours, close, transfers, sends (long waits:
test_long_waits.py)."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers import run_jobs
from webapp.models import DoNotContact, Interaction, InteractionStatus, Message, ScheduleEntry, SenderKind
from webapp.providers.base import InboundMessage
from webapp.services import interactions
from webapp.services import time as clock
from webapp.services.interactions import InteractionError

CUSTOMER = "+59899123456"


@pytest.fixture
def world(make: Any, db: Any) -> dict[str, Any]:
    group = make.group()
    provider = make.provider("sandbox")
    campaign = make.campaign(group, provider, did="+59829001000", strategy="linear_nopause")
    agent = make.user("ana", groups=[group], state="free")
    other = make.user("beto", groups=[group], state="free")
    make.member(campaign, agent, position=0)
    make.member(campaign, other, position=1)
    return {"group": group, "provider": provider, "campaign": campaign, "agent": agent, "other": other}


def inbound(body: str, sid: str, number: str = CUSTOMER, to: str = "+59829001000") -> InboundMessage:
    return InboundMessage(provider_message_id=sid, from_number=number, to=to, body=body)


def count(db: Any, model: Any) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_first_message_opens_and_later_ones_continue(world: dict[str, Any], db: Any) -> None:
    """One open interaction per customer and campaign; unread counts the customer's messages."""
    provider = world["provider"]
    first = interactions.receive_inbound(provider, inbound("Hola", "m1"))
    db.session.commit()
    second = interactions.receive_inbound(provider, inbound("¿Están?", "m2"))
    db.session.commit()
    other = interactions.receive_inbound(provider, inbound("Buenas", "m3", number="+59898765432"))
    db.session.commit()
    assert first.interaction_id == second.interaction_id != other.interaction_id
    interaction = db.session.get(Interaction, first.interaction_id)
    assert interaction.unread == 2
    assert interaction.customer_number == CUSTOMER
    assert interaction.channel == "sms"
    assert interaction.status == InteractionStatus.WAITING
    assert interaction.last_customer_message_at is not None
    assert [m.body for m in interaction.messages] == ["Hola", "¿Están?"]
    assert all(m.sender_kind == SenderKind.CUSTOMER for m in interaction.messages)


def test_the_same_provider_message_twice_is_stored_once(world: dict[str, Any], db: Any) -> None:
    provider = world["provider"]
    assert interactions.receive_inbound(provider, inbound("Hola", "dup")) is not None
    db.session.commit()
    assert interactions.receive_inbound(provider, inbound("Hola", "dup")) is None
    db.session.commit()
    assert count(db, Message) == 1
    assert db.session.scalar(sa.select(Interaction.unread)) == 1


def test_a_national_did_matches_the_international_to(world: dict[str, Any], make: Any, db: Any) -> None:
    """DIDs compare by digits: "whatsapp:", "+" and the trunk 0 do not matter."""
    second = make.campaign(world["group"], world["provider"], did="029002000")
    message = interactions.receive_inbound(world["provider"], inbound("Hola", "x1", to="whatsapp:+59829002000"))
    db.session.commit()
    assert message.interaction.campaign_id == second.id


def test_a_message_to_an_unknown_did_is_dropped(world: dict[str, Any], make: Any, db: Any) -> None:
    make.campaign(world["group"], world["provider"], did="+59829009999")
    assert interactions.receive_inbound(world["provider"], inbound("Hola", "u1", to="+59821111111")) is None
    db.session.commit()
    assert count(db, Message) == 0


def _schedule_9_to_18(campaign: Any, db: Any) -> None:
    db.session.add(ScheduleEntry(campaign_id=campaign.id, days=0b1111111, start_time=time(9), end_time=time(18)))
    db.session.commit()


def _at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(clock, "now", lambda: moment)


def test_out_of_hours_reply_goes_once_per_interaction(world: dict[str, Any], db: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Montevideo is UTC-3: 02:00 UTC is 23:00 there, outside 9-18."""
    campaign = world["campaign"]
    _schedule_9_to_18(campaign, db)
    _at(monkeypatch, datetime(2025, 3, 4, 2, 0))
    interactions.receive_inbound(world["provider"], inbound("Hola", "o1"))
    db.session.commit()
    interactions.receive_inbound(world["provider"], inbound("¿Hay alguien?", "o2"))
    db.session.commit()
    bots = db.session.scalars(sa.select(Message).where(Message.sender_kind == SenderKind.BOT)).all()
    assert [b.body for b in bots] == [campaign.out_of_hours_message]
    assert bots[0].status == "queued"
    interaction = db.session.scalar(sa.select(Interaction))
    assert interaction.out_of_hours_sent is True
    # A new conversation after this one ends gets its own notice.
    interaction.status = InteractionStatus.CLOSED
    db.session.commit()
    interactions.receive_inbound(world["provider"], inbound("Hola de nuevo", "o3"))
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).where(Message.sender_kind == SenderKind.BOT)) == 2


def test_inside_hours_no_bot_message(world: dict[str, Any], db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _schedule_9_to_18(world["campaign"], db)
    _at(monkeypatch, datetime(2025, 3, 4, 15, 0))  # 12:00 in Montevideo
    interactions.receive_inbound(world["provider"], inbound("Hola", "i1"))
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).where(Message.sender_kind == SenderKind.BOT)) == 0
    assert db.session.scalar(sa.select(Interaction.out_of_hours_sent)) is False


def test_disabled_campaign_takes_no_new_conversation(world: dict[str, Any], db: Any) -> None:
    campaign = world["campaign"]
    campaign.enabled = False
    db.session.commit()
    assert interactions.receive_inbound(world["provider"], inbound("Hola", "d1")) is None
    db.session.commit()
    assert (count(db, Message), count(db, Interaction)) == (0, 0)


def test_disabled_campaign_keeps_an_open_conversation_going(world: dict[str, Any], db: Any) -> None:
    campaign = world["campaign"]
    interactions.receive_inbound(world["provider"], inbound("Hola", "d1"))
    db.session.commit()
    campaign.enabled = False
    db.session.commit()
    assert interactions.receive_inbound(world["provider"], inbound("Sigo acá", "d2")) is not None
    db.session.commit()
    assert (count(db, Message), count(db, Interaction)) == (2, 1)


@pytest.mark.parametrize("word", ["BAJA", "baja", " Stop! ", "Unsubscribe", "bája"])
def test_stop_keyword_adds_to_do_not_contact_and_confirms_once(world: dict[str, Any], db: Any, word: str) -> None:
    provider, campaign = world["provider"], world["campaign"]
    interactions.receive_inbound(provider, inbound(word, "s1"))
    db.session.commit()
    interactions.receive_inbound(provider, inbound(word, "s2"))
    db.session.commit()
    dnc = db.session.scalars(sa.select(DoNotContact)).all()
    assert [(d.phone, d.campaign_id, d.source) for d in dnc] == [(CUSTOMER, campaign.id, "keyword")]
    bots = db.session.scalars(sa.select(Message).where(Message.sender_kind == SenderKind.BOT)).all()
    assert len(bots) == 1
    assert bots[0].body == "No recibirás más mensajes nuestros. Gracias."
    # Nobody is asked to answer an opt-out.
    statuses = db.session.scalars(sa.select(Interaction.status)).all()
    assert statuses and set(statuses) == {InteractionStatus.CLOSED}
    assert db.session.scalar(sa.select(Interaction.disposition)) == "opt-out"


def test_a_sentence_containing_stop_is_no_opt_out(world: dict[str, Any], db: Any) -> None:
    interactions.receive_inbound(world["provider"], inbound("no quiero la baja todavía", "s3"))
    db.session.commit()
    assert count(db, DoNotContact) == 0


def _assigned(world: dict[str, Any], db: Any, sid: str = "a1") -> Interaction:
    from webapp.services import routing

    message = interactions.receive_inbound(world["provider"], inbound("Hola", sid))
    db.session.commit()
    routing.route_waiting(world["campaign"].id)
    db.session.commit()
    interaction = db.session.get(Interaction, message.interaction_id)
    assert interaction.agent_id == world["agent"].id
    return interaction


def test_open_reply_and_close_with_disposition(world: dict[str, Any], db: Any, app: Any) -> None:
    interaction = _assigned(world, db)
    agent = world["agent"]
    assert interaction.status == InteractionStatus.ASSIGNED
    interactions.open_for_agent(interaction, agent)
    assert (interaction.unread, interaction.status) == (0, InteractionStatus.ASSIGNED)
    reply = interactions.send_agent_message(interaction, agent, "  Hola, soy Ana  ")
    db.session.commit()
    assert (reply.body, reply.status, reply.sender_user_id) == ("Hola, soy Ana", "queued", agent.id)
    assert interaction.status == InteractionStatus.ACTIVE
    assert interaction.first_reply_at is not None
    assert agent.state == "busy"
    with pytest.raises(InteractionError, match="tipificación"):
        interactions.close(interaction, agent, "  ")
    interactions.close(interaction, agent, "resuelto")
    db.session.commit()
    assert (interaction.status, interaction.disposition) == (InteractionStatus.CLOSED, "resuelto")
    assert interaction.closed_at is not None
    assert agent.state == "free"
    run_jobs(app)
    assert db.session.get(Message, reply.id).status == "sent"
    with pytest.raises(InteractionError):
        interactions.send_agent_message(interaction, agent, "¿sigue ahí?")


def test_message_validation(world: dict[str, Any], db: Any) -> None:
    interaction = _assigned(world, db)
    with pytest.raises(InteractionError, match="Escribe un mensaje"):
        interactions.send_agent_message(interaction, world["agent"], "   ")
    with pytest.raises(InteractionError, match="1600"):
        interactions.send_agent_message(interaction, world["agent"], "x" * 1601)
    with pytest.raises(InteractionError, match="no está asignada"):
        interactions.send_agent_message(interaction, world["other"], "hola")
    assert count(db, Message) == 1


def test_transfer_to_another_agent(world: dict[str, Any], make: Any, db: Any) -> None:
    interaction = _assigned(world, db)
    agent, other = world["agent"], world["other"]
    outsider = make.user("carla", groups=[world["group"]], state="free")
    with pytest.raises(InteractionError, match="carla"):
        interactions.transfer_to_agent(interaction, agent, outsider)
    other.state = "free_break"
    db.session.commit()
    with pytest.raises(InteractionError):
        interactions.transfer_to_agent(interaction, agent, other)
    other.state = "free"
    db.session.commit()
    interactions.transfer_to_agent(interaction, agent, other)
    db.session.commit()
    assert (interaction.agent_id, interaction.status) == (other.id, InteractionStatus.ASSIGNED)
    assert (agent.state, other.state) == ("free", "busy")


def test_transfer_to_another_campaign_requeues_with_its_messages(world: dict[str, Any], make: Any,
                                                                 db: Any) -> None:
    interaction = _assigned(world, db)
    target = make.campaign(world["group"], world["provider"], strategy="ringall")
    interactions.transfer_to_campaign(interaction, world["agent"], target)
    db.session.commit()
    assert (interaction.campaign_id, interaction.status, interaction.agent_id) == (
        target.id, InteractionStatus.WAITING, None)
    assert [m.body for m in interaction.messages] == ["Hola"]
    assert world["agent"].state == "free"
    with pytest.raises(InteractionError):
        interactions.transfer_to_campaign(interaction, world["agent"], world["campaign"])


def test_start_outbound_from_the_softphone(world: dict[str, Any], db: Any, app: Any) -> None:
    agent, campaign = world["agent"], world["campaign"]
    interaction = interactions.start_outbound(agent, campaign, "099 123 456", "Hola, le escribimos de la empresa")
    db.session.commit()
    assert (interaction.customer_number, interaction.direction, interaction.agent_id, interaction.status) == (
        CUSTOMER, "outbound", agent.id, InteractionStatus.ACTIVE)
    assert [m.body for m in interaction.messages] == ["Hola, le escribimos de la empresa"]
    queue = app.extensions["conversa_queues"]["inbound"]
    assert "workers.inbound.send_message" in [j.func_name for j in queue.jobs]
    run_jobs(app)
    message = db.session.scalar(sa.select(Message))
    db.session.refresh(message)
    assert message.status == "sent" and message.provider_message_id.startswith("sbx-")
    with pytest.raises(InteractionError, match="válido"):
        interactions.start_outbound(agent, campaign, "12", "x")
    elsewhere = _other_campaign(world, db)
    with pytest.raises(InteractionError, match="miembro"):
        interactions.start_outbound(agent, elsewhere, "099 123 457", "x")


def _other_campaign(world: dict[str, Any], db: Any) -> Any:
    from webapp.models import Campaign

    campaign = Campaign(name="otra", security_group_id=world["group"].id, provider_id=world["provider"].id,
                        did="+59829003000")
    db.session.add(campaign)
    db.session.commit()
    return campaign


def test_start_outbound_refuses_do_not_contact(world: dict[str, Any], db: Any) -> None:
    db.session.add(DoNotContact(phone=CUSTOMER, campaign_id=world["campaign"].id, source="manual"))
    db.session.commit()
    with pytest.raises(InteractionError, match="no contactar"):
        interactions.start_outbound(world["agent"], world["campaign"], CUSTOMER, "Hola")


def test_whatsapp_24_hour_window(make: Any, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    group = make.group()
    provider = make.provider("sandbox", channel="whatsapp")
    campaign = make.campaign(group, provider, did="+59829005000", strategy="linear_nopause")
    agent = make.user("wa", groups=[group], state="free")
    make.member(campaign, agent)
    start = datetime(2025, 3, 4, 15, 0)
    _at(monkeypatch, start)
    message = interactions.receive_inbound(provider, InboundMessage("w1", CUSTOMER, "whatsapp:+59829005000",
                                                                    "Hola", channel="whatsapp"))
    db.session.commit()
    from webapp.services import routing

    routing.route_waiting()
    db.session.commit()
    interaction = db.session.get(Interaction, message.interaction_id)
    assert interaction.channel == "whatsapp"
    assert interactions.whatsapp_window_open(interaction, start + timedelta(hours=23, minutes=59))
    assert not interactions.whatsapp_window_open(interaction, start + timedelta(hours=24))
    _at(monkeypatch, start + timedelta(hours=23))
    interactions.send_agent_message(interaction, agent, "dentro de la ventana")
    _at(monkeypatch, start + timedelta(hours=25))
    with pytest.raises(InteractionError, match="24 horas"):
        interactions.send_agent_message(interaction, agent, "fuera de la ventana")
    templated = interactions.send_agent_message(interaction, agent, "Recordatorio", template_ref="recordatorio_1")
    db.session.commit()
    assert templated.template_ref == "recordatorio_1"


def test_twilio_send_and_opt_out_error(make: Any, db: Any, app: Any, fake_twilio: Any) -> None:
    """The send job goes through the gateway; Twilio's 21610 puts the number on do-not-contact."""
    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN

    group = make.group()
    provider = make.provider("twilio", sender="+15005550006", base_url=fake_twilio.url, max_per_second=0,
                             credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN})
    campaign = make.campaign(group, provider, did="+15005550006", strategy="linear_nopause")
    agent = make.user("tw", groups=[group], state="free")
    make.member(campaign, agent)
    ok = interactions.start_outbound(agent, campaign, "+59899123456", "Hola")
    blocked = interactions.start_outbound(agent, campaign, "+15005550004", "Hola")
    db.session.commit()
    run_jobs(app)
    db.session.expire_all()
    good, bad = (db.session.scalar(sa.select(Message).where(Message.interaction_id == i.id)) for i in (ok, blocked))
    assert good.status == "sent" and good.provider_message_id.startswith("SM")
    assert [m["body"] for m in fake_twilio.sends_for("+59899123456")] == ["Hola"]
    assert bad.status == "failed" and bad.error.startswith("21610")
    assert db.session.scalar(sa.select(DoNotContact.source).where(DoNotContact.phone == "+15005550004")) == "provider"


def test_earlier_interactions_lists_the_customers_past_conversations(world: dict[str, Any], db: Any) -> None:
    first = interactions.receive_inbound(world["provider"], inbound("Hola", "e1")).interaction
    first.status = InteractionStatus.CLOSED
    db.session.commit()
    second = interactions.receive_inbound(world["provider"], inbound("Hola otra vez", "e2")).interaction
    db.session.commit()
    assert [i.id for i in interactions.earlier_interactions(second)] == [first.id]
