"""S2: the supervisor ↔ agent chat has one write rule, whichever side writes (`services.chat.write_line`)."""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from webapp.live.events import CHANNEL_PREFIX
from webapp.models import AgentChatMessage
from webapp.services import chat


def _unread(db: Any, agent_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count(AgentChatMessage.id)).where(chat.unread_chat(agent_id)))


def _topics_of_next(pubsub: Any, count: int) -> list[tuple[str, int]]:
    seen = []
    while len(seen) < count:
        message = pubsub.get_message(timeout=5)
        assert message is not None, f"only {seen} arrived"
        if message["type"] == "pmessage":
            event = json.loads(message["data"])
            seen.append((event["topic"], event["data"]["chat_id"]))
    return seen


def test_either_side_writes_a_line_the_same_way_and_the_agents_own_line_reads_the_rest(app: Any, db: Any,
                                                                                     make: Any) -> None:
    """Stored trimmed, announced to the agent's page and the supervisors' chat; a supervisor's line is unread
    for the agent until the agent writes (or reads); the agent's own line is never unread."""
    group = make.group()
    agent = make.user("ana", groups=[group])
    supervisor = make.user("sara", role="supervisor", groups=[group])
    pubsub = app.extensions["conversa_redis"].pubsub()
    pubsub.psubscribe(CHANNEL_PREFIX + "*")
    assert pubsub.get_message(timeout=5)["type"] == "psubscribe"
    try:
        first = chat.write_line(agent, supervisor, "  ¿Todo bien?  ")
        second = chat.write_line(agent, supervisor, "Avisame")
        db.session.commit()
        assert (first.body, first.author_id, first.agent_id) == ("¿Todo bien?", supervisor.id, agent.id)
        assert _unread(db, agent.id) == 2
        reply = chat.write_line(agent, agent, "Sí, ya voy")
        db.session.commit()
        assert _unread(db, agent.id) == 0
        assert db.session.get(AgentChatMessage, reply.id).read_at is None  # nobody else has to read it
        assert sorted(_topics_of_next(pubsub, 6)) == sorted(
            (topic, line.id) for line in (first, second, reply) for topic in (f"user:{agent.id}", f"chat:{agent.id}"))
    finally:
        pubsub.close()
