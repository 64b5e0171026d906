"""A fake of Meta's WhatsApp Business Cloud API (Graph `/{version}/{phone_number_id}/messages`).

Bearer auth (190 when wrong), text and template sends, Meta's error
envelope for numbers outside the 24 h window (131047) and undeliverable
ones (131026), 130429 when rate limited, 131056 (pair rate limit) for numbers in
`pair_limited`, and signed webhook posts back to
the app (X-Hub-Signature-256), plus the GET verification handshake helper.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from typing import Any

import requests

from .server import FakeServer, Recorded, Reply, run_standalone

ACCESS_TOKEN = "EAAG-fake-access-token"
APP_SECRET = "fake-app-secret"
VERIFY_TOKEN = "fake-verify-token"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "59829000000"


def meta_error(code: int, message: str, status: int = 400, kind: str = "OAuthException") -> Reply:
    return Reply.json({"error": {"message": message, "type": kind, "code": code,
                                 "error_data": {"messaging_product": "whatsapp", "details": message},
                                 "fbtrace_id": "AbCdEfGh"}}, status)


def sign(body: bytes, app_secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(value: dict[str, Any]) -> dict[str, Any]:
    """Meta's webhook wrapper around one `value`."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID}, **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "WABA_ID", "changes": [{"value": value, "field": "messages"}]}]}


def inbound_payload(wa_id: str, text: str, name: str = "Cliente", message_id: str | None = None) -> dict[str, Any]:
    return envelope({
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": message_id or f"wamid.IN{int(time.time() * 1000)}",
                      "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}],
    })


def status_payload(message_id: str, status: str, recipient: str, error_code: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": message_id, "status": status, "timestamp": str(int(time.time())),
                            "recipient_id": recipient}
    if error_code is not None:
        item["errors"] = [{"code": error_code, "title": "Message failed to send"}]
    return envelope({"statuses": [item]})


class FakeWhatsAppCloud(FakeServer):
    name = "whatsapp_cloud"

    def __init__(self, *args: Any, access_token: str = ACCESS_TOKEN, app_secret: str = APP_SECRET, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.access_token = access_token
        self.app_secret = app_secret
        self.outside_window: set[str] = set()  # free text to these fails 131047
        self.undeliverable: set[str] = set()  # 131026
        self.pair_limited: set[str] = set()  # 131056: too many messages to this number just now
        self.messages: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self.route("POST", r"/v(?P<version>[\d.]+)/(?P<phone>\d+)/messages")(self._send)

    def sent(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self.messages]

    def sent_count(self) -> int:
        return len(self.messages)

    def sends_for(self, to: str) -> list[dict[str, Any]]:
        return [m for m in self.sent() if m["to"] == to.lstrip("+")]

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.messages.clear()
            self.pair_limited.clear()

    def post_webhook(self, url: str, payload: dict[str, Any], app_secret: str | None = None) -> int:
        """POST a signed webhook to the app; returns the HTTP status it answered."""
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, app_secret or self.app_secret)}
        with requests.Session() as session:
            return session.post(url, data=body, headers=headers, timeout=10).status_code

    def _send(self, req: Recorded, m: re.Match[str]) -> Reply:
        if req.header("Authorization") != f"Bearer {self.access_token}":
            return meta_error(190, "Error validating access token: Session has expired.", 401)
        data = req.json
        if not isinstance(data, dict) or data.get("messaging_product") != "whatsapp" or not data.get("to"):
            return meta_error(100, "Invalid parameter", 400)
        to = str(data["to"])
        if to in self.undeliverable:
            return meta_error(131026, "Message Undeliverable", 400)
        if to in self.pair_limited:
            return meta_error(131056, "(Business Account, Consumer Account) pair rate limit hit", 400)
        if data.get("type") == "text" and to in self.outside_window:
            return meta_error(131047, "Re-engagement message", 400)
        if data.get("type") not in ("text", "template"):
            return meta_error(100, "Invalid parameter", 400)
        message_id = f"wamid.HBgL{next(self._ids):010d}FAKE"
        with self.lock:
            self.messages.append({"id": message_id, "to": to, "type": data["type"], "phone_number_id": m["phone"],
                                  "version": m["version"], "payload": data})
        return Reply.json({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                           "messages": [{"id": message_id}]})

    def failure_reply(self, mode: str) -> Reply:
        if mode == "429":
            reply = meta_error(130429, "Rate limit hit", 429)
            reply.headers["Retry-After"] = self.retry_after
            return reply
        return meta_error(131000, "Something went wrong", 500)


def main() -> None:
    run_standalone(lambda a: FakeWhatsAppCloud(access_token=a.access_token, app_secret=a.app_secret),
                   "Fake WhatsApp Cloud API",
                   lambda p: (p.add_argument("--access-token", default=ACCESS_TOKEN),
                              p.add_argument("--app-secret", default=APP_SECRET)))


if __name__ == "__main__":
    main()
