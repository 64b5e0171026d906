"""Issue 15: the per-conversation export, one row per interaction of the chosen campaigns that arrived
in the range (centre days): times in centre time, waits in seconds, agent, disposition, message counts.
Read in keyset batches, so a month of a busy centre streams without loading it all."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from ..extensions import db
from ..models import Campaign, Interaction, Message, SenderKind, User
from . import time as clock


def header() -> list[str]:
    return [_("Interaction"), _("Campaign"), _("Channel"), _("Direction"), _("Customer"), _("Agent"), _("Status"),
            _("Disposition"), _("Arrived"), _("First reply"), _("Closed at"), _("Wait (s)"),
            _("First response (s)"), _("Handle time (s)"), _("Transfers"), _("Customer messages"),
            _("Agent messages")]


def rows(campaign_ids: list[int], start: datetime, end: datetime, batch: int = 1000) -> Iterator[list[Any]]:
    i = Interaction
    base = (sa.select(i.id, Campaign.name.label("campaign"), i.channel, i.direction, i.customer_number,
                      sa.func.coalesce(sa.func.nullif(User.name, ""), User.username).label("agent"), i.status,
                      i.disposition, i.created_at, i.first_reply_at, i.closed_at, i.transfers)
            .join(Campaign, Campaign.id == i.campaign_id).outerjoin(User, User.id == i.agent_id)
            .where(i.campaign_id.in_(campaign_ids or [-1]), i.created_at >= start, i.created_at < end)
            .order_by(i.created_at, i.id).limit(batch))
    last: tuple[datetime, int] | None = None
    while True:
        query = base if last is None else base.where(sa.or_(
            i.created_at > last[0], sa.and_(i.created_at == last[0], i.id > last[1])))
        found = db.session.execute(query).all()
        counts = _message_counts([r.id for r in found])
        for r in found:
            yield _line(r, counts.get(r.id, {}))
        if len(found) < batch:
            return
        last = (found[-1].created_at, found[-1].id)


def _message_counts(ids: list[int]) -> dict[int, dict[str, int]]:
    if not ids:
        return {}
    m = Message
    counts: dict[int, dict[str, int]] = {}
    for interaction_id, kind, count in db.session.execute(
            sa.select(m.interaction_id, m.sender_kind, sa.func.count()).where(m.interaction_id.in_(ids))
            .group_by(m.interaction_id, m.sender_kind)):
        counts.setdefault(interaction_id, {})[kind] = count
    return counts


def _seconds(start: datetime | None, end: datetime | None) -> float | str:
    return round((end - start).total_seconds(), 1) if start and end else ""


def _time(moment: datetime | None) -> str:
    return clock.to_center(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _line(r: Any, counts: dict[str, int]) -> list[Any]:
    wait_end = r.first_reply_at or (r.closed_at if r.status == "abandoned" else None)
    return [r.id, r.campaign, r.channel, r.direction, r.customer_number, r.agent or "", r.status,
            r.disposition or "", _time(r.created_at), _time(r.first_reply_at), _time(r.closed_at),
            _seconds(r.created_at, wait_end), _seconds(r.created_at, r.first_reply_at),
            _seconds(r.first_reply_at, r.closed_at if r.status == "closed" else None), r.transfers or 0,
            counts.get(SenderKind.CUSTOMER, 0), counts.get(SenderKind.AGENT, 0)]
