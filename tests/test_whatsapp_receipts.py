"""W5 (inbox side): outbound bubbles show sent / delivered / read / failed (with the provider's reason),
moved by status webhooks and pushed live; opening a WhatsApp conversation marks the customer's messages
read at Meta. Issue 13.8: a tapped button or list row shows as a reply to the message it answers. And the inbox
shows media-only messages, loads attachments without a query per message, and earlier conversations
show theirs."""
from __future__ import annotations

import io
import json
from typing import Any

import sqlalchemy as sa

from tests.fakes.whatsapp_cloud import message_payload, sign, status_payload
from tests.helpers import run_jobs, samples
from tests.helpers.whatsapp import CUSTOMER, agent_client, center, token
from webapp.models import Attachment, Interaction, Message


def meta_webhook(client: Any, provider: Any, payload: dict[str, Any]) -> int:
    body = json.dumps(payload).encode()
    return client.post(f"/webhooks/{provider.id}/inbound", data=body, content_type="application/json",
                       headers={"X-Hub-Signature-256": sign(body)}).status_code


def agent_says(app: Any, client: Any, iid: int, body: str) -> Message:
    assert client.post(f"/inbox/{iid}/send", data={"body": body, "csrf_token": token(client, iid)},
                       headers={"HX-Request": "true"}).status_code == 200
    run_jobs(app)
    from webapp.extensions import db

    db.session.expire_all()
    return db.session.scalars(sa.select(Message).where(Message.body == body)).one()


def bubble_status(client: Any, iid: int, message_id: int) -> str:
    page = client.get(f"/inbox/{iid}").get_data(as_text=True)
    return page.split(f'id="message-{message_id}-status"')[1].split("</span>")[0]


def test_status_webhooks_move_the_bubble_and_the_socket_pushes_it(app: Any, db: Any, make: Any,
                                                                  fake_whatsapp: Any) -> None:
    from webapp.live.registry import find_renderer

    c = center(make, db, "meta", fake_whatsapp)
    client = agent_client(app)
    message = agent_says(app, client, c.iid, "hola")
    assert 'data-status="sent"' in bubble_status(client, c.iid, message.id)
    for status in ("delivered", "read"):
        assert meta_webhook(client, c.provider, status_payload(message.provider_message_id, status,
                                                               CUSTOMER.lstrip("+"))) == 200
        run_jobs(app)
        assert f'data-status="{status}"' in bubble_status(client, c.iid, message.id)
    render, _ = find_renderer({"topic": f"interaction:{c.iid}", "kind": "message.status"})
    with app.test_request_context():
        html = render({"topic": f"interaction:{c.iid}", "kind": "message.status",
                       "data": {"message_id": message.id}}, None)
    assert f'id="message-{message.id}-status"' in html and 'hx-swap-oob="true"' in html and "read" in html


def test_a_failed_message_shows_the_providers_reason_in_the_bubble(app: Any, db: Any, make: Any,
                                                                   fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    client = agent_client(app)
    message = agent_says(app, client, c.iid, "hola")
    assert meta_webhook(client, c.provider, status_payload(message.provider_message_id, "failed",
                                                           CUSTOMER.lstrip("+"), error_code=131026)) == 200
    run_jobs(app)
    shown = bubble_status(client, c.iid, message.id)
    assert 'data-status="failed"' in shown and "No entregado: 131026: Message failed to send" in shown


def customer_writes(app: Any, client: Any, c: Any, text: str, **extra: Any) -> Message:
    payload = message_payload(CUSTOMER.lstrip("+"), {"type": "text", "text": {"body": text}, **extra})
    assert meta_webhook(client, c.provider, payload) == 200
    run_jobs(app)
    from webapp.extensions import db

    db.session.expire_all()
    return db.session.scalars(sa.select(Message).where(Message.body == text)).one()


def test_opening_the_conversation_marks_the_customers_messages_read_at_meta(
        app: Any, db: Any, make: Any, fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    client = agent_client(app)
    first = customer_writes(app, client, c, "hola")
    second = customer_writes(app, client, c, "¿están?")
    open_url = f"/inbox/{c.iid}/open"
    assert client.post(open_url, data={"csrf_token": token(client, c.iid)}).status_code in (200, 302)
    run_jobs(app)
    assert fake_whatsapp.read_marks == [second.provider_message_id]  # Meta marks the ones before it too
    db.session.expire_all()
    assert {db.session.get(Message, m.id).status for m in (first, second)} == {"read"}
    # Opened again with nothing new: Meta is not asked again.
    db.session.get(Interaction, c.iid).unread = 1
    db.session.commit()
    client.post(open_url, data={"csrf_token": token(client, c.iid)})
    run_jobs(app)
    assert fake_whatsapp.read_marks == [second.provider_message_id]
    third = customer_writes(app, client, c, "hola de nuevo")
    client.post(open_url, data={"csrf_token": token(client, c.iid)})
    run_jobs(app)
    assert fake_whatsapp.read_marks == [second.provider_message_id, third.provider_message_id]


def test_sms_conversations_mark_nothing(app: Any, db: Any, make: Any, fake_twilio: Any) -> None:
    from workers.whatsapp import mark_read

    c = center(make, db, "twilio", fake_twilio)
    db.session.add(Message(interaction_id=c.iid, sender_kind="customer", body="x", provider_id=c.provider.id,
                           provider_message_id="SMx", status="received"))
    db.session.commit()
    assert mark_read(c.iid) == 0  # Twilio has no read receipts to give
    assert fake_twilio.api_requests() == []


def test_a_tapped_button_shows_as_a_reply_to_the_message_it_answers(app: Any, db: Any, make: Any,
                                                                    fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    client = agent_client(app)
    ours = agent_says(app, client, c.iid, "¿Pagaste la cuota de marzo?")
    tap = message_payload(CUSTOMER.lstrip("+"), {
        "type": "interactive", "context": {"from": "59829000000", "id": ours.provider_message_id},
        "interactive": {"type": "button_reply", "button_reply": {"id": "paid", "title": "Ya pagué"}}})
    assert meta_webhook(client, c.provider, tap) == 200
    run_jobs(app)
    db.session.expire_all()
    reply = db.session.scalars(sa.select(Message).where(Message.body == "Ya pagué")).one()
    assert reply.reply_to_id == ours.id
    page = client.get(f"/inbox/{c.iid}").get_data(as_text=True)
    bubble = page.split(f'id="message-{reply.id}"')[1].split('class="meta"')[0]
    assert f'data-reply-to="{ours.id}"' in bubble and "¿Pagaste la cuota de marzo?" in bubble
    # A list row, and a reply to something we never sent: shown as plain text.
    row = message_payload(CUSTOMER.lstrip("+"), {
        "type": "interactive", "context": {"id": "wamid.UNKNOWN"},
        "interactive": {"type": "list_reply", "list_reply": {"id": "r2", "title": "Cambiar fecha"}}})
    assert meta_webhook(client, c.provider, row) == 200
    run_jobs(app)
    db.session.expire_all()
    assert db.session.scalars(sa.select(Message).where(Message.body == "Cambiar fecha")).one().reply_to_id is None


def test_a_twilio_button_reply_names_the_message_it_answers(app: Any, db: Any, make: Any,
                                                            fake_twilio: Any) -> None:
    c = center(make, db, "twilio", fake_twilio)
    client = agent_client(app)
    ours = agent_says(app, client, c.iid, "¿Confirmás la visita?")
    url = f"http://localhost/webhooks/{c.provider.id}/inbound"
    params = {"MessageSid": "SM" + "1" * 32, "AccountSid": fake_twilio.account_sid, "From": f"whatsapp:{CUSTOMER}",
              "To": "whatsapp:+15005550006", "Body": "Sí", "ButtonText": "Sí", "ButtonPayload": "yes",
              "OriginalRepliedMessageSid": ours.provider_message_id, "NumMedia": "0"}
    answer = client.post(f"/webhooks/{c.provider.id}/inbound", data=params,
                         headers={"X-Twilio-Signature": fake_twilio.signature(url, params)})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    run_jobs(app)
    db.session.expire_all()
    assert db.session.scalars(sa.select(Message).where(Message.body == "Sí")).one().reply_to_id == ours.id


def photo_message(db: Any, c: Any, interaction_id: int | None = None, body: str = "") -> Message:
    from webapp.services import media_store

    message = Message(interaction_id=interaction_id or c.iid, sender_kind="customer", body=body,
                      media=[{"kind": "image"}], provider_id=c.provider.id, status="received")
    db.session.add(message)
    db.session.flush()
    key = f"test/{message.id}"
    media_store.current().put(key, io.BytesIO(samples.jpeg()), "image/jpeg")
    db.session.add(Attachment(message_id=message.id, kind="image", state="ready", content_type="image/jpeg",
                              filename=f"foto-{message.id}.jpg", size=10, storage_key=key))
    interaction = db.session.get(Interaction, interaction_id or c.iid)
    interaction.last_message_at = message.created_at
    db.session.commit()
    return message


def test_the_inbox_list_says_what_a_media_only_message_carries(app: Any, db: Any, make: Any,
                                                               fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    photo_message(db, c)
    listing = agent_client(app).get("/inbox/list").get_data(as_text=True)
    item = listing.split(f'id="interaction-{c.iid}"')[1].split("</a>")[0]
    assert "📷 Foto" in item


def count_queries(db: Any, action: Any) -> int:
    from sqlalchemy import event

    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return len(seen)


def test_the_messages_pane_loads_every_attachment_in_one_query(app: Any, db: Any, make: Any,
                                                               fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    client = agent_client(app)
    photo_message(db, c)
    photo_message(db, c)
    few = count_queries(db, lambda: client.get(f"/inbox/{c.iid}/messages"))
    for _ in range(6):
        photo_message(db, c)
    many_page = {}
    many = count_queries(db, lambda: many_page.setdefault("html", client.get(f"/inbox/{c.iid}/messages")))
    assert many == few
    assert many_page["html"].get_data(as_text=True).count('class="att att-image') == 8


def test_earlier_conversations_show_their_attachments(app: Any, db: Any, make: Any,
                                                      fake_whatsapp: Any) -> None:
    from webapp.services import time as clock

    c = center(make, db, "meta", fake_whatsapp)
    earlier = Interaction(campaign_id=c.campaign.id, customer_number=CUSTOMER, channel="whatsapp", status="closed",
                          agent_id=c.ana.id, closed_at=clock.now(), created_at=clock.now())
    db.session.add(earlier)
    db.session.commit()
    message = photo_message(db, c, earlier.id, body="el comprobante")
    attachment = db.session.scalar(sa.select(Attachment).where(Attachment.message_id == message.id))
    history = agent_client(app).get(f"/inbox/{c.iid}/history").get_data(as_text=True)
    assert "el comprobante" in history and f'id="attachment-{attachment.id}"' in history


def test_the_sandbox_whatsapp_customer_reads_what_was_delivered(app: Any, db: Any, make: Any) -> None:
    from rq.registry import ScheduledJobRegistry

    from webapp.services import demo

    provider = make.provider("sandbox", channel="whatsapp")
    campaign = make.campaign(make.group(), provider)
    interaction = Interaction(campaign_id=campaign.id, customer_number=CUSTOMER, channel="whatsapp", status="active")
    db.session.add(interaction)
    db.session.flush()
    message = Message(interaction_id=interaction.id, sender_kind="agent", body="hola", provider_id=provider.id,
                      provider_message_id="sbx-1", status="sent")
    db.session.add(message)
    db.session.commit()
    assert demo.handset_received(message.id)
    db.session.commit()
    queue = app.extensions["conversa_queues"]["inbound"]
    scheduled = ScheduledJobRegistry(queue=queue)
    assert [j.func_name for j in (queue.fetch_job(i) for i in scheduled.get_job_ids())] \
        == ["workers.inbound.sandbox_read"]
    assert demo.handset_read(message.id)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Message, message.id).status == "read"
