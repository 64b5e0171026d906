"""S4 dashboard actions: start, stop, Delete (cancel what is pending), a single message, a supervisor's
decision on a message the provider could not account for. Each is audited; the caller commits."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _

from ...extensions import db
from ...live.events import publish
from ...models import Dialer, SpoolMessage, SpoolState, User
from .. import audit, phones
from .. import time as clock
from .counts import publish_counts

spool = SpoolMessage.__table__
REVIEW_LIMIT = 100  # messages waiting for a decision shown on the dashboard
REVIEW_ACTIONS = ("resend", "cancel")  # a supervisor's decisions on such a message


class DialerError(Exception):
    """A dialer action refused, with the reason in words for the user (lazy: translated when shown)."""

    def __init__(self, message: Any):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


def _publish_state(dialer: Dialer) -> None:
    publish(f"dialer:{dialer.id}", "dialer.state", dialer_id=dialer.id)
    publish(f"dialers:{dialer.security_group_id}", "dialer.state", dialer_id=dialer.id)


def _audit(user_id: int | None, action: str, dialer: Dialer, **detail: Any) -> None:
    actor = db.session.get(User, user_id) if user_id else None
    audit.record(actor, action, "dialer", dialer.id, name=dialer.name, **detail)


def start(dialer: Dialer, user_id: int | None = None) -> Dialer:
    """Start sending. Refused (DialerError) unless the dialer is enabled. The caller commits."""
    if not dialer.enabled:
        raise DialerError(_("Enable the dialer before starting it."))
    return _set_running(dialer, True, user_id)


def stop(dialer: Dialer, user_id: int | None = None) -> Dialer:
    """Stop sending; messages already in flight finish, nothing new goes out. The caller commits."""
    return _set_running(dialer, False, user_id)


def _set_running(dialer: Dialer, running: bool, user_id: int | None) -> Dialer:
    changed = dialer.running != running
    dialer.running = running
    dialer.state_changed_at = clock.now()
    if changed:
        _audit(user_id, "dialer.start" if running else "dialer.stop", dialer)
    _publish_state(dialer)
    return dialer


def cancel_pending(dialer: Dialer, user_id: int | None = None) -> int:
    """S4 Delete: every not-yet-processed message (NONE, TO PROCESS, BLOCKED, INVALID, FAILED), not in
    flight, becomes CANCELLED. Returns how many. The caller commits."""
    result = db.session.execute(spool.update().where(
        spool.c.dialer_id == dialer.id, spool.c.state.in_(sorted(SpoolState.CANCELLABLE)), spool.c.in_flight_at.is_(None))
        .values(state=SpoolState.CANCELLED, lease_owner=None, lease_until=None, needs_review=False))
    count = result.rowcount or 0
    _audit(user_id, "dialer.cancel_pending", dialer, count=count)
    publish_counts(dialer.id, force=True)
    return count


def queue_single(dialer: Dialer, phone: str, text: str, user_id: int | None = None) -> SpoolMessage:
    """S4 single message: queued ahead of everything else on the dialer (highest priority + 1).

    A bad number or an empty text raises DialerError (a form error) and queues nothing. The caller commits.
    """
    number = phones.normalise(phone)
    if number is None:
        raise DialerError(_("%(phone)s is not a valid phone number.", phone=(phone or "").strip() or "''"))
    if not (text or "").strip():
        raise DialerError(_("Write the text of the message."))
    top = db.session.scalar(sa.select(sa.func.max(SpoolMessage.priority)).where(
        SpoolMessage.dialer_id == dialer.id, SpoolMessage.state == SpoolState.TO_PROCESS)) or 0
    message = SpoolMessage(dialer_id=dialer.id, destination=number, body=text.strip(), priority=top + 1,
                           state=SpoolState.TO_PROCESS, attempts=0, needs_review=False)
    db.session.add(message)
    _audit(user_id, "dialer.single_message", dialer, destination=number)
    publish_counts(dialer.id, force=True)
    return message


def resolve_review(message_id: int, action: str, user_id: int | None) -> SpoolMessage:
    """A supervisor's decision on a message the provider could not account for: "resend" puts it back
    in the pool, "cancel" cancels it. The caller commits."""
    message = db.session.get(SpoolMessage, message_id)
    if message is None or not message.needs_review or message.state != SpoolState.TO_PROCESS:
        raise DialerError(_("This message is not waiting for a decision."))
    if action == "resend":
        message.state = SpoolState.TO_PROCESS
    elif action == "cancel":
        message.state = SpoolState.CANCELLED
    else:
        raise DialerError(_("Choose resend or cancel."))
    message.needs_review = False
    message.in_flight_at = None
    message.lease_owner = None
    message.lease_until = None
    dialer = db.session.get(Dialer, message.dialer_id)
    _audit(user_id, f"dialer.review_{action}", dialer, message_id=message.id)
    publish_counts(message.dialer_id, force=True)
    return message


def awaiting_review(dialer_id: int) -> list[SpoolMessage]:
    """The dialer's messages waiting for a supervisor's decision (the first REVIEW_LIMIT), oldest first."""
    return list(db.session.scalars(sa.select(SpoolMessage).where(
        SpoolMessage.dialer_id == dialer_id, SpoolMessage.needs_review.is_(True)
    ).order_by(SpoolMessage.id).limit(REVIEW_LIMIT)))
