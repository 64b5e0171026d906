"""W5 Replied: a customer's message to a provider answers the dialer message that provider sent them last."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from ...extensions import db
from ...models import Dialer, SpoolMessage, SpoolState
from .counts import publish_counts


def record_reply(provider_id: int, number: str, now: datetime) -> bool:
    """Mark the spool message of this provider's dialers most recently sent to `number` (sent or delivered,
    within DIALER_REPLY_HOURS before `now`) replied, unless it is already: one message counts one reply.

    One UPDATE on the (destination, sent_at) index; a later reply never marks an older message. The
    caller commits (a duplicate inbound that is rolled back takes its mark with it). True when marked."""
    sp = SpoolMessage
    since = now - timedelta(hours=float(current_app.config.get("DIALER_REPLY_HOURS", 72)))
    of_provider = sa.select(Dialer.id).where(Dialer.provider_id == provider_id)
    latest = (sa.select(sp.id).where(sp.destination == number, sp.sent_at >= since, sp.sent_at <= now,
                                     sp.state.in_((SpoolState.SENT, SpoolState.DELIVERED)),
                                     sp.dialer_id.in_(of_provider))
              .order_by(sp.sent_at.desc(), sp.id.desc()).limit(1).scalar_subquery())
    dialer_id = db.session.scalar(sa.update(sp).where(sp.id == latest, sp.replied_at.is_(None))
                                  .values(replied_at=now).returning(sp.dialer_id)
                                  .execution_options(synchronize_session=False))
    if dialer_id is None:
        return False
    publish_counts(dialer_id)
    return True
