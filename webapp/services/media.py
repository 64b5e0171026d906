"""W1: what customers send besides text, kept.

A message that arrives with media gets one `Attachment` per item (`attach_inbound`). A location or a
contact card is complete at once; a file is PENDING ("downloading…") until a job (`fetch`, queued after
the commit, retried with backoff) has copied it from the gateway into the media store with its content
type, size and SHA-256, and a thumbnail for pictures. Meta's download URLs live five minutes and its media
ids seven days, so the job runs at once and each try asks for a fresh URL.

Sizes follow WhatsApp's limits per kind (`LIMITS`); a larger file is not kept and shows as REFUSED with
its size and the limit. A file the gateway no longer has, or that failed every try, shows as FAILED.
Files are served only by webapp/media/routes.py, to users who may see the conversation.
"""
from __future__ import annotations

import hashlib
import io
import logging
import mimetypes
import re
import secrets
import tempfile
import unicodedata
from datetime import datetime, timedelta
from typing import IO, Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.orm.attributes import set_committed_value

from .. import after_commit, queues
from ..extensions import db
from ..live.events import publish
from ..models import Attachment, AttachmentKind, AttachmentState, Message, Provider
from ..providers import get_adapter
from ..providers.base import MediaDownload, MediaError, MediaTooLarge
from . import media_store
from . import time as clock

log = logging.getLogger(__name__)

MB = 1024 * 1024
# Meta's limits for what WhatsApp carries (stickers: animated ones, the larger).
LIMITS = {AttachmentKind.IMAGE: 5 * MB, AttachmentKind.STICKER: 500 * 1024, AttachmentKind.AUDIO: 16 * MB,
          AttachmentKind.VIDEO: 16 * MB, AttachmentKind.DOCUMENT: 100 * MB}
MAX_ITEMS = 10
SPOOL_IN_MEMORY = 1 * MB  # a download larger than this goes through a temporary file, never whole in memory
THUMB_BOX = (320, 320)
THUMB_KINDS = (AttachmentKind.IMAGE, AttachmentKind.STICKER)
FETCH_LEASE = timedelta(minutes=10)  # a running download's claim; a dead worker's is taken over after it
RETRY_INTERVALS = (10, 60, 300, 900, 3600)  # seconds between tries (RQ's Retry, and next_attempt_at)
RECOVER_GRACE = timedelta(minutes=2)  # a due retry nobody ran this long after is queued again
FETCH_JOB = "workers.whatsapp.fetch_media"

# Shown in the page (img, audio, video) and opened in the browser; everything else is a download.
INLINE_TYPES = frozenset({
    "image/jpeg", "image/png", "image/gif", "image/webp",
    "audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr", "audio/wav", "audio/x-wav", "audio/webm",
    "video/mp4", "video/3gpp", "video/webm",
})
# Types a browser would run (markup, scripts): served as plain bytes, as a download.
ACTIVE_TYPES = re.compile(r"^(text/(?!plain$|csv$).*|.*\+xml|.*/xml|.*javascript.*|.*ecmascript.*|"
                          r"application/(xhtml|x-shockwave).*|multipart/.*)$")
MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$")


# -- reading what the gateway said --------------------------------------------------------------
def normal_type(content_type: str | None) -> str:
    """`type/subtype` in lower case without parameters; anything unreadable is application/octet-stream."""
    value = (content_type or "").split(";", 1)[0].strip().lower()
    return value if MIME.match(value) else "application/octet-stream"


def kind_of(item: dict[str, Any]) -> str:
    kind = str(item.get("kind") or "")
    if kind in AttachmentKind.ALL:
        return kind
    major = normal_type(item.get("content_type")).split("/", 1)[0]
    return major if major in ("image", "audio", "video") else AttachmentKind.DOCUMENT


def safe_filename(name: str | None, kind: str, content_type: str, attachment_id: int | None = None) -> str:
    """A file name fit for a Content-Disposition: no folders, no control characters, at most 120 characters;
    made up from the kind and type when the customer's file had none."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    if not name:
        extension = mimetypes.guess_extension(content_type) or ""
        name = f"{kind}-{attachment_id or 'file'}{'.jpg' if extension == '.jpe' else extension}"
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:110] + dot + ext[:9]) if dot and len(ext) < 10 else name[:120]
    return name


# -- inbound: one attachment per item -------------------------------------------------------------------
def attach_inbound(message: Message, provider: Provider, items: list[dict[str, Any]] | None) -> list[Attachment]:
    """The message's media as attachments (call it after the message is flushed); each file is downloaded
    by a job queued when the transaction commits."""
    made = []
    for position, item in enumerate((items or [])[:MAX_ITEMS]):
        if not isinstance(item, dict):
            continue
        kind = kind_of(item)
        attachment = Attachment(message_id=message.id, provider_id=provider.id, position=position, kind=kind,
                                created_at=clock.now())
        if kind == AttachmentKind.LOCATION:
            attachment.state = AttachmentState.READY
            attachment.details = {k: item.get(k) for k in ("latitude", "longitude", "name", "address")}
        elif kind == AttachmentKind.CONTACTS:
            attachment.state = AttachmentState.READY
            attachment.details = {"contacts": list(item.get("contacts") or [])[:10]}
        else:
            attachment.state = AttachmentState.PENDING
            attachment.source = {k: item[k] for k in ("id", "url", "sample", "sha256") if item.get(k)}
            attachment.content_type = normal_type(item.get("content_type"))
            attachment.filename = safe_filename(item.get("filename"), kind, attachment.content_type)[:255] \
                if item.get("filename") else ""
            attachment.details = {k: True for k in ("voice", "animated") if item.get(k) is True}
            if not attachment.source:
                attachment.state = AttachmentState.FAILED
                attachment.error = "the gateway named no file to download"
        db.session.add(attachment)
        made.append(attachment)
    if made:
        db.session.flush()
        for attachment in made:
            if attachment.is_file and not attachment.filename:  # named after its id, now that it has one
                attachment.filename = safe_filename(None, attachment.kind, attachment.content_type, attachment.id)
            if attachment.state == AttachmentState.PENDING:
                fetch_after_commit(attachment.id)
    return made


# -- the download job ---------------------------------------------------------------------------------------
MEDIA_FETCH = "media.fetch"  # an after-commit kind: attachment ids to download


def fetch_after_commit(attachment_id: int) -> None:
    """Download the attachment once the transaction that created it commits."""
    after_commit.defer(MEDIA_FETCH, attachment_id)


@after_commit.sender(MEDIA_FETCH)
def _enqueue_fetches(attachment_ids: list[int]) -> None:
    enqueue_fetch(*dict.fromkeys(attachment_ids))


def retry_intervals() -> list[int]:
    attempts = max(1, int(current_app.config.get("MEDIA_FETCH_ATTEMPTS", 5)))
    return [RETRY_INTERVALS[min(i, len(RETRY_INTERVALS) - 1)] for i in range(attempts - 1)]


def enqueue_fetch(*attachment_ids: int) -> None:
    """Queue the download jobs, each retried by RQ with backoff; Redis down, the recovery pass queues them."""
    from rq import Retry

    queue = queues.queue_for(FETCH_JOB)
    intervals = retry_intervals()
    for attachment_id in attachment_ids:
        try:
            queue.enqueue(FETCH_JOB, attachment_id, result_ttl=0, failure_ttl=24 * 3600,
                          retry=Retry(max=len(intervals), interval=intervals) if intervals else None)
        except Exception as exc:  # noqa: BLE001 - the recovery pass will find it pending
            log.warning("media download %s not queued: %s", attachment_id, exc)


class Refused(Exception):
    def __init__(self, size: int, limit: int):
        super().__init__(f"{size} bytes, over the {limit} bytes WhatsApp allows")
        self.size = size
        self.limit = limit


def claim(attachment_id: int, now: datetime) -> bool:
    """Take the download for this try (one conditional UPDATE: two jobs for one file never both run)."""
    done = db.session.execute(
        sa.update(Attachment).where(
            Attachment.id == attachment_id, Attachment.state == AttachmentState.PENDING,
            sa.or_(Attachment.next_attempt_at.is_(None), Attachment.next_attempt_at <= now))
        .values(attempts=Attachment.attempts + 1, next_attempt_at=now + FETCH_LEASE)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return done == 1


class TryAgain(Exception):
    """This try failed and another one is due (RQ retries the job when it sees this)."""


def fetch(attachment_id: int) -> str:
    """One download try of one attachment: its final state, or "pending" (raising TryAgain) when it will be
    tried again. Holds no transaction while the gateway and the store answer."""
    now = clock.now()
    if not claim(attachment_id, now):
        return "skipped"
    attachment = db.session.get(Attachment, attachment_id)
    provider = db.session.get(Provider, attachment.provider_id) if attachment.provider_id else None
    if provider is None:
        return _finish(attachment, AttachmentState.FAILED, error="the provider was deleted")
    config, source = provider.to_config(), dict(attachment.source or {})
    kind, attempt = attachment.kind, attachment.attempts
    db.session.commit()
    try:
        kept = _download(config, source, kind, attachment_id)
    except Refused as exc:
        attachment = db.session.get(Attachment, attachment_id)
        attachment.details = {**(attachment.details or {}), "size": exc.size, "limit": exc.limit}
        attachment.size = exc.size
        return _finish(attachment, AttachmentState.REFUSED, error=str(exc))
    except (MediaError, media_store.StoreError, OSError) as exc:
        attachment = db.session.get(Attachment, attachment_id)
        permanent = isinstance(exc, MediaError) and exc.permanent
        attempts = max(1, int(current_app.config.get("MEDIA_FETCH_ATTEMPTS", 5)))
        if permanent or attempt >= attempts:
            log.warning("media %s failed after %s tries: %s", attachment_id, attempt, exc)
            return _finish(attachment, AttachmentState.FAILED, error=str(exc))
        wait = RETRY_INTERVALS[min(attempt - 1, len(RETRY_INTERVALS) - 1)]
        attachment.error = str(exc)[:500]
        # A little before RQ's own schedule, so the retry it runs is never turned away by the claim.
        attachment.next_attempt_at = clock.now() + timedelta(seconds=max(0, wait - 1))
        db.session.commit()
        raise TryAgain(f"media {attachment_id}, try {attempt}: {exc}") from exc
    attachment = db.session.get(Attachment, attachment_id)
    for key, value in kept.items():
        setattr(attachment, key, value)
    return _finish(attachment, AttachmentState.READY, error=None)


def _finish(attachment: Attachment, state: str, *, error: str | None) -> str:
    attachment.state = state
    attachment.error = error[:500] if error else None
    attachment.next_attempt_at = None
    attachment.fetched_at = clock.now()
    publish(f"interaction:{attachment.message.interaction_id}", "message.media", attachment_id=attachment.id,
            message_id=attachment.message_id)
    db.session.commit()
    return state


def _download(config: Any, source: dict[str, Any], kind: str, attachment_id: int) -> dict[str, Any]:
    """Copy the file from the gateway to the store, counting and hashing it on the way; what to record."""
    limit = LIMITS.get(kind, LIMITS[AttachmentKind.DOCUMENT])
    timeout = current_app.config.get("PROVIDER_TIMEOUT", 10.0)
    with get_adapter(config, timeout=timeout, redis=current_app.extensions["conversa_redis"]) as adapter:
        try:
            download = adapter.download_media(source, max_size=limit)
        except MediaTooLarge as exc:
            raise Refused(exc.size, limit) from exc
        return _keep(download, source, kind, limit, attachment_id)


def _keep(download: MediaDownload, source: dict[str, Any], kind: str, limit: int,
          attachment_id: int) -> dict[str, Any]:
    with download:
        if download.size is not None and download.size > limit:
            raise Refused(download.size, limit)
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        with spool:
            size, digest = copy_limited(download, spool, limit)
            expected = (download.sha256 or source.get("sha256") or "").lower()
            if expected and re.fullmatch(r"[0-9a-f]{64}", expected) and expected != digest:
                raise MediaError(f"checksum mismatch: the gateway said {expected}, the file is {digest}")
            content_type = normal_type(download.content_type) if download.content_type else None
            if content_type == "application/octet-stream":
                content_type = None  # keep the type the webhook named
            store = media_store.current()
            key = f"{clock.now():%Y/%m/%d}/{attachment_id}-{secrets.token_hex(8)}"
            spool.seek(0)
            store.put(key, spool, content_type or "application/octet-stream")
            kept: dict[str, Any] = {"storage_key": key, "size": size, "sha256": digest}
            if content_type:
                kept["content_type"] = content_type
            if kind in THUMB_KINDS:
                spool.seek(0)
                kept.update(thumbnail(spool, store, key))
    return kept


def copy_limited(download: MediaDownload, out: IO[bytes], limit: int) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    for chunk in download.chunks:
        if not chunk:
            continue
        size += len(chunk)
        if size > limit:
            raise Refused(size, limit)
        digest.update(chunk)
        out.write(chunk)
    return size, digest.hexdigest()


def thumbnail(source: IO[bytes], store: media_store.MediaStore, key: str) -> dict[str, Any]:
    """A picture's size, and a JPEG (or WebP, when transparent) of it at most 320×320; none for a picture
    Pillow cannot read (the file itself is kept and downloadable)."""
    from PIL import Image, ImageOps

    try:
        with Image.open(source) as image:
            width, height = image.size
            image.draft("RGB", THUMB_BOX)  # JPEG: decode at a fraction of the size
            small = ImageOps.exif_transpose(image) or image
            small.thumbnail(THUMB_BOX)
            transparent = small.mode in ("RGBA", "LA") or (small.mode == "P" and "transparency" in small.info)
            small = small.convert("RGBA" if transparent else "RGB")
            out = io.BytesIO()
            small.save(out, "WEBP" if transparent else "JPEG", quality=80)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds; the file stays downloadable
        log.info("no thumbnail for %s: %s", key, exc)
        return {}
    out.seek(0)
    thumb_key = f"{key}.thumb.{'webp' if transparent else 'jpg'}"
    store.put(thumb_key, out, "image/webp" if transparent else "image/jpeg")
    return {"width": width, "height": height, "thumb_key": thumb_key, "thumb_width": small.width,
            "thumb_height": small.height}


def recover(now: datetime | None = None, limit: int = 200) -> int:
    """Queue again the downloads whose job was lost (Redis down at the commit, a worker killed): pending,
    and due for longer than RECOVER_GRACE."""
    now = now or clock.now()
    ids = list(db.session.scalars(sa.select(Attachment.id).where(
        Attachment.state == AttachmentState.PENDING,
        sa.or_(Attachment.next_attempt_at.is_(None), Attachment.next_attempt_at < now - RECOVER_GRACE),
        Attachment.created_at < now - RECOVER_GRACE).order_by(Attachment.id).limit(limit)))
    if ids:
        enqueue_fetch(*ids)
    return len(ids)


def preload(messages: list[Message]) -> list[Message]:
    """Load the attachments of the messages that have any, in one query for all of them (a list renders
    without a query per media message; messages without media need none)."""
    ids = [m.id for m in messages if m.media]
    if ids:
        found: dict[int, list[Attachment]] = {i: [] for i in ids}
        for attachment in db.session.scalars(sa.select(Attachment).where(Attachment.message_id.in_(ids))
                                             .order_by(Attachment.message_id, Attachment.position, Attachment.id)):
            found[attachment.message_id].append(attachment)
        for message in messages:
            if message.media:
                set_committed_value(message, "attachments", found.get(message.id, []))
    return messages


# -- serving ------------------------------------------------------------------------------------------------
def served_type(content_type: str) -> tuple[str, bool]:
    """(Content-Type to send, inline?): only the allow-list is shown inline; markup and scripts (HTML, SVG,
    XML, JavaScript…) go out as plain bytes, so no browser ever renders or runs them."""
    value = normal_type(content_type)
    if value in INLINE_TYPES:
        return value, True
    if ACTIVE_TYPES.match(value):
        return "application/octet-stream", False
    return value, False


def content_disposition(filename: str, inline: bool) -> str:
    """RFC 6266: an ASCII fallback and the UTF-8 name."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r'["\\\r\n]', "_", ascii_name).strip() or "file"
    return (f'{"inline" if inline else "attachment"}; filename="{ascii_name}"; '
            f"filename*=UTF-8''{quote(filename, safe='')}")


# -- words for people -----------------------------------------------------------------------------------
def human_size(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    if size < MB:
        return f"{size / 1024:.0f} KB"
    return f"{size / MB:.1f} MB"


def kind_label(kind: str) -> str:
    return {AttachmentKind.IMAGE: _("Image"), AttachmentKind.AUDIO: _("Audio"), AttachmentKind.VIDEO: _("Video"),
            AttachmentKind.DOCUMENT: _("Document"), AttachmentKind.STICKER: _("Sticker"),
            AttachmentKind.LOCATION: _("Location"), AttachmentKind.CONTACTS: _("Contact card")}.get(kind, kind)


def describe(attachment: Attachment) -> str:
    """One line naming an attachment, for text and CSV transcripts."""
    label = _("Voice note") if (attachment.details or {}).get("voice") else kind_label(attachment.kind)
    details = attachment.details or {}
    if attachment.kind == AttachmentKind.LOCATION:
        place = ", ".join(filter(None, (details.get("name"), details.get("address"))))
        return f"[{label}: {details.get('latitude')}, {details.get('longitude')}{f' ({place})' if place else ''}]"
    if attachment.kind == AttachmentKind.CONTACTS:
        cards = "; ".join(" ".join(filter(None, (c.get("name"), ", ".join(c.get("phones") or []))))
                          for c in details.get("contacts") or [])
        return f"[{label}: {cards}]"
    state = {AttachmentState.PENDING: _("downloading"), AttachmentState.FAILED: _("not downloaded"),
             AttachmentState.REFUSED: _("too large, not kept")}.get(attachment.state)
    parts = [attachment.filename, attachment.content_type, human_size(attachment.size), state]
    return f"[{label}: {', '.join(p for p in parts if p)}]"
