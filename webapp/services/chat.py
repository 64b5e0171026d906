"""S2: the chat between the supervisors and one agent, the same rule whichever side writes.

A line is stored and announced (after commit) on the agent's page (`user:<agent>`) and in every
supervisor's chat with that agent (`chat:<agent>`). The agent's unread lines are the ones someone
else wrote (a supervisor, or the system) that the agent has not read; writing a line reads them.
The forms refuse an empty body; `supervision.send_chat` adds the supervisor's audit entry.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from ..live.events import publish
from ..models import AgentChatMessage, User
from . import time as clock

MAX_LINE = 1000


def unread_chat(agent_id: int | sa.BindParameter[int]) -> sa.ColumnElement[bool]:
    """The agent's unread lines: those nobody read yet that someone else (a supervisor, the system) wrote."""
    return sa.and_(AgentChatMessage.agent_id == agent_id, AgentChatMessage.read_at.is_(None),
                   sa.or_(AgentChatMessage.author_id.is_(None), AgentChatMessage.author_id != agent_id))


def mark_chat_read(agent_id: int) -> None:
    """The agent has read their chat: every unread line is read now."""
    db.session.execute(sa.update(AgentChatMessage).where(unread_chat(agent_id)).values(read_at=clock.now())
                       .execution_options(synchronize_session=False))


def write_line(agent: User, author: User, body: str) -> AgentChatMessage:
    """A line in the agent's chat, written by a supervisor or by the agent (who has then read every line
    before it): stored, and shown on both sides after commit."""
    line = AgentChatMessage(agent_id=agent.id, author_id=author.id, body=body.strip()[:MAX_LINE],
                            created_at=clock.now())
    db.session.add(line)
    if author.id == agent.id:
        mark_chat_read(agent.id)
    db.session.flush()
    publish(f"user:{agent.id}", "chat.message", chat_id=line.id)
    publish(f"chat:{agent.id}", "chat.message", chat_id=line.id)
    return line
