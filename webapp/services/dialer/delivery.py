"""Delivery receipts for spool messages: a gateway's callback (or a Dinstar result) moves a message
forward; the sandbox's simulated handsets report what it sent."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from ...extensions import db
from ...models import Dialer, Provider, SpoolMessage, SpoolState
from ...providers.base import StatusUpdate
from .. import time as clock
from .counts import publish_counts
from .gateway import make_adapter

_DELIVERED = frozenset({"delivered", "read"})
_FAILED = frozenset({"failed", "undelivered"})


def apply_delivery(provider_id: int, update: StatusUpdate) -> bool:
    """Apply a delivery callback (or a Dinstar result) to a spool message of this provider's dialers.

    Found by provider_message_id, or by `ref` (our spool id, echoed by Dinstar). Only moves forward:
    SENT → DELIVERED or FAILED; an in-flight message that the gateway reports sent/delivered is settled.
    DELIVERED and FAILED never change state again. `read` (WhatsApp) stamps read_at once, and counts as
    delivered too when it comes first (callbacks arrive in any order). Idempotent. Returns True when a spool message matched
    (changed or not), so the caller knows the update was the dialer's. The caller commits.
    """
    of_provider = sa.select(Dialer.id).where(Dialer.provider_id == provider_id).scalar_subquery()
    message = None
    if update.ref is not None:
        message = db.session.scalar(sa.select(SpoolMessage).where(
            SpoolMessage.id == update.ref, SpoolMessage.dialer_id.in_(of_provider)))
    if message is None and update.provider_message_id:
        message = db.session.scalar(sa.select(SpoolMessage).where(
            SpoolMessage.provider_message_id == update.provider_message_id,
            SpoolMessage.dialer_id.in_(of_provider)).order_by(SpoolMessage.id.desc()).limit(1))
    if message is None:
        return False
    status = update.status
    now = clock.now()
    if message.state == SpoolState.TO_PROCESS and message.in_flight_at is not None and status in ("sent", *_DELIVERED):
        # The gateway has it: the request went out even if its answer was never recorded.
        message.state = SpoolState.SENT
        message.sent_at = message.in_flight_at
        message.in_flight_at = None
        message.lease_owner = None
        message.lease_until = None
        message.needs_review = False
    if update.ref is not None and update.provider_message_id and message.provider_message_id != \
            update.provider_message_id and message.state in (SpoolState.SENT, SpoolState.DELIVERED, SpoolState.FAILED):
        # Dinstar: results carry "port:ref_id", the only key its delivery reports carry.
        message.provider_message_id = update.provider_message_id
    if message.state == SpoolState.SENT and status in _DELIVERED:
        message.state = SpoolState.DELIVERED
        message.delivered_at = now
    elif message.state == SpoolState.SENT and status in _FAILED:
        message.state = SpoolState.FAILED
        message.last_error = f"{status} {update.error_code or ''} {update.error_message or ''}".strip()[:500]
    if status == "read" and message.state == SpoolState.DELIVERED and message.read_at is None:
        message.read_at = now
    publish_counts(message.dialer_id)
    return True


SANDBOX_DELIVERY_BATCH = 500


def sandbox_delivery_reports(after_seconds: float = 2.0) -> int:
    """`make run`'s simulated handsets: what a dialer sent through a sandbox provider at least
    `after_seconds` ago is reported delivered, as a real gateway's status callback would (the sandbox
    has nobody to call the webhook). Only messages the sandbox recorded are reported. The caller commits.
    Returns how many spool messages moved."""
    cutoff = clock.now() - timedelta(seconds=after_seconds)
    providers = db.session.scalars(sa.select(Provider).where(
        Provider.type == "sandbox", Provider.id.in_(sa.select(Dialer.provider_id)))).all()
    moved = 0
    for provider in providers:
        ids = db.session.scalars(
            sa.select(SpoolMessage.id).join(Dialer, Dialer.id == SpoolMessage.dialer_id)
            .where(Dialer.provider_id == provider.id, SpoolMessage.state == SpoolState.SENT,
                   SpoolMessage.sent_at <= cutoff)
            .order_by(SpoolMessage.id).limit(SANDBOX_DELIVERY_BATCH)).all()
        if not ids:
            continue
        with make_adapter(provider) as adapter:
            for update in adapter.poll_status(list(ids)):
                moved += apply_delivery(provider.id, update)
    return moved
