"""The Twilio adapter against the Twilio fake, over real loopback sockets."""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from tests.fakes.server import FakeServer, Reply
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from webapp.providers import get_adapter
from webapp.providers.base import (
    LookupOutcome,
    OutboundMessage,
    Outcome,
    ProviderConfig,
    WebhookRequest,
)
from webapp.providers.http import parse_retry_after
from webapp.providers.twilio import TwilioAdapter

SENDER = "+15005550006"
TO = "+59898344384"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(timeout_seconds=1.0) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_adapter(fake: FakeTwilio, sleeps: list[float]) -> Iterator[Callable[..., TwilioAdapter]]:
    made: list[TwilioAdapter] = []

    def make(channel: str = "sms", sender: str = SENDER, token: str = AUTH_TOKEN, real_sleep: bool = False,
             base_url: str | None = None, **kw: object) -> TwilioAdapter:
        config = ProviderConfig(id=1, type="twilio", channel=channel, sender=sender,
                                base_url=base_url or fake.url, options=dict(kw.pop("options", {}) or {}),
                                credentials={"account_sid": ACCOUNT_SID, "auth_token": token})
        kw.setdefault("timeout", 0.3)
        kw.setdefault("backoff", 0.01)
        sleep = time.sleep if real_sleep else sleeps.append
        adapter = get_adapter(config, sleep=sleep, **kw)
        assert isinstance(adapter, TwilioAdapter)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def msg(ref: int = 1, to: str = TO, body: str = "Hola, tu turno es mañana", **kw: object) -> OutboundMessage:
    return OutboundMessage(ref=ref, to=to, body=body, **kw)  # type: ignore[arg-type]


# -- sending -------------------------------------------------------------------
def test_send_posts_form_with_basic_auth_and_returns_sid(fake: FakeTwilio, make_adapter) -> None:
    """A plain SMS: To/From/Body/StatusCallback form-encoded, 201 JSON read back."""
    result = make_adapter().send(msg(status_callback_url="https://app.example/hooks/twilio/status"))
    assert result.outcome is Outcome.SENT
    assert result.attempts == 1
    [stored] = fake.sent()
    assert result.provider_message_id == stored["sid"] and stored["sid"].startswith("SM")
    assert result.status == "queued" and result.segments == 1
    [req] = fake.api_requests(method="POST")
    assert req.form == {"To": TO, "From": SENDER, "Body": "Hola, tu turno es mañana",
                        "StatusCallback": "https://app.example/hooks/twilio/status"}
    assert (req.header("Authorization") or "").startswith("Basic ")


def test_whatsapp_addresses_and_template(fake: FakeTwilio, make_adapter) -> None:
    """On the WhatsApp channel both ends get `whatsapp:`; a template goes as ContentSid + ContentVariables."""
    adapter = make_adapter(channel="whatsapp")
    template = {"content_sid": "HX" + "a" * 32, "variables": {"1": "Ana", "2": "12/05"}}
    result = adapter.send(msg(template=template))
    assert result.ok
    [req] = fake.api_requests(method="POST")
    assert req.form["To"] == f"whatsapp:{TO}" and req.form["From"] == f"whatsapp:{SENDER}"
    assert req.form["ContentSid"] == template["content_sid"]
    assert json.loads(req.form["ContentVariables"]) == {"1": "Ana", "2": "12/05"}
    assert "Body" not in req.form


def test_messaging_service_sid_replaces_from(fake: FakeTwilio, make_adapter) -> None:
    """With a Messaging Service, no From is sent."""
    service = "MG" + "1" * 32
    assert make_adapter(options={"messaging_service_sid": service}).send(msg()).ok
    [req] = fake.api_requests(method="POST")
    assert req.form["MessagingServiceSid"] == service and "From" not in req.form


@pytest.mark.parametrize(("to", "outcome", "code"), [
    ("+15005550001", Outcome.PERMANENT, "21211"),
    ("+15005550009", Outcome.PERMANENT, "21614"),
    ("+15005550004", Outcome.OPTED_OUT, "21610"),
    ("12345", Outcome.PERMANENT, "21211"),
])
def test_refusals_are_classified_and_never_retried(fake: FakeTwilio, make_adapter, to, outcome, code) -> None:
    """Twilio's error codes map to outcomes; a refusal is one request, no retry."""
    result = make_adapter().send(msg(to=to))
    assert (result.outcome, result.error_code, result.attempts) == (outcome, code, 1)
    assert len(fake.api_requests(method="POST")) == 1
    assert fake.sent_count() == 0


def test_opted_out_recipient(fake: FakeTwilio, make_adapter) -> None:
    """A number that texted STOP: 21610 → OPTED_OUT, for the caller's do-not-contact list."""
    fake.opted_out.add(TO)
    result = make_adapter().send(msg())
    assert result.outcome is Outcome.OPTED_OUT and result.error_code == "21610"


def test_bad_credentials_are_permanent(fake: FakeTwilio, make_adapter) -> None:
    """20003 Authenticate: retrying cannot help."""
    result = make_adapter(token="wrong").send(msg())
    assert (result.outcome, result.error_code, result.attempts) == (Outcome.PERMANENT, "20003", 1)


def test_500_is_retried_with_backoff(fake: FakeTwilio, make_adapter, sleeps) -> None:
    """Two 500s then success: three requests, two growing waits, one message."""
    fake.fail_next(2, "500")
    result = make_adapter().send(msg())
    assert result.ok and result.attempts == 3
    assert len(fake.api_requests(method="POST")) == 3
    assert fake.sent_count() == 1
    assert len(sleeps) == 2 and 0.01 <= sleeps[0] < sleeps[1] <= 0.03


def test_500_until_attempts_run_out(fake: FakeTwilio, make_adapter) -> None:
    """A gateway that keeps failing: TEMPORARY after max_attempts, nothing sent, not ambiguous."""
    fake.set_mode("500")
    result = make_adapter(max_attempts=4).send(msg())
    assert (result.outcome, result.attempts, result.ambiguous) == (Outcome.TEMPORARY, 4, False)
    assert len(fake.api_requests(method="POST")) == 4


def test_429_retry_after_is_honoured(fake: FakeTwilio, make_adapter) -> None:
    """20429 with Retry-After: 1 — the retry arrives at least a second later."""
    fake.fail_next(1, "429")
    result = make_adapter(real_sleep=True).send(msg())
    assert result.ok and result.attempts == 2
    first, second = fake.api_requests(method="POST")
    assert second.at - first.at >= 0.95


def test_429_beyond_the_cap_is_handed_back(fake: FakeTwilio, make_adapter, sleeps) -> None:
    """A Retry-After longer than max_retry_wait is not slept in the worker: RATE_LIMITED with the delay."""
    fake.retry_after = "120"
    fake.set_mode("429")
    result = make_adapter(max_retry_wait=30).send(msg())
    assert (result.outcome, result.error_code, result.retry_after) == (Outcome.RATE_LIMITED, "20429", 120.0)
    assert result.attempts == 1 and sleeps == []


def test_429_retry_after_is_the_floor_of_the_backoff(fake: FakeTwilio, make_adapter, sleeps) -> None:
    """Retry-After: 1 to every try, backoff 2 s: the waits are 2 s and 4 s (backoff, jittered up to 20%), not
    1 s each (a gateway saying "one second" to five tries must not get them in five seconds)."""
    fake.set_mode("429")
    result = make_adapter(backoff=2.0, max_attempts=3).send(msg())
    assert (result.outcome, result.attempts, result.per_recipient) == (Outcome.RATE_LIMITED, 3, False)
    assert len(sleeps) == 2 and 2.0 <= sleeps[0] <= 2.4 and 4.0 <= sleeps[1] <= 4.8
    fake.set_mode(None)
    fake.retry_after = "7"
    fake.fail_next(1, "429")
    assert make_adapter(backoff=2.0).send(msg()).ok
    assert sleeps[2] == 7.0  # a longer Retry-After wins


def test_429_handed_back_at_once_to_a_caller_that_paces(fake: FakeTwilio, make_adapter, sleeps) -> None:
    """retry_rate_limited=False (the dialer): one request, no sleep here; the caller slows every worker."""
    fake.set_mode("429")
    result = make_adapter(retry_rate_limited=False, max_attempts=3).send(msg())
    assert (result.outcome, result.attempts, result.retry_after) == (Outcome.RATE_LIMITED, 1, 1.0)
    assert sleeps == [] and len(fake.api_requests(method="POST")) == 1
    assert isinstance(make_adapter(retry_rate_limited=False).replace(sender="+15005550007"), TwilioAdapter)


def test_14107_is_the_pair_of_numbers_rate_limit(fake: FakeTwilio, make_adapter) -> None:
    """14107 (too many messages between the two numbers): rate limited for that recipient only, 30 s."""
    fake.pair_limited.add(TO)
    result = make_adapter(retry_rate_limited=False).send(msg())
    assert (result.outcome, result.error_code, result.per_recipient, result.retry_after) == \
        (Outcome.RATE_LIMITED, "14107", True, 30.0)
    assert make_adapter().send(msg(to="+59898344385")).ok


def test_retry_after_http_date() -> None:
    """Retry-After may be an HTTP date."""
    now = time.time()
    when = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert parse_retry_after(when, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("soon") is None


def test_timeout_after_processing_is_reconciled_not_resent(fake: FakeTwilio, make_adapter) -> None:
    """The answer is lost after Twilio took the message: lookup finds it, no second send."""
    fake.fail_next(1, "timeout", path="Messages.json")
    result = make_adapter().send(msg())
    assert result.outcome is Outcome.SENT
    [stored] = fake.sent()
    assert result.provider_message_id == stored["sid"]
    assert len(fake.api_requests(method="POST")) == 1
    assert len(fake.api_requests(method="GET")) >= 1


@pytest.mark.parametrize("mode", ["timeout_unprocessed", "close"])
def test_lost_request_is_looked_up_then_resent_once(fake: FakeTwilio, make_adapter, mode) -> None:
    """Twilio never took it (lookup says NOT_FOUND): exactly one resend, exactly one message."""
    fake.fail_next(1, mode, path="Messages.json")
    result = make_adapter().send(msg())
    assert result.ok and result.attempts == 2
    assert fake.sent_count() == 1
    assert len(fake.api_requests(method="POST")) == 2


def test_malformed_201_is_reconciled(fake: FakeTwilio, make_adapter) -> None:
    """An unreadable 201 may hide a sent message: lookup finds it instead of resending."""
    fake.fail_next(1, "malformed")
    result = make_adapter().send(msg())
    assert result.ok and result.provider_message_id == fake.sent()[0]["sid"]
    assert fake.sent_count() == 1 and len(fake.api_requests(method="POST")) == 1


def test_timeout_with_lookup_failing_is_ambiguous(fake: FakeTwilio, make_adapter) -> None:
    """When Twilio cannot be asked either, the send is reported ambiguous and not retried."""
    fake.fail_next(1, "timeout")
    fake.set_mode("500")
    result = make_adapter().send(msg())
    assert (result.outcome, result.ambiguous, result.error_code) == (Outcome.TEMPORARY, True, "timeout")
    assert len(fake.api_requests(method="POST")) == 1


def test_connect_error_is_retried_safely(make_adapter) -> None:
    """Nothing listens: connect errors are retried up to max_attempts and never ambiguous."""
    closed = FakeServer().start()
    url = closed.url
    closed.stop()
    result = make_adapter(base_url=url, max_attempts=2).send(msg())
    assert (result.outcome, result.error_code, result.attempts, result.ambiguous) == \
        (Outcome.TEMPORARY, "connect", 2, False)


def test_keep_alive_throughput(fake: FakeTwilio, make_adapter) -> None:
    """One pooled session: 200 sends well under the time a reconnect per send would take."""
    adapter = make_adapter(timeout=5)
    started = time.monotonic()
    results = [adapter.send(msg(ref=i, body=f"m{i}")) for i in range(200)]
    elapsed = time.monotonic() - started
    assert all(r.ok for r in results) and fake.sent_count() == 200
    assert elapsed < 4.0, f"200 sends took {elapsed:.2f}s"


# -- lookup --------------------------------------------------------------------
def test_lookup_pages_through_the_list(fake: FakeTwilio, make_adapter) -> None:
    """The match is on page 3 of a 2-per-page list: next_page_uri is followed."""
    fake.max_page_size = 2
    adapter = make_adapter()
    since = datetime.now(UTC)
    assert adapter.send(msg(ref=7, body="el bueno")).ok
    for i in range(5):
        assert adapter.send(msg(ref=10 + i, body=f"otro {i}")).ok
    found = adapter.lookup(msg(ref=7, body="el bueno"), since)
    assert found.outcome is LookupOutcome.FOUND
    assert found.provider_message_id == fake.sends_with_body("el bueno")[0]["sid"]
    lists = [r for r in fake.api_requests(method="GET") if r.path.endswith("Messages.json")]
    assert len(lists) == 3
    assert lists[0].query["To"] == TO and lists[0].query["From"] == SENDER
    assert lists[0].query["DateSent>"] == (since - timedelta(seconds=60)).date().isoformat()


def test_lookup_not_found_for_other_body_or_older_message(fake: FakeTwilio, make_adapter) -> None:
    """Same recipient but another text, or the same text sent long before: NOT_FOUND."""
    adapter = make_adapter()
    fake.add_message(TO, "viejo", SENDER, datetime.now(UTC) - timedelta(hours=2))
    assert adapter.send(msg(body="nuevo")).ok
    since = datetime.now(UTC) - timedelta(seconds=5)
    assert adapter.lookup(msg(body="otra cosa"), since).outcome is LookupOutcome.NOT_FOUND
    assert adapter.lookup(msg(body="viejo"), since).outcome is LookupOutcome.NOT_FOUND
    assert adapter.lookup(msg(body="nuevo"), since).outcome is LookupOutcome.FOUND


def test_lookup_finds_a_message_still_queued(fake: FakeTwilio, make_adapter) -> None:
    """A queued message has no date_sent, so DateSent misses it; the unfiltered pass finds it."""
    fake.hold_in_queue = True
    adapter = make_adapter()
    assert adapter.send(msg(body="en cola")).ok
    assert adapter.lookup(msg(body="en cola"), datetime.now(UTC)).outcome is LookupOutcome.FOUND


def test_lookup_unknown_when_twilio_unreachable(fake: FakeTwilio, make_adapter) -> None:
    """A list that keeps failing gives UNKNOWN, never NOT_FOUND."""
    fake.set_mode("500")
    assert make_adapter().lookup(msg(), datetime.now(UTC)).outcome is LookupOutcome.UNKNOWN


# -- signatures ------------------------------------------------------------------
WEBHOOK_URL = "https://conversa.example.com/hooks/twilio/inbound?provider=3"
PARAMS = {"MessageSid": "SM" + "b" * 32, "AccountSid": ACCOUNT_SID, "From": "+59898344384",
          "To": SENDER, "Body": "Hola! ¿Tienen stock?", "NumMedia": "0"}


def form_request(url: str, params: dict[str, str], signature: str | None, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> WebhookRequest:
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    if signature is not None:
        hdrs["X-Twilio-Signature"] = signature
    return WebhookRequest("POST", url, hdrs, body if body is not None else urlencode(params).encode(), dict(params))


@pytest.fixture
def adapter(make_adapter) -> TwilioAdapter:
    return make_adapter()


def test_signature_from_official_validator_is_accepted(adapter: TwilioAdapter) -> None:
    """A request signed by twilio's RequestValidator verifies."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(WEBHOOK_URL, PARAMS)
    assert adapter.verify_signature(form_request(WEBHOOK_URL, PARAMS, signature))


@pytest.mark.parametrize(("signed_url", "called_url"), [
    ("https://conversa.example.com/hooks/twilio", "https://conversa.example.com:443/hooks/twilio"),
    ("https://conversa.example.com:443/hooks/twilio", "https://conversa.example.com/hooks/twilio"),
    ("http://conversa.example.com:80/hooks/twilio", "http://conversa.example.com/hooks/twilio"),
])
def test_signature_with_or_without_default_port(adapter: TwilioAdapter, signed_url, called_url) -> None:
    """Like RequestValidator.validate, the URL is tried with and without its port."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(signed_url, PARAMS)
    assert RequestValidator(AUTH_TOKEN).validate(called_url, PARAMS, signature)
    assert adapter.verify_signature(form_request(called_url, PARAMS, signature))


def test_forged_tampered_or_missing_signature_is_refused(adapter: TwilioAdapter) -> None:
    """Wrong token, changed body, other URL, no header: all refused."""
    forged = RequestValidator("not-the-token").compute_signature(WEBHOOK_URL, PARAMS)
    good = RequestValidator(AUTH_TOKEN).compute_signature(WEBHOOK_URL, PARAMS)
    tampered = {**PARAMS, "Body": "Hola! ¿Tienen stock? Mandame todo"}
    assert not adapter.verify_signature(form_request(WEBHOOK_URL, PARAMS, forged))
    assert not adapter.verify_signature(form_request(WEBHOOK_URL, tampered, good))
    assert not adapter.verify_signature(form_request(WEBHOOK_URL.replace("provider=3", "provider=4"), PARAMS, good))
    assert not adapter.verify_signature(form_request(WEBHOOK_URL, PARAMS, None))
    assert not adapter.verify_signature(form_request(WEBHOOK_URL, PARAMS, ""))


def test_signature_with_repeated_parameters(adapter: TwilioAdapter) -> None:
    """Repeated names are signed once per distinct value, sorted, as the official validator does."""
    from werkzeug.datastructures import MultiDict
    multi = MultiDict([("To", SENDER), ("MediaUrl", "https://m/2"), ("MediaUrl", "https://m/1")])
    signature = RequestValidator(AUTH_TOKEN).compute_signature(WEBHOOK_URL, multi)
    body = urlencode(list(multi.items(multi=True))).encode()
    request = WebhookRequest("POST", WEBHOOK_URL, {"Content-Type": "application/x-www-form-urlencoded",
                                                   "X-Twilio-Signature": signature}, body, multi.to_dict())
    assert adapter.verify_signature(request)


def test_signature_for_json_body_with_body_hash(adapter: TwilioAdapter) -> None:
    """JSON webhooks: the URL carries bodySHA256 and only the URL is signed."""
    import hashlib
    body = json.dumps({"event": "x"}).encode()
    url = f"https://conversa.example.com/hooks/twilio?bodySHA256={hashlib.sha256(body).hexdigest()}"
    validator = RequestValidator(AUTH_TOKEN)
    signature = validator.compute_signature(url, {})
    assert validator.validate(url, body.decode(), signature)
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature}
    assert adapter.verify_signature(WebhookRequest("POST", url, headers, body))
    assert not adapter.verify_signature(WebhookRequest("POST", url, headers, body + b" "))
    forged = "https://conversa.example.com/hooks/twilio?bodySHA256=%C3%A9"  # not ASCII: refused, not a 500
    assert not adapter.verify_signature(WebhookRequest("POST", forged, headers, body))


def test_signature_sha256_with_settings_header(adapter: TwilioAdapter) -> None:
    """X-Twilio-Webhooks-Signature-Settings picks HMAC-SHA256, as the official validator reads it."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(WEBHOOK_URL, PARAMS, "HMAC_SHA256")
    settings = {"X-Twilio-Webhooks-Signature-Settings": "key=sk_1,algorithm=HMAC_SHA256"}
    assert adapter.verify_signature(form_request(WEBHOOK_URL, PARAMS, signature, headers=settings))
    assert not adapter.verify_signature(form_request(WEBHOOK_URL, PARAMS, signature))


def test_status_callback_round_trip(fake: FakeTwilio, make_adapter) -> None:
    """The fake delivers a signed StatusCallback to a live receiver; we verify and parse what arrived."""
    with FakeServer() as receiver:
        receiver.route("POST", r"/hooks/status")(lambda req, m: Reply.text(""))
        adapter = make_adapter()
        callback = f"{receiver.url}/hooks/status"
        sid = adapter.send(msg(status_callback_url=callback)).provider_message_id
        assert fake.deliver(sid, "delivered") == 200
        [got] = receiver.api_requests()
        request = WebhookRequest("POST", callback, got.headers, got.body, got.form)
        assert adapter.verify_signature(request)
        [update] = adapter.parse_status(request)
        assert (update.status, update.provider_message_id, update.error_code) == ("delivered", sid, None)


# -- parsing ---------------------------------------------------------------------
def test_parse_inbound_whatsapp_with_media(adapter: TwilioAdapter) -> None:
    """whatsapp: prefixes stripped, media listed, ProfileName kept."""
    form = {"MessageSid": "SM1", "From": "whatsapp:+59898344384", "To": "whatsapp:+15005550006",
            "Body": "mirá la foto", "NumMedia": "2", "MediaUrl0": "https://api.twilio.com/m0",
            "MediaContentType0": "image/jpeg", "MediaUrl1": "https://api.twilio.com/m1",
            "MediaContentType1": "application/pdf", "ProfileName": "Ana", "WaId": "59898344384"}
    [inbound] = adapter.parse_inbound(WebhookRequest("POST", WEBHOOK_URL, {}, b"", form))
    assert (inbound.provider_message_id, inbound.from_number, inbound.to) == ("SM1", "+59898344384", SENDER)
    assert (inbound.channel, inbound.profile_name, inbound.body) == ("whatsapp", "Ana", "mirá la foto")
    assert inbound.media == [{"kind": "image", "url": "https://api.twilio.com/m0", "content_type": "image/jpeg"},
                             {"kind": "document", "url": "https://api.twilio.com/m1", "content_type": "application/pdf"}]


@pytest.mark.parametrize(("twilio_status", "ours"), [
    ("queued", "queued"), ("accepted", "queued"), ("sending", "queued"), ("sent", "sent"),
    ("delivered", "delivered"), ("read", "read"), ("undelivered", "undelivered"), ("failed", "failed"),
    ("canceled", "failed"),
])
def test_parse_status_normalises(adapter: TwilioAdapter, twilio_status: str, ours: str) -> None:
    """Twilio's statuses fold onto STATUS_ORDER's keys."""
    form = {"MessageSid": "SM9", "MessageStatus": twilio_status, "ErrorCode": "30007"}
    [update] = adapter.parse_status(WebhookRequest("POST", WEBHOOK_URL, {}, urlencode(form).encode()))
    assert (update.status, update.provider_message_id, update.error_code) == (ours, "SM9", "30007")


def test_webhook_reply_is_empty_twiml(adapter: TwilioAdapter) -> None:
    body, status, headers = adapter.webhook_reply("inbound")
    assert status == 200 and headers["Content-Type"] == "text/xml"
    assert body.endswith("<Response/>")


@pytest.mark.slow
def test_fake_runs_as_its_own_process() -> None:
    """`python -m tests.fakes.twilio` serves another process: sends counted and modes switched over HTTP."""
    import os
    import subprocess
    import sys

    import requests

    from tests.helpers import ROOT as root
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.twilio", "--port", "0"], cwd=root, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        config = ProviderConfig(id=1, type="twilio", sender=SENDER, base_url=url,
                                credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN})
        with get_adapter(config, timeout=2, backoff=0.01) as adapter, requests.Session() as control:
            assert adapter.send(msg(ref=1, body="uno")).ok
            assert control.post(f"{url}/_fake/mode", json={"mode": "500", "n": 1}, timeout=5).ok
            assert adapter.send(msg(ref=2, body="dos")).attempts == 2
            sent = control.get(f"{url}/_fake/sent", timeout=5).json()
            assert [m["body"] for m in sent] == ["uno", "dos"]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
