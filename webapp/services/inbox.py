"""The agent's side of the supervisor chat (S2): what is unread, reading it, writing a line.

The supervisor's side is `supervision.send_chat`; both publish `chat.message` to `chat:<agent>` and
`user:<agent>` (after commit).
"""
from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from ..live.events import publish
from ..models import AgentChatMessage, User, utcnow


def unread_chat(agent_id: int | sa.BindParameter[int]) -> sa.ColumnElement[bool]:
    """The agent's unread lines: those nobody read yet that someone else (a supervisor, the system) wrote."""
    return sa.and_(AgentChatMessage.agent_id == agent_id, AgentChatMessage.read_at.is_(None),
                   sa.or_(AgentChatMessage.author_id.is_(None), AgentChatMessage.author_id != agent_id))


def mark_chat_read(agent_id: int) -> None:
    """The agent has read their chat: every unread line is read now."""
    db.session.execute(sa.update(AgentChatMessage).where(unread_chat(agent_id)).values(read_at=utcnow())
                       .execution_options(synchronize_session=False))


def send_chat_line(agent: User, body: str) -> AgentChatMessage:
    """An agent's line to the supervisors: stored, and the agent has read everything before it."""
    line = AgentChatMessage(agent_id=agent.id, author_id=agent.id, body=body.strip())
    db.session.add(line)
    mark_chat_read(agent.id)
    db.session.flush()
    publish(f"chat:{agent.id}", "chat.message", chat_id=line.id)
    publish(f"user:{agent.id}", "chat.message", chat_id=line.id)
    return line
