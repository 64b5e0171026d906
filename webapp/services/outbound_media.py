"""W1: what agents send besides text. A file chosen in the composer is kept in the media store (refused, with
a clear message, past WhatsApp's limit for its kind or when WhatsApp does not carry its type), becomes an
`Attachment` of the message that carries it, and goes to the gateway with the message's send job:

- WhatsApp Cloud: uploaded to the phone number's `/media` endpoint by the send job, sent by that id;
- Twilio WhatsApp: `MediaUrl`, a short-lived signed link to this app (`link_url`, HMAC with an expiry, no
  sign-in, that one file only), which Twilio fetches at once;
- SMS gateways (no MMS outside the US): the same signed link, valid for days, written into the text.
"""
from __future__ import annotations

import hashlib
import hmac
import mimetypes
import secrets
import tempfile
import time
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote

from flask import current_app
from flask_babel import gettext as _

from ..extensions import db
from ..i18n import translating
from ..models import Attachment, AttachmentKind, AttachmentState, Message
from ..providers.base import MediaDownload, OutboundMedia
from . import media, media_store
from . import time as clock
from .interactions.errors import InteractionError

# What WhatsApp carries for each kind (Meta's supported media types); anything else goes as a document.
KIND_TYPES = {
    AttachmentKind.IMAGE: ("image/jpeg", "image/png"),
    AttachmentKind.AUDIO: ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"),
    AttachmentKind.VIDEO: ("video/mp4", "video/3gpp"),
}
MAX_FILES = 10  # one message per file
CAPTIONED = (AttachmentKind.IMAGE, AttachmentKind.VIDEO, AttachmentKind.DOCUMENT)  # a voice note takes none
CHUNK = 64 * 1024
LINK_PATH = "/media/link/{id}/{expires}/{signature}/{name}"


@dataclass
class Upload:
    """A file as the composer sent it (no Flask object: the view hands these to the service)."""

    filename: str
    content_type: str
    stream: IO[bytes]


def kind_for(content_type: str, filename: str) -> str:
    """The WhatsApp kind a file goes as: its declared type, or the one its name suggests."""
    value = media.normal_type(content_type)
    if value == "application/octet-stream":
        value = media.normal_type(mimetypes.guess_type(filename)[0])
    for kind, types in KIND_TYPES.items():
        if value in types:
            return kind
    return AttachmentKind.DOCUMENT


def _type_for(content_type: str, filename: str) -> str:
    value = media.normal_type(content_type)
    if value == "application/octet-stream":
        value = media.normal_type(mimetypes.guess_type(filename)[0])
    return value


def _refuse(upload: Upload, kind: str) -> None:
    value = _type_for(upload.content_type, upload.filename)
    major = value.split("/", 1)[0]
    if major in ("image", "audio", "video") and kind == AttachmentKind.DOCUMENT:
        with translating():
            raise InteractionError(_("%(name)s: WhatsApp does not carry %(type)s files; send it as a document "
                                     "in a .zip or use %(allowed)s.", name=upload.filename, type=value,
                                     allowed=", ".join(KIND_TYPES[major])))
    if media.ACTIVE_TYPES.match(value):
        with translating():
            raise InteractionError(_("%(name)s: %(type)s files cannot be sent.", name=upload.filename, type=value))


def keep_upload(upload: Upload) -> dict[str, Any]:
    """Copy one upload into the media store, counted and hashed; what its Attachment records. Refuses (with the
    file's name, size and the limit) what WhatsApp would not take."""
    name = media.safe_filename(upload.filename, "file", _type_for(upload.content_type, upload.filename))[:255]
    kind = kind_for(upload.content_type, name)
    _refuse(Upload(name, upload.content_type, upload.stream), kind)
    content_type = _type_for(upload.content_type, name)
    limit = media.LIMITS[kind]
    spool = tempfile.SpooledTemporaryFile(max_size=media.SPOOL_IN_MEMORY)
    with spool:
        chunks = iter(lambda: upload.stream.read(CHUNK), b"")
        try:
            size, digest = media.copy_limited(MediaDownload(chunks=chunks), spool, limit)
        except media.Refused as exc:
            with translating():
                raise InteractionError(_(
                    "%(name)s is larger than the %(limit)s WhatsApp allows for %(kind)s files.", name=name,
                    limit=media.human_size(limit), kind=media.kind_label(kind).lower())) from exc
        if size == 0:
            with translating():
                raise InteractionError(_("%(name)s is empty.", name=name))
        store = media_store.current()
        key = f"{clock.now():%Y/%m/%d}/out-{secrets.token_hex(12)}"
        spool.seek(0)
        store.put(key, spool, content_type)
        kept: dict[str, Any] = {"kind": kind, "content_type": content_type, "filename": name, "size": size,
                                "sha256": digest, "storage_key": key}
        if kind == AttachmentKind.IMAGE:
            spool.seek(0)
            kept.update(media.thumbnail(spool, store, key))
    return kept


def keep_uploads(uploads: list[Upload]) -> list[dict[str, Any]]:
    if len(uploads) > MAX_FILES:
        with translating():
            raise InteractionError(_("Send at most %(max)d files at once.", max=MAX_FILES))
    return [keep_upload(u) for u in uploads]


def attach(message: Message, kept: dict[str, Any], *, header: bool = False) -> Attachment:
    """The kept file as the message's attachment (READY at once: it is in the store already)."""
    attachment = Attachment(message_id=message.id, provider_id=message.provider_id, position=0,
                            state=AttachmentState.READY, source={"outbound": True},
                            details={"header": True} if header else {}, created_at=clock.now(),
                            fetched_at=clock.now(), **kept)
    db.session.add(attachment)
    message.media = [{"kind": kept["kind"], "outbound": True}]
    return attachment


# -- signed links ------------------------------------------------------------------------------------------
def _signature(attachment_id: int, expires: int) -> str:
    key = (current_app.config.get("MEDIA_LINK_KEY") or current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"media-link:{attachment_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:40]


class NoPublicURL(Exception):
    """A gateway or a customer would have to open a link, and PUBLIC_BASE_URL says nowhere they could."""


def link_url(attachment: Attachment, seconds: float) -> str:
    """An absolute URL that serves this one file, without signing in, for `seconds`."""
    expires = int(time.time() + seconds)
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    if not base:
        raise NoPublicURL("PUBLIC_BASE_URL is not set: the file's link would open nowhere outside this server")
    name = media.safe_filename(attachment.filename, attachment.kind, attachment.content_type, attachment.id)
    return base + LINK_PATH.format(id=attachment.id, expires=expires, signature=_signature(attachment.id, expires),
                                   name=quote(name, safe=""))


def link_valid(attachment_id: int, expires: int, signature: str) -> bool:
    """The link's signature is ours for this file and it has not expired."""
    given = signature.encode()  # bytes: compare_digest refuses str with non-ASCII characters (a 500)
    return expires >= time.time() and hmac.compare_digest(_signature(attachment_id, expires).encode(), given)


def fetch_seconds() -> float:
    """A link the gateway fetches at once (Twilio's MediaUrl)."""
    return float(current_app.config.get("MEDIA_FETCH_LINK_SECONDS", 900))


def sms_seconds() -> float:
    """A link the customer opens from an SMS."""
    return float(current_app.config.get("MEDIA_LINK_SECONDS", 7 * 24 * 3600))


def outbound(attachment: Attachment, *, links: bool) -> OutboundMedia:
    """What the adapter needs of an attachment: a link (`links`: Twilio fetches it) or the bytes (Meta)."""
    store = media_store.current()
    key = attachment.storage_key or ""
    return OutboundMedia(kind=attachment.kind, content_type=attachment.content_type, filename=attachment.filename,
                         size=attachment.size, url=link_url(attachment, fetch_seconds()) if links else "",
                         read=lambda: store.read(key).read_all(), header=bool((attachment.details or {}).get("header")))


def sms_text(body: str, attachments: list[Attachment]) -> str:
    """An SMS carries the files as signed links after the caption."""
    links = [f"{a.filename}: {link_url(a, sms_seconds())}" for a in attachments]
    return "\n".join([body, *links]) if body else "\n".join(links)
