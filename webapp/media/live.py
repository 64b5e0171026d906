"""A download that ended (kept, failed, refused) replaces the "downloading…" of its attachment on every page
that shows the conversation (inbox, supervisor spy), through the socket of `interaction:<id>`."""
from __future__ import annotations

from typing import Any

from flask import render_template

from ..extensions import db
from ..live.registry import renderer
from ..models import Attachment


@renderer("interaction", "message.media")
def render_attachment(event: dict[str, Any], user: Any) -> str | None:
    try:
        attachment = db.session.get(Attachment, int(event["data"].get("attachment_id")))
    except (TypeError, ValueError):
        return None
    if attachment is None or f"interaction:{attachment.message.interaction_id}" != event.get("topic"):
        return None
    return render_template("media/_attachment.html", a=attachment, oob=True)

