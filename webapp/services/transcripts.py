"""S3 "Grabaciones": stored conversations, searched, read and downloaded.

A search only ever reaches the campaigns the user sees (security.visible_campaigns); campaign
and agent filters are intersected with what the user may see, never trusted.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import pgettext
from sqlalchemy.orm import aliased, joinedload, selectinload

from ..extensions import db
from ..models import Campaign, Interaction, InteractionStatus, Message, SenderKind, User
from ..security import visible_agents, visible_campaigns
from . import time as clock

PER_PAGE = 25
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class TranscriptFilter:
    start: date | None = None  # first local day included
    end: date | None = None  # last local day included
    origin: str = ""  # part of the customer's number
    campaign_ids: list[int] = field(default_factory=list)
    agent_ids: list[int] = field(default_factory=list)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_query(user: User, flt: TranscriptFilter) -> sa.Select:
    """Interactions matching the filter among the user's campaigns, newest first, with the columns a
    result row shows (campaign name, agent name, message count)."""
    i = Interaction
    agent = aliased(User)
    counts = (sa.select(Message.interaction_id, sa.func.count(Message.id).label("n"))
              .group_by(Message.interaction_id).subquery())
    campaigns = visible_campaigns(user).with_only_columns(Campaign.id).order_by(None)
    query = (sa.select(i.id, i.customer_number, i.customer_name, i.channel, i.status, i.disposition,
                       i.created_at, i.closed_at, i.last_message_at, Campaign.name.label("campaign_name"),
                       agent.name.label("agent_name"), agent.username.label("agent_username"),
                       sa.func.coalesce(counts.c.n, 0).label("message_count"))
             .join(Campaign, Campaign.id == i.campaign_id)
             .outerjoin(agent, agent.id == i.agent_id)
             .outerjoin(counts, counts.c.interaction_id == i.id)
             .where(i.campaign_id.in_(campaigns))
             .order_by(i.created_at.desc(), i.id.desc()))
    if flt.start:
        query = query.where(i.created_at >= clock.center_midnight(flt.start))
    if flt.end:
        query = query.where(i.created_at < clock.center_midnight(flt.end + timedelta(days=1)))
    origin = "".join(ch for ch in (flt.origin or "") if ch.isdigit() or ch == "+").lstrip("+")
    if origin:
        query = query.where(i.customer_number.like(f"%{_like_escape(origin)}%", escape="\\"))
    if flt.campaign_ids:
        query = query.where(i.campaign_id.in_(flt.campaign_ids))
    if flt.agent_ids:
        agents = visible_agents(user).with_only_columns(User.id).order_by(None).where(User.id.in_(flt.agent_ids))
        # The agent who holds it now, or any agent who wrote in it (before a transfer).
        wrote = sa.select(Message.interaction_id).where(Message.sender_kind == SenderKind.AGENT,
                                                        Message.sender_user_id.in_(agents))
        query = query.where(sa.or_(i.agent_id.in_(agents), i.id.in_(wrote)))
    return query


@dataclass
class ResultPage:
    rows: list[Any]
    page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def search(user: User, flt: TranscriptFilter, page: int = 1, per_page: int = PER_PAGE) -> ResultPage:
    """One page of results (offset pagination; one extra row tells whether there is a next page)."""
    page = max(1, page)
    rows = db.session.execute(search_query(user, flt).limit(per_page + 1).offset((page - 1) * per_page)).all()
    return ResultPage(rows=rows[:per_page], page=page, has_next=len(rows) > per_page)


def messages(interaction: Interaction) -> list[Message]:
    """Every message of a conversation in order, senders and attachments loaded."""
    return list(db.session.scalars(
        sa.select(Message).where(Message.interaction_id == interaction.id)
        .options(joinedload(Message.sender), selectinload(Message.attachments))
        .order_by(Message.created_at, Message.id)))


def attachments_text(message: Message) -> str:
    """W1: the message's attachments named, one bracket each ("[Image: photo.jpg, image/jpeg, 3 KB]")."""
    from .media import describe

    return " ".join(describe(a) for a in message.attachments) if message.media else ""


def _text_with_attachments(message: Message) -> str:
    return " ".join(filter(None, (message.body, attachments_text(message))))


def sender_label(message: Message, interaction: Interaction) -> str:
    """Who wrote it: the customer's number, the agent's or supervisor's name, or "Bot"."""
    if message.sender_kind == SenderKind.CUSTOMER:
        return interaction.customer_number
    if message.sender_kind == SenderKind.BOT:
        return "Bot"
    if message.sender is not None:
        return message.sender.display_name
    return _("Agent") if message.sender_kind == SenderKind.AGENT else _("Supervisor")


def status_label(status: str) -> str:
    """An interaction's status in words: the results, the transcript, its text and CSV downloads."""
    return {InteractionStatus.WAITING: _("Waiting"), InteractionStatus.ASSIGNED: _("Assigned"),
            InteractionStatus.ACTIVE: pgettext("interaction", "Active"), InteractionStatus.CLOSED: _("Closed"),
            InteractionStatus.ABANDONED: _("Abandoned")}.get(status, status)


def sender_kind_label(kind: str) -> str:
    return {SenderKind.CUSTOMER: _("Customer"), SenderKind.AGENT: _("Agent"), SenderKind.BOT: "Bot",
            SenderKind.SUPERVISOR: _("Supervisor")}.get(kind, kind)


def _utc_text(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return clock.to_center(moment).strftime("%Y-%m-%d %H:%M:%S")


def conversation_text(interaction: Interaction) -> str:
    """A plain-text transcript: a header, then one line per message (center time)."""
    header = [
        f"{_('Campaign')}: {interaction.campaign.name}",
        f"{_('Customer')}: {interaction.customer_number} {interaction.customer_name or ''}".rstrip(),
        f"{_('Agent')}: {interaction.agent.display_name if interaction.agent else ''}",
        f"{pgettext('transcript', 'Start')}: {_utc_text(interaction.created_at)}",
        f"{pgettext('transcript', 'End')}: {_utc_text(interaction.closed_at)}",
        f"{_('Status')}: {status_label(interaction.status)}",
        f"{_('Disposition')}: {interaction.disposition or ''}",
        "",
    ]
    lines = [f"[{_utc_text(m.created_at)}] {sender_label(m, interaction)}: {_text_with_attachments(m)}"
             for m in messages(interaction)]
    return "\n".join(header + lines) + "\n"


def neutralise(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @, tab or CR gets a leading quote."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START):
        return "'" + text
    return text


def _csv_line(cells: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow([neutralise(c) for c in cells])
    return out.getvalue()


def conversation_csv(interaction: Interaction) -> str:
    """One row per message: time, sender kind, sender, body, attachments."""
    head = _csv_line([_("Time"), _("Sender type"), _("Sender"), _("Message"), _("Attachments")])
    rows = [_csv_line([_utc_text(m.created_at), sender_kind_label(m.sender_kind), sender_label(m, interaction),
                       m.body, attachments_text(m)]) for m in messages(interaction)]
    return head + "".join(rows)


def export_csv(user: User, flt: TranscriptFilter, batch: int = 500) -> Iterator[str]:
    """The whole filtered list as CSV lines, produced as it is read (for a streamed response).

    Reads in keyset batches, so a long export neither loads everything nor holds a cursor open
    across the response.
    """
    yield _csv_line([_("Interaction"), pgettext("transcript", "Start"), pgettext("transcript", "End"), _("Campaign"), _("Origin"), _("Customer name"),
                     _("Agent"), _("Channel"), _("Status"), _("Disposition"), _("Messages")])
    base = search_query(user, flt)
    last: tuple[datetime, int] | None = None
    while True:
        query = base
        if last is not None:
            created, ident = last
            query = query.where(sa.or_(Interaction.created_at < created,
                                       sa.and_(Interaction.created_at == created, Interaction.id < ident)))
        rows = db.session.execute(query.limit(batch)).all()
        for r in rows:
            yield _csv_line([r.id, _utc_text(r.created_at), _utc_text(r.closed_at), r.campaign_name,
                             r.customer_number, r.customer_name, r.agent_name or r.agent_username or "", r.channel,
                             status_label(r.status), r.disposition or "", r.message_count])
        if len(rows) < batch:
            return
        last = (rows[-1].created_at, rows[-1].id)
