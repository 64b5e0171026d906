"""The one interface every gateway adapter implements.

Adapters know nothing of Flask or the ORM: they take plain dataclasses and
return plain dataclasses, so the dialer, the webhooks and the tests drive them
the same way.
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ProviderConfig:
    """A provider row, decrypted: what an adapter needs to talk to its gateway."""

    id: int
    type: str
    channel: str = "sms"  # "sms" or "whatsapp"
    sender: str = ""
    credentials: dict[str, str] = field(default_factory=dict)
    base_url: str = ""
    max_per_second: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMedia:
    """A file an agent sends (W1): a signed link to it (what Twilio fetches) and its bytes on demand (what
    Meta's /media endpoint takes). `header`: a template's header image, not a message of its own."""

    kind: str  # image, audio, video, document
    content_type: str
    filename: str
    size: int | None = None
    url: str = ""
    read: Callable[[], bytes] | None = None
    header: bool = False


@dataclass(frozen=True)
class OutboundMessage:
    """One message to send. `ref` is our own id (the spool id or message id)."""

    ref: int
    to: str  # E.164, "+59898344384"
    body: str = ""
    port: int | None = None
    template: dict[str, Any] | None = None  # {"name"|"content_sid": ..., "language": "es", "variables": {...}}
    status_callback_url: str | None = None
    media: tuple[OutboundMedia, ...] = ()  # files sent with `body` as their caption (WhatsApp only)


class Outcome(enum.StrEnum):
    SENT = "sent"  # the gateway accepted it
    TEMPORARY = "temporary"  # 5xx, timeout, queue full: may be retried later
    RATE_LIMITED = "rate_limited"  # 429 and the like: not processed; retry after `retry_after`, not a failure
    PERMANENT = "permanent"  # refused and will stay refused (bad number, auth, ...)
    OPTED_OUT = "opted_out"  # the recipient opted out (Twilio 21610): blocked + do-not-contact


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    status: str | None = None  # the gateway's own status word
    error_code: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    segments: int | None = None
    attempts: int = 1
    #: The request may have reached the gateway (read timeout, dropped answer,
    #: unreadable 2xx) and the gateway could not tell: reconcile with lookup()
    #: or a person before sending again, never resend blindly.
    ambiguous: bool = False
    #: A RATE_LIMITED that concerns this one recipient (too many messages to the same number: Meta
    #: 131056, Twilio 14107), not the gateway's pace: only this message waits.
    per_recipient: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SENT


class LookupOutcome(enum.StrEnum):
    FOUND = "found"  # the gateway has it: it was sent
    NOT_FOUND = "not_found"  # the gateway can tell it never got it: safe to send again
    UNKNOWN = "unknown"  # the gateway cannot tell: a person decides


@dataclass(frozen=True)
class LookupResult:
    outcome: LookupOutcome
    provider_message_id: str | None = None
    status: str | None = None
    #: With UNKNOWN: the gateway rate limited the question itself; ask again after this many seconds
    #: instead of leaving the message to a person.
    retry_after: float | None = None


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook call as received, independent of Flask."""

    method: str
    url: str  # the public URL as the gateway called it (for signatures)
    headers: dict[str, str]
    body: bytes = b""
    form: dict[str, str] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return None


@dataclass(frozen=True)
class InboundMessage:
    provider_message_id: str
    from_number: str  # E.164 where the gateway gives enough to tell
    to: str  # the DID / sender id it was sent to
    body: str
    channel: str = "sms"
    profile_name: str | None = None
    #: What came besides the text, one dict per item: {"kind": image|audio|video|document|sticker, and where
    #: the gateway keeps it: "id" (Meta's media id) or "url" (Twilio's MediaUrl), "content_type", maybe
    #: "filename", "sha256", "voice", "animated"}, {"kind": "location", "latitude", "longitude", "name",
    #: "address"} or {"kind": "contacts", "contacts": [{"name", "phones": [...]}]}. JSON values only.
    media: list[dict[str, Any]] = field(default_factory=list)
    received_at: datetime | None = None
    port: int | None = None
    #: The provider's id of the message this one answers (a tapped button or list row, a quoted reply).
    reply_to: str | None = None


# Normalised delivery statuses, in the order a message moves through them.
STATUS_ORDER = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 2, "undelivered": 2}


@dataclass(frozen=True)
class StatusUpdate:
    status: str  # one of STATUS_ORDER's keys
    provider_message_id: str | None = None
    ref: int | None = None  # our own id where the gateway echoes it (Dinstar user_id)
    error_code: str | None = None
    error_message: str | None = None


class SignatureError(Exception):
    """A webhook whose signature is missing or wrong."""


# -- W1: media the customer sent ------------------------------------------------------------------
class MediaError(Exception):
    """A media download that failed. `permanent`: the gateway no longer has it (or never will give it):
    trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class MediaTooLarge(MediaError):
    """The gateway declares a file larger than the caller takes: not downloaded."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"{size} bytes, over the {limit} bytes allowed", permanent=True)
        self.size = size
        self.limit = limit


@dataclass
class MediaDownload:
    """A file on its way from the gateway: read `chunks` once, then close()."""

    chunks: Iterator[bytes]
    content_type: str = ""
    size: int | None = None  # as the gateway declares it (Meta's file_size, a Content-Length), if it does
    sha256: str | None = None  # Meta's checksum of the file, hex
    filename: str = ""
    close: Callable[[], None] = lambda: None

    def __enter__(self) -> MediaDownload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- W2: the template catalog -------------------------------------------------------------------------
@dataclass(frozen=True)
class TemplateInfo:
    """One WhatsApp template as its gateway lists it, in the gateway's own words (services/templates.py
    normalises status, category and quality)."""

    external_id: str  # Meta's template id, Twilio's ContentSid
    name: str
    language: str = ""
    category: str = ""
    status: str = ""
    quality: str = ""
    reason: str | None = None
    body: str = ""
    header: dict[str, Any] | None = None  # {"format": "text"|"image"|"video"|"document"|"location", "text"}
    footer: str | None = None
    buttons: list[dict[str, Any]] = field(default_factory=list)  # [{"type", "text", "url"|"phone"}]


@dataclass(frozen=True)
class TemplateUpdate:
    """A template's status or quality changed (Meta's message_template_*_update webhooks)."""

    external_id: str | None = None
    name: str | None = None
    language: str | None = None
    status: str | None = None  # the gateway's event word (APPROVED, PAUSED, …)
    quality: str | None = None  # GREEN / YELLOW / RED / UNKNOWN
    reason: str | None = None


class ProviderAdapter:
    """Base class: one subclass per gateway type."""

    type: str = ""
    signs_webhooks: bool = False
    #: Dinstar takes up to 50 messages a request; most gateways take one.
    batch_size: int = 1
    #: Whether dial strings (ports) apply to this type.
    uses_ports: bool = False

    def __init__(self, config: ProviderConfig, *, timeout: float = 10.0, max_attempts: int = 3,
                 backoff: float = 0.5):
        self.config = config
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff

    # -- outbound -------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        raise NotImplementedError

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        return [self.send(m) for m in messages]

    def lookup(self, message: OutboundMessage, since: datetime) -> LookupResult:
        """Ask the gateway whether a message whose answer we never recorded went out."""
        return LookupResult(LookupOutcome.UNKNOWN)

    # -- inbound --------------------------------------------------------
    def verify_signature(self, request: WebhookRequest) -> bool:
        """True when the request carries a valid signature (or the type does not sign)."""
        return True

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """The customer messages in a webhook. Never raises on what the gateway sent: an item that cannot
        be read is logged and skipped, the others kept (see providers/payload.py)."""
        return []

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """The delivery receipts in a webhook; like parse_inbound, skips what it cannot read."""
        return []

    def parse_template_updates(self, request: WebhookRequest) -> list[TemplateUpdate]:
        """Template status and quality changes in a webhook (Meta sends them with the messages)."""
        return []

    def download_media(self, item: dict[str, Any], max_size: int | None = None) -> MediaDownload:
        """Start downloading one media item of an inbound message (`InboundMessage.media`); raises MediaError,
        MediaTooLarge before any of the file is read when the gateway declares more than `max_size` bytes."""
        raise MediaError(f"{self.type} keeps no media to download", permanent=True)

    def list_templates(self) -> list[TemplateInfo]:
        """Every WhatsApp template of the account, all pages; raises GatewayError when the gateway fails."""
        raise NotImplementedError(f"{self.type} has no template catalog")

    @property
    def has_templates(self) -> bool:
        """Whether this provider has a WhatsApp template catalog to sync."""
        return False

    def mark_read(self, provider_message_id: str) -> bool:
        """Tell the gateway the customer's message (and those before it) has been read; False when the
        gateway has no such thing (only WhatsApp Cloud has)."""
        return False

    def poll_inbound(self) -> list[InboundMessage]:
        return []

    def poll_status(self, refs: list[int]) -> list[StatusUpdate]:
        return []

    def webhook_reply(self, kind: str) -> tuple[str, int, dict[str, str]]:
        """What the gateway expects back from a webhook (body, status, headers)."""
        return "", 200, {}

    def close(self) -> None:
        """Release pooled connections; adapters without any need not override it."""

    def __enter__(self) -> ProviderAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def replace(self, **changes: Any) -> ProviderAdapter:
        return type(self)(dataclasses.replace(self.config, **changes), timeout=self.timeout,
                          max_attempts=self.max_attempts, backoff=self.backoff)
