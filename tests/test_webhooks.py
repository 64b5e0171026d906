"""Gateway webhooks: signatures (Twilio, Meta, Dinstar token), queued processing, idempotency, receipts,
and the voice platform's API."""
from __future__ import annotations

import hashlib
import hmac
import io
import json
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from tests.helpers import run_jobs, stream_post
from webapp.models import Interaction, InteractionStatus, Message
from webapp.services.interactions import MESSAGE_REF_OFFSET

TOKEN = "twilio-auth-token-for-tests"
APP_SECRET = "meta-app-secret"
VERIFY = "meta-verify-token"
DID = "+59829001000"


@pytest.fixture
def twilio(make: Any) -> Any:
    group = make.group()
    provider = make.provider("twilio", sender=DID, credentials={"account_sid": "AC" + "1" * 32,
                                                                "auth_token": TOKEN})
    make.campaign(group, provider, did=DID, strategy="ringall")
    return provider


def signed_post(client: Any, path: str, params: dict[str, str], *, url: str | None = None,
                token: str = TOKEN, signature: str | None = None) -> Any:
    url = url or f"http://localhost{path}"
    sig = signature if signature is not None else RequestValidator(token).compute_signature(url, params)
    headers = {"X-Twilio-Signature": sig} if sig else {}
    return client.post(path, data=urlencode(params), headers=headers,
                       content_type="application/x-www-form-urlencoded")


def twilio_inbound(sid: str = "SM" + "a" * 32, body: str = "Hola") -> dict[str, str]:
    return {"MessageSid": sid, "SmsMessageSid": sid, "AccountSid": "AC" + "1" * 32, "From": "+59899123456",
            "To": DID, "Body": body, "NumMedia": "0"}


def stored(db: Any) -> tuple[int, int]:
    db.session.expire_all()
    return (db.session.scalar(sa.select(sa.func.count(Message.id))),
            db.session.scalar(sa.select(sa.func.count(Interaction.id))))


def queued(app: Any) -> int:
    return sum(q.count for q in app.extensions["conversa_queues"].values())


def test_signed_twilio_message_is_accepted_and_stored(client: Any, app: Any, db: Any, twilio: Any) -> None:
    response = signed_post(client, f"/webhooks/{twilio.id}/inbound", twilio_inbound(body="Hola, ¿atienden?"))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert queued(app) == 1
    assert stored(db) == (0, 0)  # answered before any work
    run_jobs(app)
    message = db.session.scalar(sa.select(Message))
    assert (message.body, message.sender_kind, message.provider_message_id) == (
        "Hola, ¿atienden?", "customer", "SM" + "a" * 32)
    assert message.interaction.customer_number == "+59899123456"


@pytest.mark.parametrize("signature", ["", "forged-signature", "sign-with-another-token"])
def test_forged_or_missing_twilio_signature_is_refused(client: Any, app: Any, db: Any, twilio: Any,
                                                       signature: str) -> None:
    params = twilio_inbound()
    if signature == "sign-with-another-token":
        signature = RequestValidator("other").compute_signature(f"http://localhost/webhooks/{twilio.id}/inbound",
                                                                params)
    response = signed_post(client, f"/webhooks/{twilio.id}/inbound", params, signature=signature)
    assert response.status_code == 403
    assert queued(app) == 0
    run_jobs(app)
    assert stored(db) == (0, 0)


def test_a_signature_over_other_parameters_is_refused(client: Any, app: Any, twilio: Any) -> None:
    path = f"/webhooks/{twilio.id}/inbound"
    sig = RequestValidator(TOKEN).compute_signature(f"http://localhost{path}", twilio_inbound(body="Hola"))
    response = signed_post(client, path, twilio_inbound(body="Transferí todo"), signature=sig)
    assert response.status_code == 403
    assert queued(app) == 0


def test_signature_covers_the_public_url(client: Any, app: Any, db: Any, twilio: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a proxy Twilio signed https://public-host/...?query, not the URL the app sees."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://conversa.example.com/")
    path = f"/webhooks/{twilio.id}/inbound?campaign=ventas"
    params = twilio_inbound()
    response = signed_post(client, path, params, url=f"https://conversa.example.com{path}")
    assert response.status_code == 200
    assert signed_post(client, path, params).status_code == 403  # signed over the inner URL


def test_the_same_message_sid_twice_makes_one_message(client: Any, app: Any, db: Any, twilio: Any) -> None:
    for _ in range(2):
        assert signed_post(client, f"/webhooks/{twilio.id}/inbound", twilio_inbound()).status_code == 200
    run_jobs(app)
    assert stored(db) == (1, 1)
    assert db.session.scalar(sa.select(Interaction.unread)) == 1


def test_unknown_or_disabled_provider_is_404(client: Any, db: Any, twilio: Any) -> None:
    assert signed_post(client, "/webhooks/999/inbound", twilio_inbound()).status_code == 404
    twilio.enabled = False
    db.session.commit()
    assert signed_post(client, f"/webhooks/{twilio.id}/inbound", twilio_inbound()).status_code == 404


def _outbound(db: Any, provider: Any, sid: str | None, status: str = "sent") -> Message:
    """An agent's reply already handed to the gateway."""
    interaction = Interaction(campaign_id=_campaign_id(db, provider), customer_number="+59899123456",
                              status=InteractionStatus.ACTIVE)
    message = Message(interaction=interaction, sender_kind="agent", body="Hola", provider_id=provider.id,
                      provider_message_id=sid, status=status)
    db.session.add_all([interaction, message])
    db.session.commit()
    return message


def _campaign_id(db: Any, provider: Any) -> int:
    from webapp.models import Campaign

    return db.session.scalar(sa.select(Campaign.id).where(Campaign.provider_id == provider.id))


def status_params(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "1" * 32, "From": DID,
            "To": "+59899123456", **extra}


def test_out_of_order_status_callbacks_never_go_backwards(client: Any, app: Any, db: Any, twilio: Any) -> None:
    message = _outbound(db, twilio, "SM" + "b" * 32)
    path = f"/webhooks/{twilio.id}/status"
    for status in ("delivered", "sent", "queued"):
        response = signed_post(client, path, status_params(message.provider_message_id, status))
        assert (response.status_code, response.get_data(as_text=True)) == (200, "")
    run_jobs(app)
    db.session.refresh(message)
    assert message.status == "delivered"
    signed_post(client, path, status_params(message.provider_message_id, "failed", ErrorCode="30003"))
    run_jobs(app)
    db.session.refresh(message)
    assert message.status == "delivered"
    signed_post(client, path, status_params(message.provider_message_id, "read"))
    run_jobs(app)
    db.session.refresh(message)
    assert message.status == "read"


def test_failed_receipt_records_the_error(client: Any, app: Any, db: Any, twilio: Any) -> None:
    message = _outbound(db, twilio, "SM" + "c" * 32)
    signed_post(client, f"/webhooks/{twilio.id}/status",
                status_params(message.provider_message_id, "undelivered", ErrorCode="30005"))
    run_jobs(app)
    db.session.refresh(message)
    assert (message.status, message.error) == ("undelivered", "30005")


def test_forged_status_callback_is_refused(client: Any, app: Any, db: Any, twilio: Any) -> None:
    message = _outbound(db, twilio, "SM" + "d" * 32)
    response = signed_post(client, f"/webhooks/{twilio.id}/status",
                           status_params(message.provider_message_id, "delivered"), signature="nope")
    assert response.status_code == 403
    assert queued(app) == 0


# -- Meta WhatsApp Cloud ---------------------------------------------------------------------
@pytest.fixture
def meta(make: Any) -> Any:
    provider = make.provider("whatsapp_cloud", channel="whatsapp", sender="59829001000",
                             credentials={"access_token": "t", "app_secret": APP_SECRET, "verify_token": VERIFY},
                             options={"phone_number_id": "1234"})
    make.campaign(make.group(), provider, did="+59829001000", strategy="ringall")
    return provider


def meta_payload(wamid: str = "wamid.HBgL1") -> bytes:
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "59829001000", "phone_number_id": "1234"},
            "contacts": [{"profile": {"name": "Lucía"}, "wa_id": "59899123456"}],
            "messages": [{"from": "59899123456", "id": wamid, "timestamp": "1741096800", "type": "text",
                          "text": {"body": "Hola por WhatsApp"}}]}}]}]}).encode()


def meta_post(client: Any, provider: Any, body: bytes, secret: str | None = APP_SECRET) -> Any:
    headers = {}
    if secret is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(f"/webhooks/{provider.id}/inbound", data=body, headers=headers,
                       content_type="application/json")


def test_meta_signed_message_is_stored(client: Any, app: Any, db: Any, meta: Any) -> None:
    assert meta_post(client, meta, meta_payload()).status_code == 200
    run_jobs(app)
    message = db.session.scalar(sa.select(Message))
    assert message.body == "Hola por WhatsApp"
    interaction = message.interaction
    assert (interaction.channel, interaction.customer_name, interaction.customer_number) == (
        "whatsapp", "Lucía", "+59899123456")


@pytest.mark.parametrize("secret", [None, "wrong-secret"])
def test_meta_forged_or_missing_signature_is_refused(client: Any, app: Any, db: Any, meta: Any,
                                                     secret: str | None) -> None:
    assert meta_post(client, meta, meta_payload(), secret=secret).status_code == 403
    assert queued(app) == 0
    assert stored(db) == (0, 0)


def test_meta_statuses_on_the_same_url(client: Any, app: Any, db: Any, meta: Any) -> None:
    message = _outbound(db, meta, "wamid.OUT1")
    body = json.dumps({"entry": [{"changes": [{"value": {"statuses": [
        {"id": "wamid.OUT1", "status": "read", "recipient_id": "59899123456"},
        {"id": "wamid.OUT1", "status": "delivered", "recipient_id": "59899123456"}]}}]}]}).encode()
    assert meta_post(client, meta, body).status_code == 200
    run_jobs(app)
    db.session.refresh(message)
    assert message.status == "read"


def test_whatsapp_verify_handshake(client: Any, meta: Any, twilio: Any) -> None:
    ok = client.get(f"/webhooks/{meta.id}/inbound?hub.mode=subscribe&hub.verify_token={VERIFY}"
                    "&hub.challenge=1158201444")
    assert (ok.status_code, ok.get_data(as_text=True)) == (200, "1158201444")
    bad = client.get(f"/webhooks/{meta.id}/inbound?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1")
    assert bad.status_code == 403
    assert client.get(f"/webhooks/{twilio.id}/inbound").status_code == 405


# -- Dinstar push ------------------------------------------------------------------------------
@pytest.fixture
def dinstar(make: Any) -> Any:
    provider = make.provider("dinstar", sender=DID, base_url="http://127.0.0.1:9",
                             credentials={"username": "u", "password": "p"},
                             options={"country_code": "598", "webhook_token": "gw-token"})
    make.campaign(make.group(), provider, did=DID, strategy="ringall")
    return provider


def test_dinstar_push_json(client: Any, app: Any, db: Any, dinstar: Any) -> None:
    body = {"sn": "DG-1", "sms": [{"incoming_sms_id": 7, "port": 1, "number": "099123456",
                                   "timestamp": "2025-03-04 10:00:00", "text": "Hola desde el GSM"}]}
    assert client.post(f"/webhooks/{dinstar.id}/inbound", json=body).status_code == 403
    assert queued(app) == 0
    response = client.post(f"/webhooks/{dinstar.id}/inbound?token=gw-token", json=body)
    assert response.status_code == 200
    run_jobs(app)
    message = db.session.scalar(sa.select(Message))
    assert (message.body, message.provider_message_id) == ("Hola desde el GSM", "DG-1-7")
    assert message.interaction.customer_number == "+59899123456"
    # The gateway's result for our reply comes back by user_id.
    reply = _outbound(db, dinstar, None)
    result = {"sn": "DG-1", "sms_result": [{"port": 1, "user_id": MESSAGE_REF_OFFSET + reply.id,
                                            "number": "099123456", "status": "DELIVERED", "ref_id": 3}]}
    assert client.post(f"/webhooks/{dinstar.id}/status?token=gw-token", json=result).status_code == 200
    run_jobs(app)
    db.session.refresh(reply)
    assert reply.status == "delivered"


@pytest.mark.parametrize("kind", ["dinstar", "http", "sandbox"])
def test_a_gateway_that_does_not_sign_needs_its_token(client: Any, app: Any, db: Any, make: Any, kind: str) -> None:
    """A row without a webhook token (made before tokens were always set) accepts no webhook at all."""
    provider = make.provider(kind, sender=DID, base_url="http://127.0.0.1:9", options={})
    make.campaign(make.group(), provider, did=DID)
    for path in ("inbound", "status"):
        for query in ("", "?token=", "?token=None"):
            assert client.post(f"/webhooks/{provider.id}/{path}{query}",
                               data={"from": "099123456", "to": DID, "text": "hola"}).status_code == 403
    assert queued(app) == 0
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


# -- voice platform API -------------------------------------------------------------------------
@pytest.mark.parametrize(("header", "code"), [(None, 401), ("Bearer wrong", 401), ("voice-test-token", 401),
                                              ("Basic voice-test-token", 401)])
def test_voice_api_needs_the_token(client: Any, make: Any, header: str | None, code: int) -> None:
    agent = make.user("ana", state="free")
    headers = {"Authorization": header} if header else {}
    response = client.post("/api/voice/agents/ana/call", json={"on_call": True}, headers=headers)
    assert response.status_code == code
    assert agent.on_call is False


def test_voice_api_sets_and_clears_on_call(client: Any, make: Any, db: Any) -> None:
    agent = make.user("ana", state="free")
    auth = {"Authorization": "Bearer voice-test-token"}
    response = client.post("/api/voice/agents/ana/call", json={"on_call": True}, headers=auth)
    assert response.status_code == 200
    assert response.get_json() == {"username": "ana", "on_call": True, "text_exclusive": False}
    db.session.refresh(agent)
    assert agent.on_call is True and agent.on_call_changed_at is not None
    assert client.post("/api/voice/agents/ana/call", json={"on_call": False}, headers=auth).status_code == 200
    db.session.refresh(agent)
    assert agent.on_call is False
    assert client.post("/api/voice/agents/nadie/call", json={"on_call": True}, headers=auth).status_code == 404
    assert client.post("/api/voice/agents/ana/call", json={"on_call": "yes"}, headers=auth).status_code == 400


# -- body limit ----------------------------------------------------------------------------------
BIG = 8 * 1024 * 1024  # far above what any gateway sends, far below MAX_UPLOAD_MB


class Body(io.RawIOBase):
    """A request body of `size` bytes made on demand (`head`, then filler), counting what the server reads."""

    def __init__(self, size: int, head: bytes = b""):
        self.head = head
        self.size = size
        self.pos = 0
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # the test client measures the stream for its Content-Length
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self.size - self.pos))
        chunk = self.head[self.pos:self.pos + n]
        buffer[:n] = chunk + b"x" * (n - len(chunk))
        self.pos += n
        self.read_bytes += n
        return n


# What a server that decodes chunked transfer-encoding hands the app: no length, a stream it ends itself.
CHUNKED = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}


def dinstar_push(text: str, ident: int = 7) -> bytes:
    return json.dumps({"sn": "DG-1", "sms": [{"incoming_sms_id": ident, "port": 1, "number": "099123456",
                                              "timestamp": "2025-03-04 10:00:00", "text": text}]}).encode()


def padded_push(size: int) -> bytes:
    """A good Dinstar push of exactly `size` bytes (its text padded)."""
    empty = dinstar_push("")
    return dinstar_push("x" * (size - len(empty)))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_webhook_is_refused_before_its_body_is_read(client: Any, app: Any, db: Any, twilio: Any,
                                                                 dinstar: Any, chunked: bool) -> None:
    """413 for a forged Twilio body and for a Dinstar push with the right token alike: a declared length over
    the limit reads nothing, a chunked body (no length) is read no further than the limit."""
    calls = [(f"/webhooks/{twilio.id}/inbound", {"X-Twilio-Signature": "forged"}, b"MessageSid=SM1&Body=",
              "application/x-www-form-urlencoded"),
             (f"/webhooks/{dinstar.id}/inbound?token=gw-token", {}, dinstar_push("x" * BIG)[:BIG],
              "application/json")]
    for path, headers, head, ctype in calls:
        body = Body(BIG, head)
        response = client.post(path, input_stream=body, headers=headers, content_type=ctype,
                               environ_overrides=CHUNKED if chunked else {})
        assert response.status_code == 413, path
        if chunked:
            assert body.read_bytes < BIG // 2, path
        else:
            assert body.read_bytes == 0, path
    assert queued(app) == 0
    run_jobs(app)
    assert stored(db) == (0, 0)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_webhook_at_the_limit_is_taken(client: Any, app: Any, db: Any, dinstar: Any, chunked: bool) -> None:
    """The limit is the largest body taken, declared or chunked: one byte more is refused."""
    limit = app.config["WEBHOOK_MAX_BYTES"]
    path = f"/webhooks/{dinstar.id}/inbound?token=gw-token"
    for size, code in ((limit + 1, 413), (limit, 200)):
        data = padded_push(size)
        assert len(data) == size
        response = client.post(path, input_stream=io.BytesIO(data), content_type="application/json",
                               environ_overrides=CHUNKED if chunked else {})
        assert response.status_code == code, size
    run_jobs(app)
    assert stored(db) == (1, 1)


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_real_server_answers_413_to_a_streamed_body_without_taking_it_all(
        live_server: str, app: Any, db: Any, meta: Any, chunked: bool) -> None:
    """Over real HTTP, a 64 MB forged WhatsApp body streamed in chunks gets its 413 while most of it is unsent."""
    total = 64 * 1024 * 1024
    status, sent = stream_post(f"{live_server}/webhooks/{meta.id}/inbound",
                               {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + "0" * 64},
                               total, chunked=chunked)
    assert status == 413
    assert sent < total // 2
    assert queued(app) == 0


# -- signed but malformed payloads -----------------------------------------------------------------
def failed_jobs(app: Any) -> int:
    from rq.registry import FailedJobRegistry

    return sum(FailedJobRegistry(queue=q).count for q in app.extensions["conversa_queues"].values())


def bodies(db: Any) -> list[str]:
    db.session.expire_all()
    return db.session.scalars(sa.select(Message.body).where(Message.sender_kind == "customer")
                              .order_by(Message.id)).all()


def wa_message(wamid: str, text: str) -> dict[str, Any]:
    return {"from": "59899123456", "id": wamid, "timestamp": "1741096800", "type": "text", "text": {"body": text}}


def wa_change(*messages: Any) -> dict[str, Any]:
    return {"field": "messages", "value": {"messaging_product": "whatsapp",
                                           "metadata": {"display_phone_number": "59829001000"},
                                           "contacts": [{"profile": {"name": "Lucía"}, "wa_id": "59899123456"}],
                                           "messages": list(messages)}}


GOOD = wa_message("wamid.GOOD", "El mensaje bueno")


@pytest.mark.parametrize(("payload", "expected"), [
    ({"entry": "abc"}, []),
    ({"entry": [{"changes": [1, wa_change(GOOD)]}]}, ["El mensaje bueno"]),
    ({"entry": [{"changes": [wa_change("x", GOOD)]}]}, ["El mensaje bueno"]),
    ({"entry": [7, {"changes": [wa_change(GOOD)]}]}, ["El mensaje bueno"]),
    ({"entry": [{"changes": [wa_change({"id": "wamid.NOFROM", "type": "text"}, GOOD,
                                       {**GOOD, "id": {"not": "text"}})]}]}, ["El mensaje bueno"]),
], ids=["entry-text", "change-number", "message-text", "entry-number", "message-without-sender"])
def test_meta_malformed_siblings_are_skipped_and_the_good_message_kept(client: Any, app: Any, db: Any, meta: Any,
                                                                       payload: Any, expected: list[str]) -> None:
    """Signed, so it is Meta's: answer 200 (a 500 only makes Meta resend the same body for days), store every
    message that can be read, skip the rest."""
    body = json.dumps(payload).encode()
    for _ in range(2):  # the gateway's retry of the same body changes nothing
        assert meta_post(client, meta, body).status_code == 200
    run_jobs(app)
    assert failed_jobs(app) == 0
    assert bodies(db) == expected


def test_meta_statuses_beside_malformed_ones_apply(client: Any, app: Any, db: Any, meta: Any) -> None:
    message = _outbound(db, meta, "wamid.OUT1")
    body = json.dumps({"entry": [{"changes": [{"value": {"statuses": [
        "x", {"id": ["wamid.OUT1"], "status": "read"}, {"id": "wamid.OUT1", "status": "delivered", "errors": "e"},
        {"id": "wamid.OUT1", "status": "sent", "errors": ["x"]}]}}]}]}).encode()
    assert meta_post(client, meta, body).status_code == 200
    run_jobs(app)
    assert failed_jobs(app) == 0
    db.session.refresh(message)
    assert message.status == "delivered"


def dinstar_sms(ident: int, text: str, **changes: Any) -> dict[str, Any]:
    return {"incoming_sms_id": ident, "port": 1, "number": "099123456", "timestamp": "2025-03-04 10:00:00",
            "text": text, **changes}


@pytest.mark.parametrize(("payload", "expected"), [
    ({"sn": "DG-1", "sms": "abc"}, []),
    ({"sn": "DG-1", "sms": [dinstar_sms(1, "puerto roto", port="x"), dinstar_sms(2, "El SMS bueno")]},
     ["El SMS bueno"]),
    ({"sn": "DG-1", "sms": ["x", 3, None, dinstar_sms(2, "El SMS bueno"), dinstar_sms(4, "sin número", number=None)]},
     ["El SMS bueno"]),
], ids=["sms-text", "port-text", "odd-siblings"])
def test_dinstar_malformed_pushes_keep_what_can_be_read(client: Any, app: Any, db: Any, dinstar: Any,
                                                        payload: Any, expected: list[str]) -> None:
    response = client.post(f"/webhooks/{dinstar.id}/inbound?token=gw-token", json=payload)
    assert response.status_code == 200
    run_jobs(app)
    assert failed_jobs(app) == 0
    assert bodies(db) == expected


def test_dinstar_results_and_reports_beside_malformed_ones_apply(client: Any, app: Any, db: Any,
                                                                 dinstar: Any) -> None:
    by_ref = _outbound(db, dinstar, None)
    by_report = _outbound(db, dinstar, "1:9")
    result = {"sn": "DG-1", "sms_result": [
        {"port": 1, "user_id": "abc", "number": "099123456", "status": "DELIVERED", "ref_id": 3},
        {"port": 1, "user_id": 10 ** 30, "number": "099123456", "status": "FAILED", "ref_id": 4},
        {"port": 1, "user_id": MESSAGE_REF_OFFSET + by_ref.id, "number": "099123456", "status": "DELIVERED",
         "ref_id": 3}],
        "sms_deliver_status": [{"port": 1, "ref_id": 9, "number": "099123456", "status_code": "x"},
                               {"port": 1, "ref_id": 9, "number": "099123456", "status_code": 0}]}
    assert client.post(f"/webhooks/{dinstar.id}/status?token=gw-token", json=result).status_code == 200
    run_jobs(app)
    assert failed_jobs(app) == 0
    db.session.refresh(by_ref)
    db.session.refresh(by_report)
    assert (by_ref.status, by_report.status) == ("delivered", "delivered")


def test_twilio_unreadable_media_count_keeps_the_message(client: Any, app: Any, db: Any, twilio: Any) -> None:
    # A media URL off Twilio's API host is never fetched with the account's credentials (and no network here).
    params = {**twilio_inbound(body="Mirá la foto"), "NumMedia": "abc",
              "MediaUrl0": "https://media.example.com/ME1", "MediaContentType0": "image/jpeg"}
    assert signed_post(client, f"/webhooks/{twilio.id}/inbound", params).status_code == 200
    run_jobs(app)
    assert failed_jobs(app) == 0
    message = db.session.scalar(sa.select(Message))
    assert (message.body, message.media) == ("Mirá la foto", [{"kind": "image", "url": "https://media.example.com/ME1",
                                                               "content_type": "image/jpeg"}])
    assert [(a.state, a.kind) for a in message.attachments] == [("failed", "image")]


def test_meta_edge_values_are_stored_or_skipped_never_failing_the_job(client: Any, app: Any, db: Any,
                                                                      meta: Any) -> None:
    """Values at the store's limits go in (on PostgreSQL too); past them, or text no database takes, the
    message is skipped or the text mended, and the job carries on with the rest."""
    longest_id = "wamid." + "x" * 74
    contact = {"profile": {"name": "N" * 200}, "wa_id": "5" * 31}
    edge = {**wa_message(longest_id, "a\x00b\ud800c"), "from": "5" * 31}
    change = wa_change({**GOOD, "id": "wamid." + "y" * 75}, {**GOOD, "id": "wamid.LONGFROM", "from": "5" * 40},
                       edge, {**GOOD, "timestamp": 10 ** 30})
    change["value"]["contacts"].append(contact)
    assert meta_post(client, meta, json.dumps({"entry": [{"changes": [change]}]}).encode()).status_code == 200
    run_jobs(app)
    assert failed_jobs(app) == 0
    rows = db.session.execute(sa.select(Message.provider_message_id, Message.body, Interaction.customer_number,
                                        Interaction.customer_name).join(Message.interaction)
                              .order_by(Message.id)).all()
    assert [tuple(r) for r in rows] == [(longest_id, "ab?c", "+" + "5" * 31, "N" * 120),
                                        ("wamid.GOOD", "El mensaje bueno", "+59899123456", "Lucía")]
