"""A fake of Meta's WhatsApp Business Cloud API (Graph `/{version}/{phone_number_id}/messages`).

Bearer auth (190 when wrong), text and template sends, Meta's error
envelope for numbers outside the 24 h window (131047) and undeliverable
ones (131026), 130429 when rate limited, 131056 (pair rate limit) for numbers in
`pair_limited`, and signed webhook posts back to
the app (X-Hub-Signature-256), plus the GET verification handshake helper.

Media (issue 13), as Meta documents it:
- `GET /{version}/{media-id}` (bearer) → `{"messaging_product": "whatsapp", "url", "mime_type", "sha256",
  "file_size", "id"}`; an id it does not have → 400 `{"error": {"code": 100, ...}}` ("Object with ID …
  does not exist": media ids live 7 days).
- `GET {url}` (the same bearer; without it 401) → the bytes with their Content-Type. The URL lives 5
  minutes (`url_ttl`): afterwards 404. `expire_next_urls = n` hands out n URLs already expired.
  Real URLs are on lookaside.fbsbx.com (`/whatsapp_business/attachments/?mid=…&ext=…&hash=…`); here
  they are on this server, signed with a hash of mid and expiry.
- Webhook message types: image / video / sticker / audio (`voice: true` for a voice note) / document
  (`filename`) carry `{id, mime_type, sha256, caption?}`; location `{latitude, longitude, name?,
  address?}`; contacts `[{name: {formatted_name, …}, phones: [{phone, wa_id?, type}]}]`.

Sending media (issue 13, W1): `POST /{version}/{phone-number-id}/media` (bearer, multipart/form-data with
`file`, `type` (its MIME type) and `messaging_product=whatsapp`) → `{"id": media id}`; Meta's limits per
type are enforced (image 5 MB, audio/video 16 MB, document 100 MB; error 131053 "Media upload error").
A message of type image / audio / video / document / sticker names it `{"id"}` (or `{"link"}`), with
`caption` (not for audio) and `filename` (document). The uploads are kept in `uploads` (id → bytes, type).

Read receipts (W5): `POST /messages {"messaging_product", "status": "read", "message_id"}` → `{"success":
true}`; recorded in `read_marks` (message ids, in order).

Template catalog (issue 13):
- `GET /{version}/{waba-id}/message_templates?fields=…&limit=N&after=CURSOR` (bearer) →
  `{"data": [{id, name, language, category, status, quality_score: {score}, components: [{type: HEADER,
  format, text?} | {type: BODY, text} | {type: FOOTER, text} | {type: BUTTONS, buttons: [{type, text,
  url?, phone_number?}]}], rejected_reason}], "paging": {"cursors": {"before", "after"}, "next"?}}`;
  `next` is an absolute URL, absent on the last page.
- Webhooks on the same URL as messages, `entry[].changes[].field` = `message_template_status_update`
  (value `{event, message_template_id, message_template_name, message_template_language, reason,
  other_info?}`) or `message_template_quality_update` (value `{previous_quality_score,
  new_quality_score, message_template_id, message_template_name, message_template_language}`).
"""
from __future__ import annotations

import email.policy
import hashlib
import hmac
import itertools
import json
import re
import time
from email.parser import BytesParser
from typing import Any
from urllib.parse import urlencode

import requests

from .server import FakeServer, Recorded, Reply, run_standalone

ACCESS_TOKEN = "EAAG-fake-access-token"
APP_SECRET = "fake-app-secret"
VERIFY_TOKEN = "fake-verify-token"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "59829000000"
WABA_ID = "102290129340398"


UPLOAD_LIMITS = {"image": 5 * 1024 * 1024, "audio": 16 * 1024 * 1024, "video": 16 * 1024 * 1024,
                 "document": 100 * 1024 * 1024, "sticker": 500 * 1024}


def multipart_fields(req: Recorded) -> dict[str, tuple[bytes, str, str]]:
    """A multipart/form-data body's parts: name -> (bytes, file name, Content-Type)."""
    ctype = req.header("Content-Type") or ""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + req.body)
    fields: dict[str, tuple[bytes, str, str]] = {}
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_payload(decode=True) or b"", part.get_filename() or "",
                                 part.get_content_type())
    return fields


def meta_error(code: int, message: str, status: int = 400, kind: str = "OAuthException") -> Reply:
    return Reply.json({"error": {"message": message, "type": kind, "code": code,
                                 "error_data": {"messaging_product": "whatsapp", "details": message},
                                 "fbtrace_id": "AbCdEfGh"}}, status)


def sign(body: bytes, app_secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(value: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    """Meta's webhook wrapper around one `value`."""
    if field == "messages":
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID}, **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "time": int(time.time()), "changes": [{"value": value, "field": field}]}]}


_message_ids = itertools.count(1)


def message_payload(wa_id: str, message: dict[str, Any], name: str = "Cliente") -> dict[str, Any]:
    """A customer's message of any type (`message` holds "type" and its part), wrapped as Meta sends it."""
    return envelope({
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": f"wamid.IN{int(time.time() * 1000)}{next(_message_ids):04d}",
                      "timestamp": str(int(time.time())), **message}],
    })


def media_message(kind: str, media_id: str, mime_type: str, *, caption: str | None = None,
                  filename: str | None = None, sha256: str | None = None, **flags: Any) -> dict[str, Any]:
    """The `type` and part of an image / audio / video / document / sticker message."""
    part: dict[str, Any] = {"id": media_id, "mime_type": mime_type, **flags}
    if sha256:
        part["sha256"] = sha256
    if caption is not None:
        part["caption"] = caption
    if filename is not None:
        part["filename"] = filename
    return {"type": kind, kind: part}


def template_status_payload(template_id: str, name: str, language: str, event: str,
                            reason: str = "NONE", description: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"event": event, "message_template_id": int(template_id), "message_template_name": name,
                             "message_template_language": language, "reason": reason}
    if description:
        value["other_info"] = {"title": "FIRST_PAUSE", "description": description}
    return envelope(value, "message_template_status_update")


def template_quality_payload(template_id: str, name: str, language: str, new: str,
                             previous: str = "GREEN") -> dict[str, Any]:
    return envelope({"previous_quality_score": previous, "new_quality_score": new,
                     "message_template_id": int(template_id), "message_template_name": name,
                     "message_template_language": language}, "message_template_quality_update")


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
        self.media: dict[str, tuple[bytes, str]] = {}  # media id -> (bytes, MIME type)
        self.url_ttl = 300.0  # seconds a download URL works
        self.expire_next_urls = 0  # hand out this many URLs already expired
        self.templates: list[dict[str, Any]] = []  # as message_templates lists them
        self.template_page_size = 25  # the most one page holds, whatever limit the request names
        self._media_ids = itertools.count(900000000000001)
        self._template_ids = itertools.count(1689556908129832)
        self.route("POST", r"/v(?P<version>[\d.]+)/(?P<phone>\d+)/messages")(self._send)
        self.route("GET", r"/v(?P<version>[\d.]+)/(?P<media_id>\d+)")(self._media_info)
        self.route("GET", r"/whatsapp_business/attachments/")(self._media_download)
        self.route("GET", r"/v(?P<version>[\d.]+)/(?P<waba>\d+)/message_templates")(self._list_templates)
        self.route("POST", r"/v(?P<version>[\d.]+)/(?P<phone>\d+)/media")(self._upload)
        self.uploads: dict[str, tuple[bytes, str, str]] = {}  # media id -> (bytes, MIME type, file name)
        self.read_marks: list[str] = []

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
            self.media.clear()
            self.templates.clear()
            self.expire_next_urls = 0
            self.uploads.clear()
            self.read_marks.clear()

    # -- media -----------------------------------------------------------------
    def add_media(self, data: bytes, mime_type: str) -> str:
        """Keep a file as if a customer had sent it; returns its media id."""
        media_id = str(next(self._media_ids))
        with self.lock:
            self.media[media_id] = (data, mime_type)
        return media_id

    def _signature(self, media_id: str, expires: str) -> str:
        return hmac.new(self.app_secret.encode(), f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def _media_info(self, req: Recorded, m: re.Match[str]) -> Reply:
        if req.header("Authorization") != f"Bearer {self.access_token}":
            return meta_error(190, "Error validating access token: Session has expired.", 401)
        media_id = m["media_id"]
        with self.lock:
            found = self.media.get(media_id)
            expired = self.expire_next_urls > 0
            if expired:
                self.expire_next_urls -= 1
        if found is None:
            return meta_error(100, f"Unsupported get request. Object with ID '{media_id}' does not exist, cannot "
                              "be loaded due to missing permissions, or does not support this operation.", 400,
                              "GraphMethodException")
        data, mime_type = found
        expires = str(int(time.time() - 1 if expired else time.time() + self.url_ttl))
        query = urlencode({"mid": media_id, "ext": expires, "hash": self._signature(media_id, expires)})
        return Reply.json({"messaging_product": "whatsapp", "url": f"{self.url}/whatsapp_business/attachments/?{query}",
                           "mime_type": mime_type, "sha256": hashlib.sha256(data).hexdigest(),
                           "file_size": len(data), "id": media_id})

    def _media_download(self, req: Recorded, m: re.Match[str]) -> Reply:
        if req.header("Authorization") != f"Bearer {self.access_token}":
            return Reply.text("Unauthorized", 401)
        media_id, expires = req.query.get("mid", ""), req.query.get("ext", "0")
        if not hmac.compare_digest(self._signature(media_id, expires), req.query.get("hash", "")):
            return Reply.text("Bad signature", 403)
        with self.lock:
            found = self.media.get(media_id)
        if found is None or not expires.isdigit() or int(expires) < time.time():
            return Reply.text("URL signature expired", 404)
        data, mime_type = found
        return Reply(200, data, {"Content-Type": mime_type})

    # -- templates -------------------------------------------------------------------
    def add_template(self, name: str, language: str = "es", category: str = "UTILITY", status: str = "APPROVED",
                     body: str = "Hola {{1}}", *, header: dict[str, Any] | None = None, footer: str | None = None,
                     buttons: list[dict[str, Any]] | None = None, quality: str = "GREEN",
                     rejected_reason: str = "NONE") -> str:
        """A template of the business account, as message_templates lists it; returns its id."""
        components: list[dict[str, Any]] = []
        if header:
            components.append({"type": "HEADER", **header})
        components.append({"type": "BODY", "text": body})
        if footer:
            components.append({"type": "FOOTER", "text": footer})
        if buttons:
            components.append({"type": "BUTTONS", "buttons": buttons})
        template_id = str(next(self._template_ids))
        with self.lock:
            self.templates.append({"id": template_id, "name": name, "language": language, "category": category,
                                   "status": status, "quality_score": {"score": quality, "date": int(time.time())},
                                   "components": components, "rejected_reason": rejected_reason,
                                   "parameter_format": "POSITIONAL"})
        return template_id

    def _list_templates(self, req: Recorded, m: re.Match[str]) -> Reply:
        if req.header("Authorization") != f"Bearer {self.access_token}":
            return meta_error(190, "Error validating access token: Session has expired.", 401)
        if m["waba"] != WABA_ID:
            return meta_error(100, f"Unsupported get request. Object with ID '{m['waba']}' does not exist.", 400,
                              "GraphMethodException")
        limit = min(int(req.query.get("limit") or self.template_page_size), self.template_page_size)
        start = int(req.query.get("after") or 0)
        with self.lock:
            rows = [dict(t) for t in self.templates]
        fields = [f for f in (req.query.get("fields") or "").split(",") if f]
        chunk = [{k: v for k, v in t.items() if not fields or k in fields or k == "id"}
                 for t in rows[start:start + limit]]
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + len(chunk))}}
        if start + limit < len(rows):
            query = {k: v for k, v in req.query.items() if k != "after"}
            paging["next"] = f"{self.url}{req.path}?{urlencode({**query, 'after': start + limit})}"
        return Reply.json({"data": chunk, "paging": paging})

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
        if isinstance(data, dict) and data.get("status") == "read" and data.get("message_id"):
            with self.lock:
                self.read_marks.append(str(data["message_id"]))
            return Reply.json({"success": True})
        if not isinstance(data, dict) or data.get("messaging_product") != "whatsapp" or not data.get("to"):
            return meta_error(100, "Invalid parameter", 400)
        to = str(data["to"])
        if to in self.undeliverable:
            return meta_error(131026, "Message Undeliverable", 400)
        if to in self.pair_limited:
            return meta_error(131056, "(Business Account, Consumer Account) pair rate limit hit", 400)
        if data.get("type") in ("text", *UPLOAD_LIMITS) and to in self.outside_window:
            return meta_error(131047, "Re-engagement message", 400)
        if data.get("type") in UPLOAD_LIMITS:
            part = data.get(data["type"])
            if not isinstance(part, dict) or not (part.get("link") or part.get("id") in self.uploads):
                return meta_error(131053, "Media upload error: unknown media id", 400)
            if data["type"] == "audio" and "caption" in part:
                return meta_error(100, "Invalid parameter: audio takes no caption", 400)
        elif data.get("type") not in ("text", "template"):
            return meta_error(100, "Invalid parameter", 400)
        message_id = f"wamid.HBgL{next(self._ids):010d}FAKE"
        with self.lock:
            self.messages.append({"id": message_id, "to": to, "type": data["type"], "phone_number_id": m["phone"],
                                  "version": m["version"], "payload": data})
        return Reply.json({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                           "messages": [{"id": message_id}]})

    def _upload(self, req: Recorded, m: re.Match[str]) -> Reply:
        if req.header("Authorization") != f"Bearer {self.access_token}":
            return meta_error(190, "Error validating access token: Session has expired.", 401)
        fields = multipart_fields(req)
        if fields.get("messaging_product", (b"",))[0] != b"whatsapp" or "file" not in fields:
            return meta_error(100, "Invalid parameter: messaging_product and file are required", 400)
        data, filename, part_type = fields["file"]
        mime_type = (fields.get("type", (b"",))[0].decode() or part_type or "").lower()
        limit = UPLOAD_LIMITS.get(mime_type.split("/")[0], UPLOAD_LIMITS["document"])
        if len(data) > limit:
            return meta_error(131053, f"Media upload error: {len(data)} bytes is over {limit}", 400)
        media_id = str(next(self._media_ids))
        with self.lock:
            self.uploads[media_id] = (data, mime_type, filename)
        return Reply.json({"id": media_id})

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
