"""Demo traffic for `make run`: a few hundred messages queued on the demo dialer."""
from __future__ import annotations

import random

import sqlalchemy as sa

from ..extensions import db
from ..models import Dialer, SpoolMessage, SpoolState


def queue_demo_messages(count: int = 300) -> int:
    """Queue `count` messages on the demo dialer unless it still has some to process."""
    dialer = db.session.scalar(sa.select(Dialer).where(Dialer.name == "demo"))
    if dialer is None:
        return 0
    pending = db.session.scalar(sa.select(sa.func.count(SpoolMessage.id)).where(
        SpoolMessage.dialer_id == dialer.id, SpoolMessage.state == SpoolState.TO_PROCESS))
    if pending:
        return 0
    rng = random.Random(7)
    names = ["Ana", "Bruno", "Carla", "Diego", "Elena", "Fabián", "Gabriela", "Hugo"]
    rows = []
    for i in range(count):
        number = f"+59899{rng.randrange(100000, 999999)}"
        rows.append({"dialer_id": dialer.id, "destination": number, "state": SpoolState.TO_PROCESS,
                     "priority": 0, "attempts": 0, "needs_review": False,
                     "body": f"Hola {rng.choice(names)}, tu turno #{1000 + i} está confirmado."})
    db.session.execute(sa.insert(SpoolMessage), rows)
    db.session.commit()
    return count
