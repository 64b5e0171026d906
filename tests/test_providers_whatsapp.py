"""The WhatsApp Cloud adapter against the Meta fake, and Meta's webhook signature."""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator

import pytest

from tests.fakes.server import FakeServer, Reply
from tests.fakes.whatsapp_cloud import (
    ACCESS_TOKEN,
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    FakeWhatsAppCloud,
    inbound_payload,
    status_payload,
)
from webapp.providers import get_adapter
from webapp.providers.base import OutboundMessage, Outcome, ProviderConfig, WebhookRequest
from webapp.providers.whatsapp_cloud import WhatsAppCloudAdapter

TO = "+59898344384"


@pytest.fixture
def fake() -> Iterator[FakeWhatsAppCloud]:
    with FakeWhatsAppCloud(timeout_seconds=1.0) as server:
        yield server


@pytest.fixture
def make_adapter(fake: FakeWhatsAppCloud) -> Iterator[Callable[..., WhatsAppCloudAdapter]]:
    made: list[WhatsAppCloudAdapter] = []

    def make(token: str = ACCESS_TOKEN, **kw: object) -> WhatsAppCloudAdapter:
        config = ProviderConfig(id=4, type="whatsapp_cloud", channel="whatsapp", sender="+59829000000",
                                base_url=fake.url,
                                credentials={"access_token": token, "app_secret": APP_SECRET,
                                             "verify_token": VERIFY_TOKEN},
                                options={"phone_number_id": PHONE_NUMBER_ID, "api_version": "v21.0"})
        kw.setdefault("timeout", 0.3)
        kw.setdefault("backoff", 0.01)
        kw.setdefault("sleep", lambda s: None)
        adapter = get_adapter(config, **kw)
        assert isinstance(adapter, WhatsAppCloudAdapter)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def test_send_text(fake: FakeWhatsAppCloud, make_adapter) -> None:
    """POST /v21.0/{phone_number_id}/messages with Bearer auth; the wamid comes back."""
    result = make_adapter().send(OutboundMessage(ref=1, to=TO, body="Hola Ana"))
    [stored] = fake.sent()
    assert (result.outcome, result.provider_message_id) == (Outcome.SENT, stored["id"])
    [req] = fake.api_requests()
    assert req.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert req.header("Authorization") == f"Bearer {ACCESS_TOKEN}"
    assert req.json == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "59898344384",
                        "type": "text", "text": {"preview_url": False, "body": "Hola Ana"}}


def test_send_template_with_variables(fake: FakeWhatsAppCloud, make_adapter) -> None:
    template = {"name": "recordatorio_turno", "language": "es", "variables": {"1": "Ana", "2": "martes"}}
    assert make_adapter().send(OutboundMessage(ref=2, to=TO, template=template)).ok
    assert fake.sent()[0]["payload"]["template"] == {
        "name": "recordatorio_turno", "language": {"code": "es"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"},
                                                       {"type": "text", "text": "martes"}]}]}


def test_outside_24h_window_keeps_code(fake: FakeWhatsAppCloud, make_adapter) -> None:
    """131047: permanent for free text, with the code kept so the caller can offer a template."""
    fake.outside_window.add("59898344384")
    adapter = make_adapter()
    result = adapter.send(OutboundMessage(ref=3, to=TO, body="¿Seguís ahí?"))
    assert (result.outcome, result.error_code, result.attempts) == (Outcome.PERMANENT, "131047", 1)
    assert adapter.send(OutboundMessage(ref=4, to=TO, template={"name": "retomar", "language": "es"})).ok


def test_undeliverable_and_expired_token(fake: FakeWhatsAppCloud, make_adapter) -> None:
    fake.undeliverable.add("59898344384")
    bad = make_adapter().send(OutboundMessage(ref=5, to=TO, body="x"))
    assert (bad.outcome, bad.error_code) == (Outcome.PERMANENT, "131026")
    expired = make_adapter(token="old").send(OutboundMessage(ref=6, to="+59898000000", body="x"))
    assert (expired.outcome, expired.error_code, expired.attempts) == (Outcome.PERMANENT, "190", 1)


def test_rate_limit_130429_retried_after_wait(fake: FakeWhatsAppCloud, make_adapter) -> None:
    waits: list[float] = []
    fake.retry_after = "3"
    fake.fail_next(1, "429")
    adapter = make_adapter(sleep=waits.append)
    result = adapter.send(OutboundMessage(ref=7, to=TO, body="x"))
    assert result.ok and result.attempts == 2 and waits == [3.0]
    fake.set_mode("429")
    limited = adapter.send(OutboundMessage(ref=8, to=TO, body="x"))
    assert (limited.outcome, limited.error_code) == (Outcome.RATE_LIMITED, "130429")


def test_pair_rate_limit_131056_is_the_recipients_alone(fake: FakeWhatsAppCloud, make_adapter) -> None:
    """131056 (too many to one customer): rate limited for that number only, about 6 s; 130429 is the
    number's throughput, a limit for every recipient."""
    fake.pair_limited.add("59898344384")
    adapter = make_adapter(retry_rate_limited=False)
    pair = adapter.send(OutboundMessage(ref=12, to=TO, body="x"))
    assert (pair.outcome, pair.error_code, pair.per_recipient, pair.retry_after) == \
        (Outcome.RATE_LIMITED, "131056", True, 6.0)
    assert adapter.send(OutboundMessage(ref=13, to="+59898000000", body="x")).ok
    fake.set_mode("429")
    throughput = adapter.send(OutboundMessage(ref=14, to="+59898000000", body="x"))
    assert (throughput.outcome, throughput.per_recipient, throughput.attempts) == (Outcome.RATE_LIMITED, False, 1)


def test_500_retried_then_timeout_ambiguous(fake: FakeWhatsAppCloud, make_adapter) -> None:
    """5xx retried; a read timeout after Meta took the message is ambiguous (no list API to ask)."""
    fake.fail_next(1, "500")
    assert make_adapter().send(OutboundMessage(ref=9, to=TO, body="x")).attempts == 2
    fake.fail_next(1, "timeout")
    result = make_adapter().send(OutboundMessage(ref=10, to=TO, body="y"))
    assert (result.outcome, result.ambiguous) == (Outcome.TEMPORARY, True)
    assert [m["payload"]["text"]["body"] for m in fake.sent()] == ["x", "y"]


def test_malformed_answer_is_ambiguous(fake: FakeWhatsAppCloud, make_adapter) -> None:
    fake.fail_next(1, "malformed")
    result = make_adapter().send(OutboundMessage(ref=11, to=TO, body="x"))
    assert (result.outcome, result.ambiguous, result.error_code) == (Outcome.TEMPORARY, True, "malformed")


# -- webhooks ------------------------------------------------------------------
def signed(body: bytes, secret: str = APP_SECRET) -> WebhookRequest:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest("POST", "https://conversa.example/hooks/wa", {"X-Hub-Signature-256": signature}, body)


def test_signed_webhook_round_trip(fake: FakeWhatsAppCloud, make_adapter) -> None:
    """The fake posts a signed inbound and a status over HTTP; we verify the raw bytes and parse them."""
    with FakeServer() as receiver:
        receiver.route("POST", r"/hooks/wa")(lambda req, m: Reply.text("ok"))
        url = f"{receiver.url}/hooks/wa"
        assert fake.post_webhook(url, inbound_payload("59898344384", "Quiero cambiar el turno", "Ana", "wamid.IN1")) \
            == 200
        assert fake.post_webhook(url, status_payload("wamid.OUT1", "failed", "59898344384", 131047)) == 200
        adapter = make_adapter()
        inbound_req, status_req = [WebhookRequest("POST", url, r.headers, r.body) for r in receiver.api_requests()]
        assert adapter.verify_signature(inbound_req) and adapter.verify_signature(status_req)
        [inbound] = adapter.parse_inbound(inbound_req)
        assert (inbound.provider_message_id, inbound.from_number, inbound.to, inbound.body, inbound.profile_name) == \
            ("wamid.IN1", "+59898344384", "+59829000000", "Quiero cambiar el turno", "Ana")
        assert inbound.channel == "whatsapp" and inbound.received_at is not None
        [update] = adapter.parse_status(status_req)
        assert (update.status, update.provider_message_id, update.error_code) == ("failed", "wamid.OUT1", "131047")
        assert adapter.parse_status(inbound_req) == [] and adapter.parse_inbound(status_req) == []


def test_forged_or_missing_meta_signature_is_refused(make_adapter) -> None:
    adapter = make_adapter()
    body = json.dumps(inbound_payload("59898344384", "hola")).encode()
    assert adapter.verify_signature(signed(body))
    assert not adapter.verify_signature(signed(body, "another-secret"))
    tampered = WebhookRequest("POST", "https://x", signed(body).headers, body.replace(b"hola", b"HOLA"))
    assert not adapter.verify_signature(tampered)
    assert not adapter.verify_signature(WebhookRequest("POST", "https://x", {}, body))
    assert not adapter.verify_signature(WebhookRequest("POST", "https://x", {"X-Hub-Signature-256": "abc"}, body))


def test_media_message_parsed(make_adapter) -> None:
    payload = inbound_payload("59898344384", "")
    payload["entry"][0]["changes"][0]["value"]["messages"][0].update(
        type="image", image={"id": "MEDIA1", "mime_type": "image/jpeg", "caption": "la factura"})
    [inbound] = make_adapter().parse_inbound(signed(json.dumps(payload).encode()))
    assert inbound.body == "la factura"
    assert inbound.media == [{"kind": "image", "id": "MEDIA1", "content_type": "image/jpeg"}]


@pytest.mark.parametrize(("args", "expected"), [
    ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}, ("1158201444", 200)),
    ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1158201444"}, ("Forbidden", 403)),
    ({"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}, ("Forbidden", 403)),
])
def test_verify_subscription(make_adapter, args, expected) -> None:
    assert make_adapter().verify_subscription(args) == expected
