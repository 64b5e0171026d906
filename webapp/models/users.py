"""People and what they may see: users, security groups, breaks, voice campaigns."""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from .base import created_at_column, utcnow


class Role(enum.StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"


# Who supervises: the monitor, the dialers, the transcripts, any conversation of the groups they see.
SUPERVISING_ROLES = (Role.ADMIN, Role.SUPERVISOR)


class AgentState(enum.StrEnum):
    """A4: the five states an agent shows on the monitor."""

    DISCONNECTED = "disconnected"
    FREE = "free"
    BUSY = "busy"
    FREE_BREAK = "free_break"
    BUSY_BREAK = "busy_break"

    @property
    def in_break(self) -> bool:
        return self in (AgentState.FREE_BREAK, AgentState.BUSY_BREAK)

    @property
    def connected(self) -> bool:
        return self is not AgentState.DISCONNECTED


user_security_groups = sa.Table(
    "user_security_groups",
    db.metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("security_group_id", sa.ForeignKey("security_groups.id", ondelete="CASCADE"), primary_key=True),
)

voice_campaign_members = sa.Table(
    "voice_campaign_members",
    db.metadata,
    sa.Column("voice_campaign_id", sa.ForeignKey("voice_campaigns.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class SecurityGroup(db.Model):
    __tablename__ = "security_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = created_at_column()

    users: Mapped[list[User]] = relationship(secondary=user_security_groups, back_populates="security_groups")

    def __repr__(self) -> str:
        return f"<SecurityGroup {self.name}>"


class BreakType(db.Model):
    __tablename__ = "break_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    # An emoji or a short symbol shown beside the agent on the monitor.
    icon: Mapped[str] = mapped_column(sa.String(16), default="☕")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at_column()


class VoiceCampaign(db.Model):
    """M2: the voice side's campaigns, kept only to know which agents may take text work."""

    __tablename__ = "voice_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    created_at: Mapped[datetime] = created_at_column()

    members: Mapped[list[User]] = relationship(secondary=voice_campaign_members, back_populates="voice_campaigns")


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    email: Mapped[str] = mapped_column(sa.String(200), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    role: Mapped[str] = mapped_column(sa.String(16), default=Role.AGENT.value)
    language: Mapped[str | None] = mapped_column(sa.String(8))
    active: Mapped[bool] = mapped_column(default=True)
    # S2: whether a supervisor may mirror this agent's screen.
    monitor_screen_allowed: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(sa.String(16), default=AgentState.DISCONNECTED.value)
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    break_type_id: Mapped[int | None] = mapped_column(sa.ForeignKey("break_types.id", ondelete="SET NULL"))
    # Set and cleared by the voice platform's API.
    on_call: Mapped[bool] = mapped_column(default=False)
    on_call_changed_at: Mapped[datetime | None] = mapped_column()
    # Bumped to end every session of this user at once (logout by a supervisor, password change).
    session_version: Mapped[int] = mapped_column(default=1)
    # Sign-in attempts since the last right password, each counted before its password is checked;
    # the one that reaches LOGIN_MAX_FAILURES sets `locked_until` (services/accounts.py).
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    last_login_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()

    security_groups: Mapped[list[SecurityGroup]] = relationship(
        secondary=user_security_groups, back_populates="users")
    voice_campaigns: Mapped[list[VoiceCampaign]] = relationship(
        secondary=voice_campaign_members, back_populates="members")
    break_type: Mapped[BreakType | None] = relationship()

    def set_password(self, password: str) -> None:
        from flask import current_app, has_app_context

        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt") if has_app_context() else "scrypt"
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        # The version makes a supervisor's "log out agent" end sessions everywhere.
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_supervisor(self) -> bool:
        return self.role == Role.SUPERVISOR

    @property
    def may_supervise(self) -> bool:
        return self.role in SUPERVISING_ROLES

    @property
    def is_agent(self) -> bool:
        return self.role == Role.AGENT

    @property
    def agent_state(self) -> AgentState:
        return AgentState(self.state)

    @property
    def display_name(self) -> str:
        return User.shown_name(self.name, self.username)

    @staticmethod
    def shown_name(name: str | None, username: str) -> str:
        """How a user is named on every page: their name, else their username (also for rows read as columns)."""
        return name or username

    @property
    def security_group_ids(self) -> set[int]:
        return {g.id for g in self.security_groups}

    @property
    def seen_group_ids(self) -> set[int] | None:
        """The security groups whose campaigns, dialers and agents this user sees and may put things in;
        None means every group: admins see all (the one place that rule is written)."""
        return None if self.is_admin else self.security_group_ids

    def sees_group(self, group_id: int | None) -> bool:
        groups = self.seen_group_ids
        return groups is None or group_id in groups

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"


class UserSession(db.Model):
    """One signed-in browser. The cookie carries a random token; only its SHA-256 is kept here, and
    every request needs its row: signing out deletes it, so a copy of the cookie stops working."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column(index=True)
