"""Every adapter's webhook parsers on arbitrary shapes: they never raise, return only items the store
can take, and a good item keeps its place however broken its siblings are.

JSON gateways (WhatsApp Cloud, Dinstar, the HTTP aggregator) get arbitrary JSON, and real payloads
with any part replaced by arbitrary JSON or left out; form gateways (Twilio, the sandbox) get
arbitrary forms, as parsed fields and as raw bodies.
"""
from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp.models import AttachmentKind, Interaction, Message, SpoolMessage
from webapp.providers import get_adapter
from webapp.providers.base import (
    InboundMessage,
    ProviderAdapter,
    ProviderConfig,
    StatusUpdate,
    WebhookRequest,
)
from webapp.providers.payload import MAX_REF
from webapp.webhooks.routes import _plain
from workers.inbound import _inbound

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Nested payloads with broken siblings at every level cost more to draw.
NESTED = settings(PROPERTY, max_examples=100)

CONFIGS = {
    "whatsapp_cloud": ProviderConfig(id=1, type="whatsapp_cloud", channel="whatsapp", sender="+59829001000",
                                     credentials={"app_secret": "s"}, options={"phone_number_id": "1"}),
    "dinstar": ProviderConfig(id=2, type="dinstar", sender="+59829001000", base_url="http://127.0.0.1:9",
                              options={"country_code": "598", "port_numbers": {"1": "+59829001001"}}),
    "http": ProviderConfig(id=3, type="http", sender="+59829001000", base_url="http://127.0.0.1:9"),
    "quality": ProviderConfig(id=4, type="quality", sender="+59829001000", base_url="http://127.0.0.1:9"),
    "twilio": ProviderConfig(id=5, type="twilio", sender="+59829001000",
                             credentials={"account_sid": "AC" + "1" * 32, "auth_token": "t"}),
    "sandbox": ProviderConfig(id=6, type="sandbox", channel="whatsapp", sender="+59829001000"),
}
JSON_TYPES = ("whatsapp_cloud", "dinstar", "http", "quality")
FORM_TYPES = ("twilio", "sandbox")

# -- strategies ----------------------------------------------------------------------------------
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
           | st.sampled_from(["", "0", "-1", "1.5", "x", "\x00", "\ud800", "1" * 90, "2025-03-04 10:00:00"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def fields(template: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The template's keys, each one left out or shaped (below)."""
    return st.fixed_dictionaries({}, optional={k: shaped(v) for k, v in template.items()})


def shaped(template: Any) -> st.SearchStrategy[Any]:
    """The template, with any part of it (at any depth) replaced by arbitrary JSON, or left out."""
    if isinstance(template, dict):
        return fields(template) | json_values
    if isinstance(template, list):
        return st.lists(st.one_of(*(shaped(t) for t in template), json_values), max_size=4) | json_values
    return st.just(template) | json_values


def beside(good: Any, noise: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """A list holding `good` somewhere among arbitrary siblings."""
    return st.tuples(st.lists(noise, max_size=3), st.lists(noise, max_size=3)).map(lambda t: [*t[0], good, *t[1]])


WA_MESSAGE = {"from": "59899123456", "id": "wamid.GOOD", "timestamp": "1741096800", "type": "text",
              "text": {"body": "Hola"}}
WA_STATUS = {"id": "wamid.OUT", "status": "delivered", "recipient_id": "59899123456",
             "errors": [{"code": 131047, "title": "Re-engagement message"}]}
WA_VALUE = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "59829001000"},
            "contacts": [{"profile": {"name": "Lucía"}, "wa_id": "59899123456"}],
            "messages": [WA_MESSAGE, {**WA_MESSAGE, "type": "image", "image": {"id": "M1", "mime_type": "image/jpeg"}},
                         {**WA_MESSAGE, "type": "location", "location": {"latitude": -34.9, "longitude": -56.2}},
                         {**WA_MESSAGE, "type": "audio", "audio": {"id": "M2", "mime_type": "audio/ogg; codecs=opus",
                                                                   "voice": True}},
                         {**WA_MESSAGE, "type": "document", "document": {"id": "M3", "filename": "f.pdf"}},
                         {**WA_MESSAGE, "type": "contacts", "contacts": [{"name": {"formatted_name": "Ana"},
                                                                          "phones": [{"phone": "+59899"}]}]},
                         {**WA_MESSAGE, "type": "interactive", "interactive": {"button_reply": {"title": "Sí"}}}],
            "statuses": [WA_STATUS]}
WA_ENVELOPE = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
                                                                                          "value": WA_VALUE}]}]}
DINSTAR_SMS = {"incoming_sms_id": 7, "port": 1, "number": "099123456", "timestamp": "2025-03-04 10:00:00",
               "text": "Hola"}
DINSTAR_RESULT = {"port": 1, "user_id": 1_000_000_017, "number": "099123456", "status": "DELIVERED", "ref_id": 3}
DINSTAR_REPORT = {"port": 1, "number": "099123456", "time": "2025-03-04 10:00:05", "ref_id": 3, "status_code": 0}
DINSTAR_PUSH = {"sn": "DG-1", "sms": [DINSTAR_SMS], "sms_result": [DINSTAR_RESULT],
                "sms_deliver_status": [DINSTAR_REPORT]}
TWILIO_FIELDS = ["MessageSid", "SmsMessageSid", "AccountSid", "From", "To", "Body", "NumMedia", "MediaUrl0",
                 "MediaContentType0", "MediaUrl9", "ProfileName", "WaId", "MessageStatus", "SmsStatus", "ErrorCode",
                 "ErrorMessage", "token"]
form_values = st.text(max_size=20) | st.sampled_from(["", "abc", "-1", "99999999999", "whatsapp:", "whatsapp:+598",
                                                      "1" * 90, "delivered", "\x00"])
forms = st.dictionaries(st.sampled_from(TWILIO_FIELDS) | st.text(max_size=10), form_values, max_size=10)
json_bodies = (json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=40)
               | shaped(WA_ENVELOPE).map(lambda v: json.dumps(v).encode())
               | shaped(DINSTAR_PUSH).map(lambda v: json.dumps(v).encode()))


# -- what every parsed item must be --------------------------------------------------------------
def length(column: Any) -> int:
    return column.property.columns[0].type.length


def storable(value: Any) -> bool:
    """Text every database takes: no NUL, no lone surrogate."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_json(value: Any) -> bool:
    """A JSON value (the media items, stored in a JSON column) whose every text is storable."""
    if isinstance(value, str):
        return storable(value)
    if value is None or isinstance(value, bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(storable_json(v) for v in value)
    if isinstance(value, dict):
        return all(storable(k) and storable_json(v) for k, v in value.items())
    return False


def check_inbound(item: Any) -> None:
    assert isinstance(item, InboundMessage)
    assert storable(item.provider_message_id) and item.provider_message_id.strip()
    assert len(item.provider_message_id) <= length(Message.provider_message_id)
    assert storable(item.from_number) and item.from_number.strip()
    assert len(item.from_number) <= length(Interaction.customer_number)
    assert storable(item.to) and storable(item.body) and item.channel in ("sms", "whatsapp")
    assert item.profile_name is None or (storable(item.profile_name)
                                         and len(item.profile_name) <= length(Interaction.customer_name))
    assert isinstance(item.media, list)
    assert all(isinstance(m, dict) and m.get("kind") in AttachmentKind.ALL and storable_json(m) for m in item.media)
    assert item.received_at is None or isinstance(item.received_at, datetime)
    assert item.port is None or (isinstance(item.port, int) and not isinstance(item.port, bool))
    assert _inbound(json.loads(json.dumps(_plain(item)))) == item  # what the queue carries comes back the same


def check_status(item: Any) -> None:
    assert isinstance(item, StatusUpdate)
    assert item.status in ("queued", "sent", "delivered", "read", "failed", "undelivered")
    assert item.provider_message_id is None or (storable(item.provider_message_id) and len(
        item.provider_message_id) <= min(length(Message.provider_message_id), length(SpoolMessage.provider_message_id)))
    assert item.ref is None or (type(item.ref) is int and 0 <= item.ref <= MAX_REF)
    assert item.error_code is None or storable(item.error_code)
    assert item.error_message is None or storable(item.error_message)
    assert StatusUpdate(**json.loads(json.dumps(_plain(item)))) == item


def parse(adapter: ProviderAdapter, request: WebhookRequest) -> tuple[list[InboundMessage], list[StatusUpdate]]:
    inbound, statuses = adapter.parse_inbound(request), adapter.parse_status(request)
    assert isinstance(inbound, list) and isinstance(statuses, list)
    for item in inbound:
        check_inbound(item)
    for item in statuses:
        check_status(item)
    return inbound, statuses


def json_request(body: bytes) -> WebhookRequest:
    return WebhookRequest("POST", "https://conversa.example/webhooks/1/inbound?token=t",
                          {"Content-Type": "application/json"}, body, args={"token": "t"})


# -- never raise, only storable items ------------------------------------------------------------
@pytest.mark.parametrize("kind", JSON_TYPES)
@PROPERTY
@given(body=json_bodies)
def test_json_parsers_never_raise_and_return_only_storable_items(kind: str, body: bytes) -> None:
    parse(get_adapter(CONFIGS[kind]), json_request(body))


@pytest.mark.parametrize("kind", FORM_TYPES)
@PROPERTY
@given(form=forms)
def test_form_parsers_never_raise_and_return_only_storable_items(kind: str, form: dict[str, str]) -> None:
    adapter = get_adapter(CONFIGS[kind])
    url = "https://conversa.example/webhooks/5/inbound"
    as_fields = parse(adapter, WebhookRequest("POST", url, {}, b"", form=form))
    raw = parse(adapter, WebhookRequest("POST", url, {"Content-Type": "application/x-www-form-urlencoded"},
                                        urlencode(form).encode()))
    assert [m.provider_message_id for m in as_fields[0]] == [m.provider_message_id for m in raw[0]]
    assert as_fields[1] == raw[1]


@pytest.mark.parametrize("kind", FORM_TYPES)
@PROPERTY
@given(body=st.binary(max_size=60))
def test_form_parsers_take_any_raw_body(kind: str, body: bytes) -> None:
    parse(get_adapter(CONFIGS[kind]), WebhookRequest("POST", "https://conversa.example/w", {}, body))


# -- a good item among broken siblings ---------------------------------------------------------------
noise = json_values | shaped(WA_MESSAGE) | shaped(WA_VALUE) | shaped(DINSTAR_SMS) | shaped(DINSTAR_RESULT)


@NESTED
@given(data=st.data())
def test_whatsapp_keeps_the_good_message_and_status_among_broken_siblings(data: st.DataObject) -> None:
    value = {**data.draw(fields(WA_VALUE)),
             "messages": data.draw(beside(WA_MESSAGE, noise)), "statuses": data.draw(beside(WA_STATUS, noise))}
    change = {**data.draw(fields({"field": "messages"})), "value": value}
    entry = {"id": "1", "changes": data.draw(beside(change, noise))}
    body = {**data.draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)),
            "entry": data.draw(beside(entry, noise))}
    inbound, statuses = parse(get_adapter(CONFIGS["whatsapp_cloud"]), json_request(json.dumps(body).encode()))
    assert ("wamid.GOOD", "+59899123456", "Hola") in {(m.provider_message_id, m.from_number, m.body)
                                                       for m in inbound}
    assert ("wamid.OUT", "delivered", "131047") in {(s.provider_message_id, s.status, s.error_code)
                                                     for s in statuses}


@NESTED
@given(data=st.data())
def test_dinstar_keeps_the_good_sms_result_and_report_among_broken_siblings(data: st.DataObject) -> None:
    body = {**data.draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)), "sn": "DG-1",
            "sms": data.draw(beside(DINSTAR_SMS, noise)), "sms_result": data.draw(beside(DINSTAR_RESULT, noise)),
            "sms_deliver_status": data.draw(beside(DINSTAR_REPORT, noise))}
    inbound, statuses = parse(get_adapter(CONFIGS["dinstar"]), json_request(json.dumps(body).encode()))
    assert ("DG-1-7", "+59899123456", "+59829001001", "Hola", 1) in {
        (m.provider_message_id, m.from_number, m.to, m.body, m.port) for m in inbound}
    assert ("delivered", "1:3", 1_000_000_017) in {(s.status, s.provider_message_id, s.ref) for s in statuses}
    assert ("delivered", "1:3", None) in {(s.status, s.provider_message_id, s.ref) for s in statuses}


@PROPERTY
@given(form=forms)
def test_twilio_keeps_a_good_message_whatever_the_other_fields(form: dict[str, str]) -> None:
    good = {**form, "MessageSid": "SM" + "a" * 32, "From": "whatsapp:+59899123456", "To": "whatsapp:+59829001000",
            "Body": "Hola", "MessageStatus": "delivered"}
    adapter = get_adapter(CONFIGS["twilio"])
    inbound, statuses = parse(adapter, WebhookRequest("POST", "https://conversa.example/w", {}, b"", form=good))
    assert [(m.provider_message_id, m.from_number, m.body, m.channel) for m in inbound] == [
        ("SM" + "a" * 32, "+59899123456", "Hola", "whatsapp")]
    assert [(s.provider_message_id, s.status) for s in statuses] == [("SM" + "a" * 32, "delivered")]
