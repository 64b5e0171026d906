"""Meta's WhatsApp Business Cloud API: text and template sends, signed webhooks, media downloads and the
template catalog of the business account."""
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
    MediaDownload,
    MediaError,
    MediaTooLarge,
    OutboundMedia,
    OutboundMessage,
    Outcome,
    SendResult,
    StatusUpdate,
    TemplateInfo,
    TemplateUpdate,
    WebhookRequest,
)
from .http import GatewayError, HttpAdapter, rate_limited

DEFAULT_API_VERSION = "21.0"
# Too many requests: not processed, sent again later without spending an attempt. 130429 throughput,
# 131048 spam rate limit, 4 / 80007 app and account call limits pace the whole number; 131056 is the
# pair rate limit (one business number to one customer, about one message every 6 s).
RATE_LIMIT_CODES = frozenset({130429, 131048, 131056, 4, 80007})
PAIR_RATE_LIMIT_CODES = {131056: 6.0}  # code -> seconds to wait when no Retry-After says
TEMPORARY_CODES = frozenset({131000, 131016, 1, 2})
OUTSIDE_WINDOW = 131047  # free text more than 24 h after the customer's last message: needs a template
STATUS_MAP = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}
FILE_KINDS = ("image", "audio", "video", "document", "sticker")
CAPTIONED = ("image", "video", "document")  # audio takes no caption
# Meta answers a media id it does not have (expired after 7 days, or never ours) with this code.
NO_SUCH_OBJECT = 100
TEMPLATE_FIELDS = ("message_template_status_update", "message_template_quality_update")
TEMPLATE_LIST_FIELDS = "id,name,language,category,status,quality_score,components,rejected_reason"


class WhatsAppCloudAdapter(HttpAdapter):
    type = "whatsapp_cloud"
    signs_webhooks = True
    default_base_url = "https://graph.facebook.com"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.credentials.get('access_token', '')}"}

    @property
    def graph_url(self) -> str:
        version = str(self.config.options.get("api_version") or DEFAULT_API_VERSION).lstrip("vV")
        return f"{self.base_url}/v{version}"

    @property
    def phone_number_id(self) -> str:
        return str(self.config.options.get("phone_number_id") or self.config.sender)

    @property
    def messages_url(self) -> str:
        return f"{self.graph_url}/{self.phone_number_id}/messages"

    has_templates = True

    def payload(self, message: OutboundMessage, media_ids: dict[int, str] | None = None) -> dict[str, Any]:
        """The /messages body: a template (with its body variables and header image), a file (by the id
        Meta gave it on upload, with the text as caption), or text."""
        media_ids = media_ids or {}
        data: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                                "to": message.to.lstrip("+")}
        template = message.template
        files = [(i, m) for i, m in enumerate(message.media) if not m.header]
        if template and template.get("name"):
            data.update(type="template", template=_template_body(template, [
                (m, media_ids[i]) for i, m in enumerate(message.media) if m.header and i in media_ids]))
        elif files:
            index, item = files[0]
            part: dict[str, Any] = {"id": media_ids[index]}
            if message.body and item.kind in CAPTIONED:
                part["caption"] = message.body
            if item.kind == "document" and item.filename:
                part["filename"] = item.filename
            data.update(type=item.kind, **{item.kind: part})
        else:
            data.update(type="text", text={"preview_url": False, "body": message.body})
        return data

    @property
    def media_url(self) -> str:
        return f"{self.graph_url}/{self.phone_number_id}/media"

    def upload(self, item: OutboundMedia) -> SendResult:
        """POST /{phone-number-id}/media (multipart: file, type, messaging_product): the media id in
        provider_message_id. Uploading twice sends nothing, so a lost answer is simply asked again."""
        content = item.read() if item.read else b""
        return self.http.send("POST", self.media_url, _classify_upload, idempotent=True,
                              data={"messaging_product": "whatsapp", "type": item.content_type},
                              files={"file": (item.filename or "file", content, item.content_type)})

    def send(self, message: OutboundMessage) -> SendResult:
        # Meta has no way to list sent messages: an ambiguous send stays ambiguous. Files go up first; a
        # failed upload sent nothing, so the message may be tried again.
        media_ids: dict[int, str] = {}
        for index, item in enumerate(message.media):
            uploaded = self.upload(item)
            if not uploaded.ok:
                return uploaded
            media_ids[index] = str(uploaded.provider_message_id)
        return self.http.send("POST", self.messages_url, classify, json=self.payload(message, media_ids))

    def mark_read(self, provider_message_id: str) -> bool:
        """POST /messages {status: read, message_id}: Meta shows the blue ticks for it and every earlier one."""
        result = self.http.send("POST", self.messages_url, _classify_read, idempotent=True,
                                json={"messaging_product": "whatsapp", "status": "read",
                                      "message_id": provider_message_id})
        return result.ok

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

    def _changes(self, request: WebhookRequest) -> list[tuple[str, dict[str, Any]]]:
        """Every entry[].changes[] as (field, value); entries and changes that cannot be read are skipped."""
        where = self._where
        entries = payload.each(payload.as_list(payload.json_object(request.body, where).get("entry"),
                                               f"{where}: entry"), payload.an_object, f"{where}: entry")
        return [change for i, entry in enumerate(entries)
                for change in payload.each(payload.as_list(entry.get("changes"), f"{where}: entry[{i}].changes"),
                                           _change, f"{where}: entry[{i}].changes")]

    def _values(self, request: WebhookRequest) -> list[dict[str, Any]]:
        """The values that may carry messages and statuses (not the template catalog's changes)."""
        return [value for name, value in self._changes(request) if name not in TEMPLATE_FIELDS]

    def parse_template_updates(self, request: WebhookRequest) -> list[TemplateUpdate]:
        """message_template_status_update ({event, message_template_id, …, reason}) and
        message_template_quality_update ({new_quality_score, message_template_id, …})."""
        return payload.each([value for name, value in self._changes(request) if name in TEMPLATE_FIELDS],
                            _template_update, f"{self._where}: template updates")

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
        replied = _short(payload.as_dict(msg.get("context")).get("id"), payload.MAX_ID) or None
        return InboundMessage(
            provider_message_id=payload.required(msg.get("id"), "id", payload.MAX_ID), from_number=_plus(sender),
            to=_plus(to), body=body, channel="whatsapp", profile_name=names.get(sender), media=media,
            received_at=_when(msg.get("timestamp")), reply_to=replied)

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        updates: list[StatusUpdate] = []
        for value in self._values(request):
            updates += payload.each(payload.as_list(value.get("statuses"), f"{self._where}: statuses"),
                                    self._status, f"{self._where}: statuses")
        return updates

    # -- media (W1) ---------------------------------------------------------------
    def download_media(self, item: dict[str, Any], max_size: int | None = None) -> MediaDownload:
        """GET /{media-id} for its download URL (it lives 5 minutes), then GET that URL, both with the bearer
        token. A URL that expired between the two is asked for again once; a file_size over `max_size` is
        refused before the download."""
        media_id = str(item.get("id") or "")
        if not media_id:
            raise MediaError("WhatsApp media without an id", permanent=True)
        last: MediaError | None = None
        for _ in range(2):
            info = self._media_info(media_id)
            size = int(info["file_size"]) if str(info.get("file_size") or "").isdigit() else None
            if max_size is not None and size is not None and size > max_size:
                raise MediaTooLarge(size, max_size)
            try:
                download = self.open_download(str(info["url"]), f"WhatsApp media {media_id} download", max_size)
            except MediaTooLarge:
                raise
            except MediaError as exc:
                last = MediaError(str(exc))  # the media id lives 7 days: a later try gets a new URL
                continue
            download.content_type = str(info.get("mime_type") or download.content_type)
            download.size = size if size is not None else download.size
            download.sha256 = str(info.get("sha256") or "") or None
            return download
        raise last or MediaError(f"WhatsApp media {media_id}: no download")

    def _media_info(self, media_id: str) -> dict[str, Any]:
        try:
            response = self.http.fetch("GET", f"{self.graph_url}/{media_id}",
                                       params={"phone_number_id": self.phone_number_id})
        except GatewayError as exc:
            raise MediaError(f"WhatsApp media {media_id}: {exc}") from exc
        with response:
            try:
                data = response.json()
            except ValueError:
                data = {}
        error = payload.as_dict(payload.as_dict(data).get("error"))
        if response.status_code != 200 or not isinstance(data, dict) or not data.get("url"):
            gone = response.status_code == 404 or error.get("code") == NO_SUCH_OBJECT
            raise MediaError(f"WhatsApp media {media_id}: HTTP {response.status_code} "
                             f"{error.get('code', '')} {error.get('message', '')}".rstrip(), permanent=gone)
        return data

    # -- template catalog (W2) ------------------------------------------------------
    def list_templates(self) -> list[TemplateInfo]:
        """GET /{waba-id}/message_templates, following paging.next to the last page."""
        waba = str(self.config.options.get("waba_id") or "").strip()
        if not waba:
            raise GatewayError("no WhatsApp Business Account ID set on this provider")
        return self.read_pages(f"{self.graph_url}/{waba}/message_templates",
                               {"fields": TEMPLATE_LIST_FIELDS, "limit": "100"}, items="data",
                               next_url=lambda page: payload.as_dict(page.get("paging")).get("next"),
                               read=_template, what="message_templates", error_text=_error_text)

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


def _change(change: Any) -> tuple[str, dict[str, Any]]:
    change = payload.an_object(change)
    value = change.get("value")
    if not isinstance(value, dict):
        raise payload.Unreadable("value is not an object")
    return payload.text(change.get("field")) or "messages", value


def _error_text(response: requests.Response) -> str:
    try:
        error = payload.as_dict(payload.as_dict(response.json()).get("error"))
    except ValueError:
        return response.text[:200]
    return f"{error.get('code', '')} {error.get('message', '')}".strip()


def _template(row: Any) -> TemplateInfo:
    row = payload.an_object(row)
    body, header, footer, buttons = "", None, None, []
    for component in payload.as_list(row.get("components"), "components"):
        component = payload.as_dict(component)
        kind = (payload.text(component.get("type")) or "").upper()
        if kind == "BODY":
            body = payload.text(component.get("text")) or ""
        elif kind == "HEADER":
            header = {"format": (payload.text(component.get("format")) or "text").lower(),
                      "text": payload.text(component.get("text")) or ""}
        elif kind == "FOOTER":
            footer = payload.text(component.get("text"))
        elif kind == "BUTTONS":
            for button in payload.as_list(component.get("buttons"), "buttons"):
                button = payload.as_dict(button)
                entry = {"type": (payload.text(button.get("type")) or "").lower(),
                         "text": payload.text(button.get("text")) or ""}
                for key, ours in (("url", "url"), ("phone_number", "phone")):
                    if payload.text(button.get(key)):
                        entry[ours] = payload.text(button.get(key))
                buttons.append(entry)
    reason = payload.text(row.get("rejected_reason"))
    return TemplateInfo(
        external_id=payload.required(row.get("id"), "id", 80), name=payload.required(row.get("name"), "name", 512),
        language=(payload.text(row.get("language")) or "")[:16], category=payload.text(row.get("category")) or "",
        status=payload.text(row.get("status")) or "",
        quality=payload.text(payload.as_dict(row.get("quality_score")).get("score")) or "",
        reason=None if reason in (None, "", "NONE") else reason[:500], body=body, header=header, footer=footer,
        buttons=buttons)


def _template_update(value: dict[str, Any]) -> TemplateUpdate | None:
    external = payload.text(value.get("message_template_id"))
    name = payload.text(value.get("message_template_name"))
    if not external and not name:
        return None
    reason = payload.text(value.get("reason"))
    other = payload.as_dict(value.get("other_info"))
    detail = payload.text(other.get("description")) or payload.text(
        payload.as_dict(value.get("rejection_info")).get("reason"))
    if reason in (None, "", "NONE"):
        reason = detail
    return TemplateUpdate(external_id=external, name=name, language=payload.text(value.get("message_template_language")),
                          status=payload.text(value.get("event")), quality=payload.text(value.get("new_quality_score")),
                          reason=reason[:500] if reason else None)


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


def _short(value: Any, limit: int) -> str:
    return (payload.text(value) or "")[:limit]


def _coordinate(value: Any, bound: float) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and abs(value) <= bound:
        return float(value)
    return None


def _content(msg: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Text and media of one inbound message, whatever its type; parts that cannot be read are left out."""
    kind = payload.text(msg.get("type"))
    part = payload.as_dict(msg.get(kind)) if kind else {}
    if kind in ("text", "button"):
        return payload.text(part.get("body" if kind == "text" else "text")) or "", []
    if kind == "interactive":
        chosen = payload.as_dict(part.get("button_reply")) or payload.as_dict(part.get("list_reply"))
        return payload.text(chosen.get("title")) or "", []
    if kind in FILE_KINDS:
        media_id = _short(part.get("id"), payload.MAX_ID)
        caption = payload.text(part.get("caption")) or ""
        if not media_id.strip():
            return caption, []
        item: dict[str, Any] = {"kind": kind, "id": media_id, "content_type": _short(part.get("mime_type"), 120)}
        for key, limit in (("filename", 255), ("sha256", 128)):
            if payload.text(part.get(key)):
                item[key] = _short(part.get(key), limit)
        for flag in ("voice", "animated"):
            if part.get(flag) is True:
                item[flag] = True
        return caption, [item]
    if kind == "location":
        lat, lon = _coordinate(part.get("latitude"), 90), _coordinate(part.get("longitude"), 180)
        if lat is None or lon is None:
            return "", []
        name, address = _short(part.get("name"), 200), _short(part.get("address"), 300)
        return name, [{"kind": "location", "latitude": lat, "longitude": lon, "name": name, "address": address}]
    if kind == "contacts":
        cards = []
        for contact in payload.as_list(msg.get("contacts"), "contacts")[:10]:
            contact = payload.as_dict(contact)
            name = payload.as_dict(contact.get("name"))
            full = _short(name.get("formatted_name"), 120) or " ".join(
                filter(None, (_short(name.get("first_name"), 60), _short(name.get("last_name"), 60))))
            phones = [_short(payload.as_dict(p).get("phone"), 40)
                      for p in payload.as_list(contact.get("phones"), "phones")[:5]]
            phones = [p for p in phones if p.strip()]
            if full or phones:
                cards.append({"name": full, "phones": phones})
        return "", [{"kind": "contacts", "contacts": cards}] if cards else []
    return "", []


def _template_body(template: dict[str, Any], headers: list[tuple[OutboundMedia, str]]) -> dict[str, Any]:
    """A template send: its name, language, and components (header media by upload id, body parameters in
    order, or named ones for a template with named variables)."""
    language = template.get("language") or "es"
    body: dict[str, Any] = {"name": template["name"],
                            "language": language if isinstance(language, dict) else {"code": language}}
    if template.get("components"):
        body["components"] = template["components"]
        return body
    components: list[dict[str, Any]] = []
    if template.get("header_variables"):
        components.append({"type": "header", "parameters": [
            {"type": "text", "text": str(v)} for v in dict(template["header_variables"]).values()]})
    for item, media_id in headers[:1]:
        kind = item.kind if item.kind in ("image", "video", "document") else "image"
        components.append({"type": "header", "parameters": [{"type": kind, kind: {"id": media_id}}]})
    variables = template.get("variables") or {}
    pairs = list(variables.items()) if isinstance(variables, dict) else [(str(i + 1), v)
                                                                         for i, v in enumerate(variables)]
    if pairs:
        parameters = []
        for name, value in pairs:
            parameter: dict[str, Any] = {"type": "text", "text": str(value)}
            if not str(name).isdigit():
                parameter["parameter_name"] = str(name)
            parameters.append(parameter)
        components.append({"type": "body", "parameters": parameters})
    if components:
        body["components"] = components
    return body


def _classify_upload(response: requests.Response) -> SendResult:
    if 200 <= response.status_code < 300:
        try:
            media_id = payload.text(payload.as_dict(response.json()).get("id"))
        except ValueError:
            media_id = None
        if media_id:
            return SendResult(Outcome.SENT, provider_message_id=media_id)
        return SendResult(Outcome.TEMPORARY, error_code="upload", error_message="Meta gave the upload no id")
    return classify(response)


def _classify_read(response: requests.Response) -> SendResult:
    if 200 <= response.status_code < 300:
        return SendResult(Outcome.SENT)
    return classify(response)


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
