"""The configurable HTTP provider and its Quality preset against the aggregator fake."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from tests.fakes.generic_http import PASSWORD, TOKEN, USERNAME, FakeAggregator
from webapp.providers import ADAPTERS, TYPES, get_adapter
from webapp.providers.base import LookupOutcome, OutboundMessage, Outcome, ProviderConfig, WebhookRequest
from webapp.providers.generic_http import GenericHttpAdapter, QualityAdapter, json_path, render

TO = "+59898344384"


@pytest.fixture
def fake() -> Iterator[FakeAggregator]:
    with FakeAggregator(timeout_seconds=1.0) as server:
        yield server


@pytest.fixture
def make_adapter(fake: FakeAggregator) -> Iterator[Callable[..., GenericHttpAdapter]]:
    made: list[GenericHttpAdapter] = []

    def make(type_: str = "http", options: dict | None = None, base_url: str | None = None,
             credentials: dict | None = None, **kw: object) -> GenericHttpAdapter:
        config = ProviderConfig(id=3, type=type_, sender="CONVERSA", base_url=base_url or f"{fake.url}/send",
                                credentials=credentials or {"username": USERNAME, "password": PASSWORD,
                                                            "token": TOKEN},
                                options=options or {})
        kw.setdefault("timeout", 0.3)
        kw.setdefault("backoff", 0.01)
        adapter = get_adapter(config, sleep=lambda s: None, **kw)
        assert isinstance(adapter, GenericHttpAdapter)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def msg(ref: int = 1, to: str = TO, body: str = "Tu código es 1234 & gracias") -> OutboundMessage:
    return OutboundMessage(ref=ref, to=to, body=body)


def test_quality_preset_posts_form_and_reads_ok(fake: FakeAggregator, make_adapter) -> None:
    """The preset: form POST of user/password/to/text/from; "OK <id>" is success and gives the id."""
    adapter = make_adapter("quality")
    assert isinstance(adapter, QualityAdapter)
    result = adapter.send(msg())
    assert (result.outcome, result.provider_message_id) == (Outcome.SENT, fake.sent()[0]["id"])
    [req] = fake.api_requests()
    assert req.method == "POST"
    assert req.form == {"user": USERNAME, "password": PASSWORD, "to": TO, "text": "Tu código es 1234 & gracias",
                        "from": "CONVERSA"}


def test_quality_refusal_is_permanent(fake: FakeAggregator, make_adapter) -> None:
    """HTTP 200 "ERROR invalid number": the success text is missing, so it is refused, not retried."""
    result = make_adapter("quality").send(msg(to="+15005550001"))
    assert (result.outcome, result.attempts) == (Outcome.PERMANENT, 1)
    assert "invalid number" in (result.error_message or "")


def test_get_with_url_template_and_header_auth(make_adapter) -> None:
    """GET, placeholders in the URL (percent-encoded) and in params, Bearer header, JSON success + id."""
    with FakeAggregator(auth="header", answer="json") as agg:
        adapter = make_adapter(base_url=agg.url, options={
            "method": "GET", "url": f"{agg.url}/send?ref={{id}}", "auth": "header",
            "params": {"to": "{to_national}", "text": "{text}", "from": "{from}"}, "country_code": "598",
            "success_json_field": "status", "success_json_value": "ok", "message_id_json": "data.id"})
        result = adapter.send(msg(ref=77))
        assert (result.outcome, result.provider_message_id) == (Outcome.SENT, agg.sent()[0]["id"])
        [req] = agg.api_requests()
        assert req.method == "GET"
        assert req.query == {"ref": "77", "to": "098344384", "text": "Tu código es 1234 & gracias",
                             "from": "CONVERSA"}
        assert req.header("Authorization") == f"Bearer {TOKEN}"


def test_post_json_with_basic_auth(make_adapter) -> None:
    with FakeAggregator(auth="basic", answer="json") as agg:
        adapter = make_adapter(base_url=f"{agg.url}/send", options={
            "body_format": "json", "auth": "basic", "params": {"to": "{to_digits}", "text": "{text}", "id": "{id}"},
            "success_json_field": "status", "success_json_value": "ok", "message_id_json": "data.id"})
        assert adapter.send(msg(ref=5)).ok
        [req] = agg.api_requests()
        assert req.json == {"to": "59898344384", "text": "Tu código es 1234 & gracias", "id": "5"}
        assert agg.sent()[0]["ref"] == "5"


def test_wrong_credentials_are_permanent(fake: FakeAggregator, make_adapter) -> None:
    result = make_adapter("quality", credentials={"username": USERNAME, "password": "x"}).send(msg())
    assert (result.outcome, result.error_code, result.attempts) == (Outcome.PERMANENT, "401", 1)


def test_unknown_placeholder_is_a_config_error(fake: FakeAggregator, make_adapter) -> None:
    result = make_adapter(options={"params": {"to": "{telefono}"}}).send(msg())
    assert (result.outcome, result.error_code) == (Outcome.PERMANENT, "config")
    assert fake.api_requests() == []


def test_500_is_retried(fake: FakeAggregator, make_adapter) -> None:
    fake.fail_next(2, "500")
    result = make_adapter("quality").send(msg())
    assert result.ok and result.attempts == 3 and fake.sent_count() == 1


def test_429_with_retry_after(fake: FakeAggregator, make_adapter) -> None:
    """429 honoured: the injected sleep is asked for exactly Retry-After seconds."""
    waits: list[float] = []
    fake.retry_after = "2"
    fake.fail_next(1, "429")
    config = ProviderConfig(id=3, type="quality", sender="C", base_url=f"{fake.url}/send",
                            credentials={"username": USERNAME, "password": PASSWORD})
    with get_adapter(config, sleep=waits.append, timeout=1) as adapter:
        assert adapter.send(msg()).ok
    assert waits == [2.0]


def test_429_waits_at_least_the_backoff(fake: FakeAggregator) -> None:
    """Retry-After: 1 with a backoff of 3 s: the wait is the backoff (Retry-After is its floor, not its
    replacement)."""
    waits: list[float] = []
    fake.fail_next(1, "429")
    config = ProviderConfig(id=3, type="quality", sender="C", base_url=f"{fake.url}/send",
                            credentials={"username": USERNAME, "password": PASSWORD})
    with get_adapter(config, sleep=waits.append, timeout=1, backoff=3.0) as adapter:
        assert adapter.send(msg()).ok
    assert len(waits) == 1 and 3.0 <= waits[0] <= 3.6


def test_timeout_is_ambiguous_without_lookup(fake: FakeAggregator, make_adapter) -> None:
    """An aggregator cannot be asked about past sends: a lost answer is never resent blindly."""
    fake.fail_next(1, "timeout")
    adapter = make_adapter("quality")
    result = adapter.send(msg())
    assert (result.outcome, result.ambiguous, result.attempts) == (Outcome.TEMPORARY, True, 1)
    assert len(fake.api_requests()) == 1
    assert adapter.lookup(msg(), datetime.now(UTC)).outcome is LookupOutcome.UNKNOWN


def test_malformed_json_is_ambiguous(make_adapter) -> None:
    with FakeAggregator(answer="json") as agg:
        agg.fail_next(1, "malformed")
        adapter = make_adapter(base_url=f"{agg.url}/send", options={
            "params": {"user": "{username}", "password": "{password}", "to": "{to}", "text": "{text}"},
            "success_json_field": "status", "success_json_value": "ok"})
        result = adapter.send(msg())
        assert (result.outcome, result.ambiguous, result.error_code) == (Outcome.TEMPORARY, True, "malformed")
        assert agg.sent_count() == 1


def test_close_is_ambiguous(fake: FakeAggregator, make_adapter) -> None:
    fake.fail_next(1, "close")
    result = make_adapter("quality").send(msg())
    assert (result.outcome, result.ambiguous, result.error_code) == (Outcome.TEMPORARY, True, "connection")


def test_render_and_json_path() -> None:
    values = {"to": "+598 9", "text": "a&b"}
    assert render("https://x/send?to={to}&t={text}", values, quote_values=True) == \
        "https://x/send?to=%2B598%209&t=a%26b"
    assert render("{text}!", values) == "a&b!"
    assert json_path({"data": [{"id": 7}]}, "data.0.id") == 7
    assert json_path({"data": []}, "data.0.id") is None


def test_webhook_token(make_adapter) -> None:
    adapter = make_adapter(options={"webhook_token": "tok"})
    assert adapter.verify_signature(WebhookRequest("POST", "https://x", {}, args={"token": "tok"}))
    assert not adapter.verify_signature(WebhookRequest("POST", "https://x", {}, args={"token": "tik"}))


def test_registry_metadata() -> None:
    """Admin forms read credential/option keys and uses_ports from the registry."""
    assert set(ADAPTERS) == {"twilio", "dinstar", "quality", "http", "sandbox", "whatsapp_cloud"}
    assert TYPES["twilio"].required_credentials == ["account_sid", "auth_token"]
    assert TYPES["dinstar"].credential_keys == ["username", "password"]
    assert TYPES["quality"].required_credentials == ["username", "password"]
    assert TYPES["whatsapp_cloud"].credential_keys == ["access_token", "app_secret", "verify_token"]
    assert TYPES["sandbox"].credential_keys == []
    assert {"phone_number_id", "api_version"} <= set(TYPES["whatsapp_cloud"].option_keys)
    assert {"method", "url", "params", "auth", "success_status", "success_contains",
            "success_json_field"} <= set(TYPES["http"].option_keys)
    assert [k for k, t in TYPES.items() if t.uses_ports] == ["dinstar"]
    assert all(ADAPTERS[k].uses_ports == t.uses_ports for k, t in TYPES.items())
    with pytest.raises(ValueError):
        get_adapter(ProviderConfig(id=1, type="carrier-pigeon"))


def test_environment_proxies_are_read_once_and_still_honoured(monkeypatch):
    """The client reads HTTP_PROXY/NO_PROXY once per host (not per request) and still applies them."""
    from webapp.providers.http import HttpClient

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    client = HttpClient(timeout=1)
    try:
        assert client._proxies_for("http://gateway.example/api")["http"] == "http://proxy.invalid:3128"
        assert "http" not in client._proxies_for("http://127.0.0.1:9/api")
        monkeypatch.setenv("HTTP_PROXY", "http://other.invalid:1")
        assert client._proxies_for("http://gateway.example/x")["http"] == "http://proxy.invalid:3128"
        assert client.session.trust_env is False
    finally:
        client.close()


def test_prepared_once_requests_match_what_requests_sends(fake: FakeAggregator) -> None:
    """HttpClient.request copies a per-URL prepared request for form and JSON bodies: what reaches the
    gateway (method, path, every header, body) is what Session.request sends for the same call."""
    import requests

    from webapp.providers.http import USER_AGENT, HttpClient

    calls = [("POST", "/send", {"data": {"To": "+59898344384", "Body": "Hola & adiós ✓", "Empty": ""}}),
             ("POST", "/send", {"data": {"To": "+59898000000", "Body": "segundo"}}),
             ("POST", "/send", {"json": {"to": "+59898344384", "text": {"body": "¿Qué tal?"}}}),
             ("POST", "/send", {"data": "raw=1&b=2"}),
             ("GET", "/send", {}),
             ("GET", "/send", {"params": {"flag": "unread"}})]
    client = HttpClient(timeout=2, auth=("user", "pa:ss"), headers={"X-Api-Key": "k1"})
    reference = requests.Session()
    reference.auth = ("user", "pa:ss")
    reference.headers.update({"User-Agent": USER_AGENT, "X-Api-Key": "k1"})
    try:
        for method, path, kwargs in calls:
            client.request(method, fake.url + path, **kwargs).close()
            reference.request(method, fake.url + path, timeout=2, **kwargs).close()
    finally:
        client.close()
        reference.close()
    recorded = fake.api_requests()
    assert len(recorded) == 2 * len(calls)
    for ours, theirs in zip(recorded[0::2], recorded[1::2], strict=True):
        assert (ours.method, ours.path, ours.query, ours.body) == (theirs.method, theirs.path, theirs.query,
                                                                   theirs.body)
        assert ours.headers == theirs.headers
    assert recorded[0].form == {"To": "+59898344384", "Body": "Hola & adiós ✓", "Empty": ""}
    assert recorded[4].json == {"to": "+59898344384", "text": {"body": "¿Qué tal?"}}


def test_cookies_a_gateway_sets_are_sent_back(fake: FakeAggregator) -> None:
    """A gateway that keeps a session in a cookie gets it back on the next call (the copied request
    would not carry it, so the client takes requests' own path once the jar holds one)."""
    from tests.fakes.server import Reply
    from webapp.providers.http import HttpClient

    fake.route("POST", r"/login")(lambda req, match: Reply(200, b"ok", {"Set-Cookie": "sid=abc123; Path=/"}))
    client = HttpClient(timeout=2)
    try:
        client.request("POST", f"{fake.url}/send", data={"to": TO}).close()  # before the cookie
        client.request("POST", f"{fake.url}/login", data={"u": "x"}).close()
        client.request("POST", f"{fake.url}/send", data={"to": TO}).close()
    finally:
        client.close()
    assert fake.api_requests("/send")[-1].header("Cookie") == "sid=abc123"
