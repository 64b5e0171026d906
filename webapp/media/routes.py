"""`/media/<id>` and its thumbnail: the same 404 as the conversation for anyone who may not see it, a safe
Content-Type and Content-Disposition, nosniff, and the file streamed from the store (Range for seeking)."""
from __future__ import annotations

from typing import Any

from flask import Response, abort, request
from flask_login import login_required

from ..extensions import db
from ..models import Attachment, AttachmentState
from ..security import get_interaction_or_404
from ..services import media, media_store, outbound_media
from . import bp

CACHE = "private, max-age=3600"


def _attachment_or_404(attachment_id: int) -> Attachment:
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        abort(404)
    get_interaction_or_404(attachment.message.interaction_id)
    if attachment.state != AttachmentState.READY or not attachment.storage_key:
        abort(404)
    return attachment


@bp.get("/media/<int:attachment_id>")
@login_required
def file(attachment_id: int) -> Any:
    attachment = _attachment_or_404(attachment_id)
    return _stream(attachment.storage_key, attachment.size, attachment.sha256, attachment.content_type,
                   attachment.filename)


@bp.get("/media/<int:attachment_id>/thumb")
@login_required
def thumb(attachment_id: int) -> Any:
    attachment = _attachment_or_404(attachment_id)
    if not attachment.thumb_key:
        abort(404)
    thumb_type = "image/webp" if attachment.thumb_key.endswith(".webp") else "image/jpeg"
    return _stream(attachment.thumb_key, None, f"{attachment.sha256}-thumb", thumb_type,
                   f"thumb-{attachment.filename}", ranges=False)


@bp.get("/media/link/<int:attachment_id>/<int:expires>/<signature>/<path:name>")
def link(attachment_id: int, expires: int, signature: str, name: str) -> Any:
    """W1: a file an agent sent, for the gateway (Twilio's MediaUrl) or the SMS customer: no sign-in, only
    with this file's unexpired signature; anything else is 404."""
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None or not outbound_media.link_valid(attachment_id, expires, signature[:80]):
        abort(404)
    if attachment.state != AttachmentState.READY or not attachment.storage_key:
        abort(404)
    return _stream(attachment.storage_key, attachment.size, attachment.sha256, attachment.content_type,
                   attachment.filename, cache="private, no-store")


def _stream(key: str, size: int | None, etag: str | None, content_type: str, filename: str, *,
            ranges: bool = True, cache: str = CACHE) -> Response:
    served, inline = media.served_type(content_type)
    # sandbox: whatever a browser might make of the bytes, no script of theirs runs with the app's origin.
    headers = {"Content-Disposition": media.content_disposition(filename, inline),
               "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox", "Cache-Control": cache}
    if etag:
        headers["ETag"] = f'"{etag}"'
        if request.if_none_match.contains(etag):
            return Response(status=304, headers=headers)
    store = media_store.current()
    status, start, end = 200, 0, None
    if ranges and size is not None:
        headers["Accept-Ranges"] = "bytes"
        wanted = request.range if request.if_range.etag in (None, etag) else None
        span = wanted.range_for_length(size) if wanted is not None else None
        if wanted is not None and span is None and len(wanted.ranges) == 1:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status=416, headers=headers)
        if span is not None:
            status, (start, stop) = 206, span
            end = stop - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    try:
        blob = store.read(key, start, end)
    except media_store.NotStored:
        abort(404)
    except media_store.StoreError:
        abort(503)
    headers["Content-Length"] = str(blob.size)
    return Response(blob.chunks, status=status, headers=headers, mimetype=served, direct_passthrough=True)
