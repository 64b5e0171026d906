"""A generated day of traffic for the report tests: conversations in every state, agents' messages,
state spans, dialer messages. Deterministic for a seed; times are naive UTC around `base`."""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any


def generate(db: Any, campaigns: list[Any], agents: list[Any], dialer: Any, base: datetime, seed: int = 7,
             count: int = 120, hours: float = 30.0) -> None:
    from webapp.models import AgentStateSpan, Interaction, Message, SpoolMessage

    rnd = random.Random(seed)
    for n in range(count):
        created = base + timedelta(seconds=rnd.uniform(0, hours * 3600))
        campaign = rnd.choice(campaigns)
        agent = rnd.choice(agents)
        kind = rnd.choice(["closed", "closed", "closed", "abandoned", "waiting", "active", "unanswered"])
        item = Interaction(campaign_id=campaign.id, customer_number=f"+5989{n:07d}", channel=campaign.channel,
                           created_at=created, queued_at=created, last_message_at=created,
                           direction=rnd.choice(["inbound"] * 9 + ["outbound"]),
                           out_of_hours_sent=rnd.random() < 0.1, transfers=rnd.choice([0, 0, 0, 1, 2]))
        reply = created + timedelta(seconds=rnd.choice([5, 20, 45, 90, 200, 400, 900]) + rnd.random())
        if kind == "closed":
            item.status, item.agent_id, item.first_reply_at = "closed", agent.id, reply
            item.closed_at = reply + timedelta(seconds=rnd.uniform(30, 2400))
            item.disposition = rnd.choice(["venta", "consulta", "reclamo"])
        elif kind == "abandoned":
            item.status, item.closed_at = "abandoned", created + timedelta(seconds=rnd.uniform(60, 1200))
        elif kind == "active":
            item.status, item.agent_id, item.first_reply_at = "active", agent.id, reply
        elif kind == "unanswered":
            item.status, item.agent_id = "closed", agent.id
            item.closed_at, item.disposition = created + timedelta(seconds=rnd.uniform(60, 600)), "sin respuesta"
        db.session.add(item)
        db.session.flush()
        if item.first_reply_at:
            for k in range(rnd.randint(1, 4)):
                db.session.add(Message(interaction_id=item.id, sender_kind="agent", sender_user_id=agent.id,
                                       body="hola", status="sent",
                                       created_at=item.first_reply_at + timedelta(seconds=30 * k)))
    for agent in agents:
        moment = base + timedelta(minutes=rnd.uniform(0, 90))
        while moment < base + timedelta(hours=hours):
            state = rnd.choice(["free", "busy", "free_break", "busy_break", "disconnected"])
            length = timedelta(seconds=rnd.uniform(60, 5400))
            db.session.add(AgentStateSpan(agent_id=agent.id, state=state, on_call=rnd.random() < 0.2,
                                          cause="agent", started_at=moment, ended_at=moment + length))
            moment += length
    for n in range(60):
        created = base + timedelta(seconds=rnd.uniform(0, hours * 3600))
        state = rnd.choice([1, 2, 3, 4, 5, 5, 6, 7, 7, 7])
        msg = SpoolMessage(dialer_id=dialer.id, destination=f"+5989{n:07d}", body="x", state=state,
                           created_at=created, last_error=rnd.choice(["30003 unreachable", "30005 unknown"])
                           if state == 5 else None)
        if state in (2, 5, 7):
            msg.sent_at = created + timedelta(seconds=rnd.uniform(1, 600))
        if state == 7:
            msg.delivered_at = msg.sent_at + timedelta(seconds=rnd.uniform(1, 60))
            if rnd.random() < 0.5:  # W5: read (WhatsApp), and now and then answered
                msg.read_at = msg.delivered_at + timedelta(seconds=rnd.uniform(1, 1800))
        if state in (2, 7) and rnd.random() < 0.3:
            msg.replied_at = msg.sent_at + timedelta(seconds=rnd.uniform(60, 7200))
        db.session.add(msg)
    db.session.commit()
