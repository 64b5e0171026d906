"""Meta's WhatsApp Business Cloud API: text and template sends, signed webhooks."""
from __future__ import annotations

import hashlib
import hmac
import math
from datetime import UTC, datetime
from typing import Any

import requests

from . import payload
from .base import (
    InboundMessage,
    OutboundMessage,
    Outcome,
    SendResult,
    StatusUpdate,
    WebhookRequest,
)
from .http import HttpAdapter, rate_limited

DEFAULT_API_VERSION = "21.0"
# Too many requests: not processed, sent again later without spending an attempt. 130429 throughput,
# 131048 spam rate limit, 4 / 80007 app and account call limits pace the whole number; 131056 is the
# pair rate limit (one business number to one customer, about one message every 6 s).
RATE_LIMIT_CODES = frozenset({130429, 131048, 131056, 4, 80007})
PAIR_RATE_LIMIT_CODES = {131056: 6.0}  # code -> seconds to wait when no Retry-After says
TEMPORARY_CODES = frozenset({131000, 131016, 1, 2})
OUTSIDE_WINDOW = 131047  # free text more than 24 h after the customer's last message: needs a template
STATUS_MAP = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}


class WhatsAppCloudAdapter(HttpAdapter):
    type = "whatsapp_cloud"
    signs_webhooks = True
    default_base_url = "https://graph.facebook.com"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.credentials.get('access_token', '')}"}

    @property
    def messages_url(self) -> str:
        version = str(self.config.options.get("api_version") or DEFAULT_API_VERSION).lstrip("vV")
        phone_id = self.config.options.get("phone_number_id") or self.config.sender
        return f"{self.base_url}/v{version}/{phone_id}/messages"

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        data: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                                "to": message.to.lstrip("+")}
        template = message.template
        if template and template.get("name"):
            language = template.get("language") or "es"
            body: dict[str, Any] = {"name": template["name"],
                                    "language": language if isinstance(language, dict) else {"code": language}}
            if template.get("components"):
                body["components"] = template["components"]
            elif template.get("variables"):
                variables = template["variables"]
                values = list(variables.values()) if isinstance(variables, dict) else list(variables)
                body["components"] = [{"type": "body", "parameters": [{"type": "text", "text": str(v)}
                                                                      for v in values]}]
            data.update(type="template", template=body)
        else:
            data.update(type="text", text={"preview_url": False, "body": message.body})
        return data

    def send(self, message: OutboundMessage) -> SendResult:
        # Meta has no way to list sent messages: an ambiguous send stays ambiguous.
        return self.http.send("POST", self.messages_url, classify, json=self.payload(message))

    # -- webhooks ------------------------------------------------------------
    def verify_signature(self, request: WebhookRequest) -> bool:
        """X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>, compared in constant time."""
        secret = self.config.credentials.get("app_secret", "")
        header = request.header("X-Hub-Signature-256") or ""
        if not secret or not header.startswith("sha256="):
            return False
        expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), header[7:].strip().lower().encode())

    def verify_subscription(self, args: dict[str, str]) -> tuple[str, int]:
        """The GET handshake Meta makes when the webhook is configured: echo hub.challenge if the token matches."""
        token = self.config.credentials.get("verify_token", "")
        given = args.get("hub.verify_token", "")
        if args.get("hub.mode") == "subscribe" and token and hmac.compare_digest(given.encode(), token.encode()):
            return args.get("hub.challenge", ""), 200
        return "Forbidden", 403

    @property
    def _where(self) -> str:
        return f"whatsapp_cloud provider {self.config.id} webhook"

    def _values(self, request: WebhookRequest) -> list[dict[str, Any]]:
        """Every entry[].changes[].value object; entries and changes that cannot be read are skipped."""
        where = self._where
        entries = payload.each(payload.as_list(payload.json_object(request.body, where).get("entry"),
                                               f"{where}: entry"), payload.an_object, f"{where}: entry")
        return [value for i, entry in enumerate(entries)
                for value in payload.each(payload.as_list(entry.get("changes"), f"{where}: entry[{i}].changes"),
                                          _change_value, f"{where}: entry[{i}].changes")]

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        found: list[InboundMessage] = []
        for value in self._values(request):
            names: dict[str, str] = {}
            for contact in payload.as_list(value.get("contacts"), f"{self._where}: contacts"):
                contact = payload.as_dict(contact)
                wa_id, name = payload.text(contact.get("wa_id")), payload.text(payload.as_dict(
                    contact.get("profile")).get("name"))
                if wa_id and name:
                    names[wa_id] = name[:payload.MAX_NAME]
            to = payload.text(payload.as_dict(value.get("metadata")).get("display_phone_number")) \
                or self.config.sender
            found += payload.each(payload.as_list(value.get("messages"), f"{self._where}: messages"),
                                  lambda msg, to=to, names=names: self._message(msg, to, names),
                                  f"{self._where}: messages")
        return found

    def _message(self, msg: Any, to: str, names: dict[str, str]) -> InboundMessage:
        msg = payload.an_object(msg)
        sender = payload.required(msg.get("from"), "from", payload.MAX_NUMBER - 1)
        body, media = _content(msg)
        return InboundMessage(
            provider_message_id=payload.required(msg.get("id"), "id", payload.MAX_ID), from_number=_plus(sender),
            to=_plus(to), body=body, channel="whatsapp", profile_name=names.get(sender), media=media,
            received_at=_when(msg.get("timestamp")))

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        updates: list[StatusUpdate] = []
        for value in self._values(request):
            updates += payload.each(payload.as_list(value.get("statuses"), f"{self._where}: statuses"),
                                    self._status, f"{self._where}: statuses")
        return updates

    @staticmethod
    def _status(item: Any) -> StatusUpdate | None:
        item = payload.an_object(item)
        status = STATUS_MAP.get(payload.text(item.get("status")) or "")
        if status is None:
            return None  # a status we do not track (e.g. "deleted")
        errors = item.get("errors")
        error = payload.as_dict(errors[0] if isinstance(errors, list) and errors else None)
        return StatusUpdate(status=status, provider_message_id=payload.required(item.get("id"), "id", payload.MAX_ID),
                            error_code=payload.text(error.get("code")) or None,
                            error_message=payload.text(error.get("title")) or payload.text(error.get("message")))


def _change_value(change: Any) -> dict[str, Any]:
    value = payload.an_object(change).get("value")
    if not isinstance(value, dict):
        raise payload.Unreadable("value is not an object")
    return value


def _plus(number: str) -> str:
    return number if not number or number.startswith("+") else "+" + number


# Meta's timestamps are Unix seconds; outside these years one is no timestamp at all.
_EARLIEST, _LATEST = 946684800, 4102444800  # 2000-01-01, 2100-01-01


def _when(timestamp: Any) -> datetime | None:
    try:
        seconds = payload.integer(timestamp, "timestamp", _EARLIEST, _LATEST)
    except payload.Unreadable:
        return None
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _content(msg: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    """Text and media of one inbound message, whatever its type; parts that cannot be read are left out."""
    kind = payload.text(msg.get("type"))
    part = payload.as_dict(msg.get(kind)) if kind else {}
    if kind in ("text", "button"):
        return payload.text(part.get("body" if kind == "text" else "text")) or "", []
    if kind == "interactive":
        chosen = payload.as_dict(part.get("button_reply")) or payload.as_dict(part.get("list_reply"))
        return payload.text(chosen.get("title")) or "", []
    if kind in ("image", "audio", "video", "document", "sticker"):
        media = {"id": payload.text(part.get("id")) or "", "content_type": payload.text(part.get("mime_type")) or ""}
        return payload.text(part.get("caption")) or "", [media] if media["id"] else []
    if kind == "location":
        lat, lon = part.get("latitude"), part.get("longitude")
        if all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (lat, lon)):
            return f"{lat},{lon}", []
    return "", []


def classify(response: requests.Response) -> SendResult:
    if 200 <= response.status_code < 300:
        data = response.json()
        return SendResult(Outcome.SENT, provider_message_id=str(data["messages"][0]["id"]),
                          status=data["messages"][0].get("message_status", "accepted"))
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    code = error.get("code")
    message = error.get("message") or response.text[:200]
    code_str = str(code) if code is not None else str(response.status_code)
    if response.status_code == 429 or code in RATE_LIMIT_CODES:
        return rate_limited(response, code_str, message, PAIR_RATE_LIMIT_CODES.get(code))
    if code in TEMPORARY_CODES or response.status_code >= 500:
        return SendResult(Outcome.TEMPORARY, error_code=code_str, error_message=message)
    return SendResult(Outcome.PERMANENT, error_code=code_str, error_message=message)
