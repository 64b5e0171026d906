"""The Dinstar adapter against the Dinstar fake (digest auth, batches, results, pushes)."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from tests.fakes.dinstar import PASSWORD, USERNAME, FakeDinstar
from tests.fakes.server import FakeServer, Reply
from webapp.providers import get_adapter
from webapp.providers.base import LookupOutcome, OutboundMessage, Outcome, ProviderConfig, WebhookRequest
from webapp.providers.dinstar import DinstarAdapter


@pytest.fixture
def fake() -> Iterator[FakeDinstar]:
    with FakeDinstar(timeout_seconds=1.0) as server:
        yield server


@pytest.fixture
def make_adapter(fake: FakeDinstar) -> Iterator[Callable[..., DinstarAdapter]]:
    made: list[DinstarAdapter] = []

    def make(password: str = PASSWORD, options: dict | None = None, url: str | None = None,
             **kw: object) -> DinstarAdapter:
        config = ProviderConfig(id=2, type="dinstar", sender="+59899000001", base_url=url or fake.url,
                                credentials={"username": USERNAME, "password": password},
                                options={"country_code": "598", **(options or {})})
        kw.setdefault("timeout", 0.3)
        kw.setdefault("backoff", 0.01)
        adapter = get_adapter(config, sleep=lambda s: None, **kw)
        assert isinstance(adapter, DinstarAdapter)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def msg(ref: int, to: str = "+59898344384", body: str = "Su pedido fue enviado", port: int | None = 2):
    return OutboundMessage(ref=ref, to=to, body=body, port=port)


def send_bodies(fake: FakeDinstar) -> list[dict]:
    return [r.json for r in fake.send_requests() if r.json]


def test_batch_is_one_request_with_ports_encoding_and_user_ids(fake: FakeDinstar, make_adapter) -> None:
    """Three messages, same text and port: one send_sms, numbers national, user_id = ref."""
    adapter = make_adapter()
    results = adapter.send_batch([msg(101, "+59898344384"), msg(102, "+59898344385"), msg(103, "+59898344386")])
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert [r.provider_message_id for r in results] == ["101", "102", "103"]
    [body] = send_bodies(fake)
    assert body == {"text": "Su pedido fue enviado", "encoding": "gsm-7bit", "request_status_report": True,
                    "port": [2], "param": [{"number": "098344384", "user_id": 101},
                                           {"number": "098344385", "user_id": 102},
                                           {"number": "098344386", "user_id": 103}]}
    assert [s["user_id"] for s in fake.sent()] == [101, 102, 103]
    assert all(s["port"] == 2 for s in fake.sent())


def test_digest_auth_is_used(fake: FakeDinstar, make_adapter) -> None:
    """The first request is challenged, the rest carry a Digest header computed from the password."""
    assert make_adapter().send(msg(1)).ok
    assert (fake.send_requests()[0].header("Authorization") or "").startswith("Digest ")
    assert fake.sent_count() == 1


def test_basic_auth_fallback() -> None:
    """Firmware that challenges with Basic: the adapter switches to Basic and is accepted."""
    with FakeDinstar(auth="basic") as fake:
        config = ProviderConfig(id=2, type="dinstar", base_url=fake.url,
                                credentials={"username": USERNAME, "password": PASSWORD})
        with get_adapter(config, timeout=1, backoff=0.01) as adapter:
            assert adapter.send(msg(1)).ok
            assert adapter.send(msg(2)).ok
        assert [s["user_id"] for s in fake.sent()] == [1, 2]
        assert all((r.header("Authorization") or "").startswith("Basic ") for r in fake.send_requests())


def test_wrong_password_is_permanent(fake: FakeDinstar, make_adapter) -> None:
    result = make_adapter(password="nope").send(msg(1))
    assert (result.outcome, result.error_code, result.attempts) == (Outcome.PERMANENT, "401", 1)
    assert fake.sent_count() == 0


def test_unicode_text_and_grouping_by_text(fake: FakeDinstar, make_adapter) -> None:
    """Different texts go in different requests; a non-GSM text is sent as unicode; order is kept."""
    adapter = make_adapter()
    messages = [msg(1, body="Hola"), msg(2, body="¿Cómo estás? 😀"), msg(3, body="Hola"), msg(4, body="Hola", port=5)]
    results = adapter.send_batch(messages)
    assert [r.provider_message_id for r in results] == ["1", "2", "3", "4"]
    bodies = send_bodies(fake)
    assert [(b["text"], b["encoding"], b["port"], [p["user_id"] for p in b["param"]]) for b in bodies] == [
        ("Hola", "gsm-7bit", [2], [1, 3]), ("¿Cómo estás? 😀", "unicode", [2], [2]), ("Hola", "gsm-7bit", [5], [4])]


def test_batches_are_split_at_fifty(fake: FakeDinstar, make_adapter) -> None:
    adapter = make_adapter()
    assert adapter.batch_size == 50 and adapter.uses_ports
    results = adapter.send_batch([msg(i, f"+5989834{i:04d}") for i in range(120)])
    assert all(r.ok for r in results)
    assert [len(b["param"]) for b in send_bodies(fake)] == [50, 50, 20]
    assert fake.sent_count() == 120


def test_firmware_answering_200_is_success() -> None:
    with FakeDinstar(success_code=200) as fake:
        config = ProviderConfig(id=2, type="dinstar", base_url=fake.url,
                                credentials={"username": USERNAME, "password": PASSWORD})
        with get_adapter(config, timeout=1) as adapter:
            assert adapter.send(msg(1)).ok


def test_bad_request_is_permanent(fake: FakeDinstar, make_adapter) -> None:
    """error_code 400 (port 99 does not exist): refused, not retried."""
    result = make_adapter().send(msg(1, port=99))
    assert (result.outcome, result.error_code, result.attempts) == (Outcome.PERMANENT, "400", 1)
    assert len(fake.send_requests()) == 1


def test_500_is_retried(fake: FakeDinstar, make_adapter) -> None:
    fake.fail_next(2, "500")
    [result] = make_adapter().send_batch([msg(1)])
    assert result.ok and result.attempts == 3
    assert len(fake.send_requests()) == 3 and fake.sent_count() == 1


def test_429_is_rate_limited_after_attempts(fake: FakeDinstar, make_adapter) -> None:
    fake.set_mode("429")
    result = make_adapter(max_attempts=2).send(msg(1))
    assert (result.outcome, result.retry_after, result.attempts) == (Outcome.RATE_LIMITED, 1.0, 2)


def test_429_handed_back_at_once_for_the_whole_batch(fake: FakeDinstar, make_adapter) -> None:
    """retry_rate_limited=False (the dialer): one request, every message of it RATE_LIMITED with Retry-After."""
    fake.set_mode("429")
    results = make_adapter(max_attempts=3, retry_rate_limited=False).send_batch([msg(1), msg(2)])
    assert [(r.outcome, r.retry_after, r.attempts) for r in results] == [(Outcome.RATE_LIMITED, 1.0, 1)] * 2
    assert len(fake.send_requests()) == 1


def test_timeout_after_processing_is_reconciled_by_user_id(fake: FakeDinstar, make_adapter) -> None:
    """The gateway queued the batch but the answer was lost: query_sms_result finds every user_id."""
    fake.fail_next(1, "timeout", path="send_sms")
    results = make_adapter().send_batch([msg(1, "+59898344384"), msg(2, "+59898344385")])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert len(fake.send_requests()) == 1
    assert len(fake.sends_for_ref(1)) == 1 and len(fake.sends_for_ref(2)) == 1
    queried = [r.json for r in fake.api_requests("query_sms_result") if r.header("Authorization")]
    assert queried[-1] == {"user_id": [1, 2]}


@pytest.mark.parametrize("mode", ["close", "timeout_unprocessed"])
def test_lost_batch_is_resent_once(fake: FakeDinstar, make_adapter, mode: str) -> None:
    """The gateway never got it (no result for the user_ids): sent again, once."""
    fake.fail_next(1, mode, path="send_sms")
    results = make_adapter().send_batch([msg(1), msg(2, "+59898344385")])
    assert all(r.ok for r in results) and results[0].attempts == 2
    assert [s["user_id"] for s in fake.sent()] == [1, 2]


def test_malformed_answer_is_reconciled(fake: FakeDinstar, make_adapter) -> None:
    fake.fail_next(1, "malformed", path="send_sms")
    assert make_adapter().send(msg(5)).ok
    assert len(fake.sends_for_ref(5)) == 1


def test_ambiguous_when_gateway_cannot_be_asked(fake: FakeDinstar, make_adapter) -> None:
    """Timeout on send, then every query fails: ambiguous, one send_sms only."""
    fake.fail_next(1, "timeout", path="send_sms")
    fake.set_mode("500", path="query_sms_result")
    result = make_adapter().send(msg(6))
    assert (result.outcome, result.ambiguous) == (Outcome.TEMPORARY, True)
    assert len(fake.send_requests()) == 1


def test_lookup_by_user_id(fake: FakeDinstar, make_adapter) -> None:
    """SENT_OK → FOUND; an unknown user_id → NOT_FOUND; FAILED with nothing sent → NOT_FOUND."""
    adapter = make_adapter()
    fake.failing_numbers.add("098344399")
    assert adapter.send_batch([msg(11), msg(12, "+59898344399")])[0].ok
    now = datetime.now(UTC)
    found = adapter.lookup(msg(11), now)
    assert (found.outcome, found.status) == (LookupOutcome.FOUND, "SENT_OK")
    assert adapter.lookup(msg(13), now).outcome is LookupOutcome.NOT_FOUND
    failed = adapter.lookup(msg(12), now)
    assert (failed.outcome, failed.status) == (LookupOutcome.NOT_FOUND, "FAILED")
    fake.set_mode("500")
    assert adapter.lookup(msg(11), now).outcome is LookupOutcome.UNKNOWN


def test_poll_inbound_reads_unread_once(fake: FakeDinstar, make_adapter) -> None:
    """Unread messages come back as E.164 with their port; a second poll finds nothing new."""
    fake.push_incoming("098344384", "Hola, quiero info", port=1)
    fake.push_incoming("+59898344385", "BAJA", port=3)
    adapter = make_adapter(options={"port_numbers": {"1": "+59899000011"}})
    first = adapter.poll_inbound()
    assert [(m.from_number, m.body, m.port, m.to) for m in first] == [
        ("+59898344384", "Hola, quiero info", 1, "+59899000011"), ("+59898344385", "BAJA", 3, "+59899000001")]
    assert first[0].provider_message_id != first[1].provider_message_id
    assert first[0].received_at is not None
    assert adapter.poll_inbound() == []
    assert fake.api_requests("query_incoming_sms")[-1].query == {"flag": "unread"}


def test_poll_status_joins_results_and_delivery_reports(fake: FakeDinstar, make_adapter) -> None:
    """Delivered (status_code 0), permanently failed (70), still only sent: joined by port and ref_id."""
    adapter = make_adapter()
    adapter.send_batch([msg(21, "+59898344381"), msg(22, "+59898344382"), msg(23, "+59898344383")])
    fake.deliver(21, 0)
    fake.deliver(22, 70)
    updates = {u.ref: u for u in adapter.poll_status([21, 22, 23])}
    assert (updates[21].status, updates[21].error_code) == ("delivered", None)
    assert (updates[22].status, updates[22].error_code) == ("undelivered", "70")
    assert updates[23].status == "sent"
    assert updates[21].provider_message_id == f"2:{fake.sends_for_ref(21)[0]['ref_id']}"


def test_push_webhooks_are_parsed() -> None:
    """The gateway's JSON pushes (sms, sms_result, sms_deliver_status) arrive over HTTP and parse."""
    with FakeServer() as receiver, FakeDinstar() as gateway:
        receiver.route("POST", r"/hooks/dinstar")(lambda req, m: Reply.json({"error_code": 200}))
        url = f"{receiver.url}/hooks/dinstar?token=s3cret"
        gateway.push(url, "sms", [{"incoming_sms_id": 9, "port": 0, "number": "098344384",
                                   "timestamp": "2016-07-12 15:46:18", "text": "¿Hasta qué hora abren?"}])
        gateway.push(url, "sms_result", [{"port": 0, "user_id": 17, "number": "098344384",
                                          "time": "2014-12-21 12:06:01", "status": "SENT_OK", "count": 1,
                                          "succ_count": 1, "ref_id": 12}])
        gateway.push(url, "sms_deliver_status", [{"port": 0, "number": "098344384", "time": "2014-12-21 12:06:09",
                                                  "ref_id": 12, "status_code": 0}])
        config = ProviderConfig(id=2, type="dinstar", options={"country_code": "598", "webhook_token": "s3cret"})
        adapter = get_adapter(config)
        requests = [WebhookRequest("POST", url, r.headers, r.body, args=r.query) for r in receiver.api_requests()]
        assert all(adapter.verify_signature(r) for r in requests)
        [inbound] = adapter.parse_inbound(requests[0])
        assert (inbound.from_number, inbound.body, inbound.port) == ("+59898344384", "¿Hasta qué hora abren?", 0)
        assert inbound.received_at == datetime(2016, 7, 12, 15, 46, 18)
        [result] = adapter.parse_status(requests[1])
        assert (result.status, result.ref, result.provider_message_id) == ("sent", 17, "0:12")
        [report] = adapter.parse_status(requests[2])
        assert (report.status, report.ref, report.provider_message_id) == ("delivered", None, "0:12")


def test_webhook_token_is_always_required() -> None:
    """A Dinstar does not sign: the token in the URL is all that tells it from anyone else, so a provider
    without one accepts nothing (the admin form always sets one)."""
    body = json.dumps({"sn": "x", "sms": []}).encode()
    with_token = get_adapter(ProviderConfig(id=2, type="dinstar", options={"webhook_token": "s3cret"}))
    without = get_adapter(ProviderConfig(id=2, type="dinstar"))
    assert not with_token.verify_signature(WebhookRequest("POST", "https://x/h", {}, body, args={"token": "bad"}))
    assert not with_token.verify_signature(WebhookRequest("POST", "https://x/h", {}, body))
    assert with_token.verify_signature(WebhookRequest("POST", "https://x/h", {}, body, args={"token": "s3cret"}))
    assert not without.verify_signature(WebhookRequest("POST", "https://x/h", {}, body))
    assert not without.verify_signature(WebhookRequest("POST", "https://x/h", {}, body, args={"token": ""}))
