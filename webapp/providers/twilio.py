"""Twilio Programmable Messaging: SMS, and WhatsApp through `whatsapp:` addresses."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import requests

from . import payload
from .base import (
    InboundMessage,
    LookupOutcome,
    LookupResult,
    MediaDownload,
    MediaError,
    OutboundMessage,
    Outcome,
    SendResult,
    StatusUpdate,
    TemplateInfo,
    WebhookRequest,
)
from .http import GatewayError, HttpAdapter, RateLimitedError, rate_limited

log = logging.getLogger(__name__)

OPTED_OUT_CODES = frozenset({21610})
# Too many requests: not processed, sent again later without spending an attempt. 14107 is per pair of
# numbers (Twilio holds that conversation for 30 s); 20429 and 63018 are the account's or channel's pace.
RATE_LIMIT_CODES = frozenset({20429, 14107, 63018})
PAIR_RATE_LIMIT_CODES = {14107: 30.0}  # code -> seconds to wait when no Retry-After says
TEMPORARY_CODES = frozenset({21611, 20500, 20503, 30001})
# Codes that deserve a named mention; any other 4xx is a permanent refusal too.
PERMANENT_CODES = frozenset({21211, 21614, 20003, 63016, 21408, 21612, 21606, 21602, 21617, 63007})

# Twilio's statuses, folded onto base.STATUS_ORDER's keys.
STATUS_MAP = {
    "accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "queued",
    "sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed", "canceled": "failed",
    "undelivered": "undelivered", "receiving": "delivered", "received": "delivered",
}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
LOOKUP_MAX_PAGES = 20
LOOKUP_SLACK = timedelta(seconds=60)
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}
MAX_MEDIA = 10  # media items Twilio puts in one inbound message
CONTENT_API = "https://content.twilio.com"
# The Content API's types, in the order their body is taken as the template's text.
CONTENT_TYPES = ("twilio/text", "twilio/media", "twilio/quick-reply", "twilio/call-to-action", "twilio/card",
                 "whatsapp/card", "twilio/list-picker", "whatsapp/authentication")


def media_kind(content_type: str) -> str:
    """What a MIME type is for WhatsApp's limits and for display."""
    major = content_type.split("/", 1)[0].strip().lower()
    return major if major in ("image", "audio", "video") else "document"


def _strip_channel(address: str) -> str:
    return address.removeprefix("whatsapp:")


# -- signature, as twilio.request_validator.RequestValidator computes it -------
def _url_variants(url: str) -> tuple[str, str]:
    """The URL without any port and with the scheme's default port, the two forms Twilio may have signed."""
    parsed = urlparse(url)
    without = parsed._replace(netloc=parsed.netloc.split(":")[0]).geturl() if parsed.port else parsed.geturl()
    if parsed.port:
        with_port = parsed.geturl()
    else:
        port = 443 if parsed.scheme == "https" else 80
        with_port = parsed._replace(netloc=f"{parsed.netloc}:{port}").geturl()
    return without, with_port


def compute_signature(token: str, url: str, params: dict[str, list[str]], algorithm: str = "HMAC_SHA1") -> str:
    """base64(HMAC(token, url + name+value for each parameter sorted by name, then by value))."""
    payload = url
    for name in sorted(params):
        for value in sorted(set(params[name])):
            payload += name + value
    digest = hmac.new(token.encode(), payload.encode(), HASHES[algorithm]).digest()
    return base64.b64encode(digest).decode().strip()


def signature_algorithm(settings_header: str | None) -> str:
    for part in (settings_header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


def _form_lists(request: WebhookRequest) -> dict[str, list[str]]:
    """POST parameters with every value (a repeated name is signed once per distinct value)."""
    ctype = (request.header("Content-Type") or "").lower()
    if request.body and (not ctype or "application/x-www-form-urlencoded" in ctype):
        return parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: [v] for k, v in request.form.items()}


def _form(request: WebhookRequest) -> dict[str, str]:
    if request.form:
        return dict(request.form)
    return {k: v[-1] for k, v in _form_lists(request).items()}


class TwilioAdapter(HttpAdapter):
    """Send through Messages.json, reconcile through the Messages list, verify X-Twilio-Signature."""

    type = "twilio"
    signs_webhooks = True
    default_base_url = "https://api.twilio.com"

    # -- config ------------------------------------------------------------
    @property
    def account_sid(self) -> str:
        return self.config.credentials.get("account_sid", "")

    @property
    def auth_token(self) -> str:
        return self.config.credentials.get("auth_token", "")

    def _auth(self) -> tuple[str, str]:
        return (self.account_sid, self.auth_token)

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def address(self, number: str) -> str:
        """`whatsapp:+E164` on the WhatsApp channel, the bare number otherwise."""
        number = _strip_channel(number)
        return f"whatsapp:{number}" if self.config.channel == "whatsapp" else number

    @property
    def messaging_service_sid(self) -> str | None:
        sid = self.config.options.get("messaging_service_sid")
        if sid:
            return str(sid)
        sender = self.config.sender
        return sender if sender.startswith("MG") and len(sender) == 34 else None

    # -- send ------------------------------------------------------------------
    def _payload(self, message: OutboundMessage) -> dict[str, Any]:
        data: dict[str, Any] = {"To": self.address(message.to)}
        if self.messaging_service_sid:
            data["MessagingServiceSid"] = self.messaging_service_sid
        else:
            data["From"] = self.address(self.config.sender)
        template = message.template or {}
        if template.get("content_sid"):
            data["ContentSid"] = str(template["content_sid"])
            if template.get("variables"):
                data["ContentVariables"] = json.dumps(template["variables"], ensure_ascii=False)
        else:
            data["Body"] = message.body
        urls = [m.url for m in message.media if m.url and not m.header]
        if urls and not template.get("content_sid"):  # a Content template carries its own media
            data["MediaUrl"] = urls[:MAX_MEDIA]
        callback = message.status_callback_url or self.config.options.get("status_callback_url")
        if callback:
            data["StatusCallback"] = str(callback)
        return data

    def send(self, message: OutboundMessage) -> SendResult:
        since = datetime.now(UTC)
        return self.http.send("POST", self.messages_url, classify, data=self._payload(message),
                              lookup=lambda: self.lookup(message, since))

    # -- reconcile ---------------------------------------------------------------
    def lookup(self, message: OutboundMessage, since: datetime) -> LookupResult:
        """Find the message in Twilio's log by recipient, sender, body and creation time.

        The list is filtered by DateSent as Twilio documents it; a message still
        queued has no date_sent yet, so a second pass without that filter walks
        the newest messages back to `since`.
        """
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        cutoff = since - LOOKUP_SLACK
        params = {"To": self.address(message.to), "PageSize": "100"}
        if not self.messaging_service_sid:
            params["From"] = self.address(self.config.sender)
        try:
            found = self._scan({**params, "DateSent>": cutoff.date().isoformat()}, message, cutoff)
            if found is None:
                found = self._scan(params, message, cutoff)
        except RateLimitedError as exc:  # not "cannot tell": "ask me later"
            log.info("twilio lookup for ref %s rate limited: %s", message.ref, exc)
            return LookupResult(LookupOutcome.UNKNOWN, retry_after=exc.retry_after or 1.0)
        except (GatewayError, ValueError, KeyError, TypeError) as exc:
            log.warning("twilio lookup for ref %s failed: %s", message.ref, exc)
            return LookupResult(LookupOutcome.UNKNOWN)
        return found if found is not None else LookupResult(LookupOutcome.NOT_FOUND)

    def _matches(self, row: dict[str, Any], message: OutboundMessage) -> bool:
        if _strip_channel(row.get("to") or "") != _strip_channel(message.to):
            return False
        if message.template and message.template.get("content_sid"):
            return True  # the rendered template text is not ours to compare
        body = row.get("body") or ""
        return body == message.body or (bool(message.body) and body.endswith(message.body))

    def _scan(self, params: dict[str, str], message: OutboundMessage, cutoff: datetime) -> LookupResult | None:
        url: str | None = self.messages_url
        query: dict[str, str] | None = params
        for _ in range(LOOKUP_MAX_PAGES):
            if url is None:
                return None
            response = self.http.fetch("GET", url, params=query)
            if response.status_code != 200:
                raise GatewayError(f"HTTP {response.status_code} listing messages")
            page = response.json()
            older = False
            for row in page.get("messages", []):
                created = parsedate_to_datetime(row["date_created"])
                if created < cutoff:
                    older = True  # newest first: the rest are older still
                    continue
                if self._matches(row, message):
                    return LookupResult(LookupOutcome.FOUND, row.get("sid"), row.get("status"))
            if older:
                return None
            next_uri = page.get("next_page_uri")
            url = urljoin(self.base_url + "/", next_uri) if next_uri else None
            query = None
        raise GatewayError("too many pages")

    # -- webhooks ------------------------------------------------------------
    def verify_signature(self, request: WebhookRequest) -> bool:
        """Exactly RequestValidator.validate: URL with and without port, sorted params, bodySHA256 for JSON."""
        signature = request.header("X-Twilio-Signature")
        if not signature:
            return False
        settings = request.header(SIGNATURE_SETTINGS_HEADER)
        algorithm = signature_algorithm(settings)
        if algorithm not in HASHES:
            log.warning("twilio webhook signed with unsupported algorithm %s", algorithm)
            return False
        token = self.auth_token
        if settings and self.config.credentials.get("webhook_shared_key"):
            token = self.config.credentials["webhook_shared_key"]
        if not token:
            return False
        parsed = urlparse(request.url)
        query = parse_qs(parsed.query)
        ctype = (request.header("Content-Type") or "").lower()
        params: dict[str, list[str]]
        body_ok = True
        if "bodySHA256" in query and "application/x-www-form-urlencoded" not in ctype and not request.form:
            computed = hashlib.sha256(request.body).hexdigest()
            body_ok = hmac.compare_digest(computed.encode(), query["bodySHA256"][0].encode())  # bytes: no 500 on non-ASCII
            params = {}
        else:
            params = _form_lists(request)
        matches = [hmac.compare_digest(compute_signature(token, url, params, algorithm).encode(),
                                       signature.encode())
                   for url in _url_variants(request.url)]
        return body_ok and any(matches)

    # -- media (W1) -------------------------------------------------------------
    def download_media(self, item: dict[str, Any], max_size: int | None = None) -> MediaDownload:
        """GET the MediaUrl with the account's Basic auth. Twilio answers with a redirect to its CDN, which
        gets no credentials (requests drops them for another host); they go only to Twilio's API host."""
        url = str(item.get("url") or "")
        ours, theirs = urlparse(self.base_url), urlparse(url)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            raise MediaError(f"Twilio media URL {url[:120]!r} is not on {ours.netloc}: not fetched with the "
                             "account's credentials", permanent=True)
        return self.open_download(url, "Twilio media", max_size)

    # -- template catalog (W2): the Content API ---------------------------------------
    @property
    def has_templates(self) -> bool:
        return self.config.channel == "whatsapp"

    def list_templates(self) -> list[TemplateInfo]:
        """GET content.twilio.com/v1/ContentAndApprovals (every page): each content with its WhatsApp approval."""
        base = str(self.config.options.get("content_api_url") or CONTENT_API).rstrip("/")
        return self.read_pages(f"{base}/v1/ContentAndApprovals", {"PageSize": "100"}, items="contents",
                               next_url=lambda page: payload.as_dict(page.get("meta")).get("next_page_url"),
                               read=_content_template, what="ContentAndApprovals")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        form = _form(request)
        if not form.get("MessageSid"):
            return []
        return payload.each([form], self._inbound, f"twilio provider {self.config.id} webhook")

    def _inbound(self, form: dict[str, str]) -> InboundMessage:
        sender = _strip_channel(payload.required(form.get("From"), "From", payload.MAX_NUMBER + len("whatsapp:")))
        if not sender.strip() or len(sender) > payload.MAX_NUMBER:
            raise payload.Unreadable(f"From is no number of at most {payload.MAX_NUMBER} characters")
        channel = "whatsapp" if form.get("From", "").startswith("whatsapp:") else self.config.channel
        # MediaUrl0..9 as given (Twilio sends at most 10), whatever NumMedia says.
        media: list[dict[str, Any]] = []
        for i in range(MAX_MEDIA):
            url = payload.text(form.get(f"MediaUrl{i}"))
            if url:
                ctype = (payload.text(form.get(f"MediaContentType{i}")) or "")[:120]
                media.append({"kind": media_kind(ctype), "url": url[:1000], "content_type": ctype})
        location = _location(form)
        if location:
            media.append(location)
        return InboundMessage(
            provider_message_id=payload.required(form.get("MessageSid"), "MessageSid", payload.MAX_ID),
            from_number=sender, to=_strip_channel(payload.text(form.get("To")) or ""),
            body=payload.text(form.get("Body")) or "", channel=channel,
            profile_name=(payload.text(form.get("ProfileName")) or "")[:payload.MAX_NAME] or None, media=media,
            received_at=datetime.now(UTC),
            reply_to=(payload.text(form.get("OriginalRepliedMessageSid")) or "")[:payload.MAX_ID] or None)

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        form = _form(request)
        if not form.get("MessageSid"):
            return []
        return payload.each([form], _status, f"twilio provider {self.config.id} webhook")

    def webhook_reply(self, kind: str) -> tuple[str, int, dict[str, str]]:
        if kind == "inbound":
            return EMPTY_TWIML, 200, {"Content-Type": "text/xml"}
        return "", 200, {}


def _location(form: dict[str, str]) -> dict[str, Any] | None:
    """A WhatsApp location (Latitude, Longitude, Address, Label), if the form carries a readable one."""
    try:
        lat, lon = float(form.get("Latitude") or "x"), float(form.get("Longitude") or "x")
    except ValueError:
        return None
    if not (abs(lat) <= 90 and abs(lon) <= 180):  # also false for nan
        return None
    return {"kind": "location", "latitude": lat, "longitude": lon,
            "name": (payload.text(form.get("Label")) or "")[:200], "address": (payload.text(form.get("Address")) or "")[:300]}


def _content_template(row: Any) -> TemplateInfo:
    """One ContentAndApprovals item: its text from the first type that has one, media and buttons, and
    the WhatsApp approval (name, category, status, rejection reason)."""
    row = payload.an_object(row)
    types = payload.as_dict(row.get("types"))
    body, header, buttons = "", None, []
    for name in (*CONTENT_TYPES, *sorted(types)):
        part = payload.as_dict(types.get(name))
        if not part:
            continue
        body = body or payload.text(part.get("body")) or ""
        if header is None and payload.text(part.get("header_text")):
            header = {"format": "text", "text": payload.text(part.get("header_text"))}
        media = payload.as_list(part.get("media"), "media")
        if header is None and media and payload.text(media[0]):
            header = {"format": "media", "text": payload.text(media[0])}
        for action in payload.as_list(part.get("actions"), "actions") if not buttons else []:
            action = payload.as_dict(action)
            entry = {"type": (payload.text(action.get("type")) or "quick_reply").lower(),
                     "text": payload.text(action.get("title")) or ""}
            for key in ("url", "phone"):
                if payload.text(action.get(key)):
                    entry[key] = payload.text(action.get(key))
            buttons.append(entry)
    approvals = payload.as_dict(row.get("approval_requests"))
    approval = payload.as_dict(approvals.get("whatsapp")) or approvals
    reason = payload.text(approval.get("rejection_reason"))
    return TemplateInfo(
        external_id=payload.required(row.get("sid"), "sid", 80),
        name=(payload.text(approval.get("name")) or payload.required(row.get("friendly_name"), "friendly_name", 512))[:512],
        language=(payload.text(row.get("language")) or "")[:16], category=payload.text(approval.get("category")) or "",
        status=payload.text(approval.get("status")) or "unsubmitted", reason=reason[:500] if reason else None,
        body=body, header=header, buttons=buttons)


def _status(form: dict[str, str]) -> StatusUpdate | None:
    status = STATUS_MAP.get((payload.text(form.get("MessageStatus")) or payload.text(form.get("SmsStatus"))
                             or "").lower())
    if status is None:
        return None
    return StatusUpdate(status=status,
                        provider_message_id=payload.required(form.get("MessageSid"), "MessageSid", payload.MAX_ID),
                        error_code=payload.text(form.get("ErrorCode")) or None,
                        error_message=payload.text(form.get("ErrorMessage")) or None)


def classify(response: requests.Response) -> SendResult:
    """Map Twilio's answer to an Outcome, keeping its error code."""
    if response.status_code in (200, 201):
        data = response.json()
        sid = data["sid"]
        segments = data.get("num_segments")
        return SendResult(Outcome.SENT, provider_message_id=sid, status=data.get("status"),
                          segments=int(segments) if segments not in (None, "") else None)
    try:
        data = response.json()
    except ValueError:
        data = {}
    code = data.get("code") if isinstance(data, dict) else None
    message = (data.get("message") if isinstance(data, dict) else None) or response.text[:200]
    code_str = str(code) if code is not None else str(response.status_code)
    if code in OPTED_OUT_CODES:
        return SendResult(Outcome.OPTED_OUT, error_code=code_str, error_message=message)
    if response.status_code == 429 or code in RATE_LIMIT_CODES:
        return rate_limited(response, code_str, message, PAIR_RATE_LIMIT_CODES.get(code))
    if code in TEMPORARY_CODES or response.status_code >= 500:
        return SendResult(Outcome.TEMPORARY, error_code=code_str, error_message=message)
    return SendResult(Outcome.PERMANENT, error_code=code_str, error_message=message)
