"""Meta's WhatsApp Business Cloud API: text and template sends, signed webhooks."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import requests

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

    @staticmethod
    def _values(request: WebhookRequest) -> list[dict[str, Any]]:
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return []
        if not isinstance(data, dict):
            return []
        return [change.get("value") or {} for entry in data.get("entry") or []
                for change in entry.get("changes") or []]

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        found = []
        for value in self._values(request):
            names = {c.get("wa_id"): (c.get("profile") or {}).get("name") for c in value.get("contacts") or []}
            to = (value.get("metadata") or {}).get("display_phone_number") or self.config.sender
            for msg in value.get("messages") or []:
                body, media = _content(msg)
                sender = str(msg.get("from", ""))
                found.append(InboundMessage(
                    provider_message_id=str(msg.get("id", "")), from_number=_plus(sender), to=_plus(str(to)),
                    body=body, channel="whatsapp", profile_name=names.get(sender), media=media,
                    received_at=_when(msg.get("timestamp"))))
        return found

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        updates = []
        for value in self._values(request):
            for item in value.get("statuses") or []:
                status = STATUS_MAP.get(str(item.get("status", "")))
                if status is None:
                    continue
                error = (item.get("errors") or [{}])[0]
                updates.append(StatusUpdate(status=status, provider_message_id=str(item.get("id", "")),
                                            error_code=str(error["code"]) if error.get("code") else None,
                                            error_message=error.get("title") or error.get("message")))
        return updates


def _plus(number: str) -> str:
    return number if not number or number.startswith("+") else "+" + number


def _when(timestamp: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(timestamp), UTC)
    except (TypeError, ValueError):
        return None


def _content(msg: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    """Text and media of one inbound message, whatever its type."""
    kind = msg.get("type")
    if kind == "text":
        return str((msg.get("text") or {}).get("body", "")), []
    if kind == "button":
        return str((msg.get("button") or {}).get("text", "")), []
    if kind == "interactive":
        reply = (msg.get("interactive") or {})
        chosen = reply.get("button_reply") or reply.get("list_reply") or {}
        return str(chosen.get("title", "")), []
    if kind in ("image", "audio", "video", "document", "sticker"):
        item = msg.get(kind) or {}
        return str(item.get("caption", "")), [{"id": str(item.get("id", "")),
                                               "content_type": str(item.get("mime_type", ""))}]
    if kind == "location":
        loc = msg.get("location") or {}
        return f"{loc.get('latitude')},{loc.get('longitude')}", []
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
