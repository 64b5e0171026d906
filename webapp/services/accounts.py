"""Sign-in rules: throttling after repeated failures, server-side sessions."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from ..extensions import db
from ..live.events import publish
from ..models import User, UserSession, utcnow


@dataclass
class LoginResult:
    user: User | None
    locked_seconds: int = 0


def authenticate(username: str, password: str, *, max_failures: int, lock_seconds: int) -> LoginResult:
    """Check a password; after `max_failures` attempts without the right one the account waits
    `lock_seconds`, even the right password.

    Each attempt first takes a slot in the database (`_reserve_attempt`, one conditional UPDATE,
    committed at once) and only then is its password checked: simultaneous attempts, on any number
    of web processes, get at most `max_failures` passwords checked. The right one frees the slots.
    Unknown users take the same time as known ones (a hash is always checked) so names cannot be
    probed by timing.
    """
    user = db.session.scalar(sa.select(User).where(User.username == username.strip()))
    if user is None:
        User(password_hash=_DUMMY_HASH).check_password(password)
        return LoginResult(None)
    now = utcnow()
    if not _reserve_attempt(user.id, now, max_failures, lock_seconds):
        return LoginResult(None, _locked_seconds(user.id, now, lock_seconds))
    if not user.check_password(password) or not user.active:
        return LoginResult(None)  # the slot stays taken: it counts as a failure
    db.session.execute(sa.update(User).where(User.id == user.id)
                       .values(failed_logins=0, locked_until=None, last_login_at=now))
    return LoginResult(user)


def _reserve_attempt(user_id: int, now: datetime, max_failures: int, lock_seconds: int) -> bool:
    """Count one attempt unless the account is locked; the attempt that reaches `max_failures` locks it
    (before its own password is checked, so that a crash cannot leave the count full and no lock).
    An expired lock starts the count again. The database serializes concurrent UPDATEs of the row
    and re-reads it for each, so exactly one attempt sees each count. It commits at once (the one
    commit a service makes here: nothing else is pending at sign-in), before the slow hash, so other
    processes see the count and no row lock is held meanwhile."""
    users = User.__table__
    expired = sa.and_(users.c.locked_until.is_not(None), users.c.locked_until <= now)
    count = sa.case((expired, 1), else_=users.c.failed_logins + 1)
    stmt = (sa.update(users)
            .where(users.c.id == user_id, sa.or_(users.c.locked_until.is_(None), users.c.locked_until <= now))
            .values(failed_logins=count,
                    locked_until=sa.case((count >= max_failures, now + timedelta(seconds=lock_seconds)),
                                         else_=None)))
    taken = db.session.execute(stmt).rowcount == 1
    db.session.commit()
    return taken


def _locked_seconds(user_id: int, now: datetime, lock_seconds: int) -> int:
    until = db.session.scalar(sa.select(User.locked_until).where(User.id == user_id))
    return int((until - now).total_seconds()) + 1 if until and until > now else lock_seconds


_DUMMY_HASH = "scrypt:32768:8:1$abcdefghijklmnop$" + "0" * 128


# -- sessions --------------------------------------------------------------------------------
def session_lifetime() -> timedelta:
    return timedelta(hours=current_app.config["SESSION_LIFETIME_HOURS"])


def start_session(user: User) -> str:
    """A server-side session for a browser that just signed in; returns the token for its cookie.
    Sessions past SESSION_LIFETIME_HOURS (anyone's) are dropped on the way."""
    now = utcnow()
    db.session.execute(sa.delete(UserSession).where(UserSession.created_at < now - session_lifetime()))
    token = secrets.token_urlsafe(32)
    db.session.add(UserSession(user_id=user.id, token_hash=_digest(token), created_at=now))
    return token


def find_session(user_id: int, token: str) -> tuple[User, int] | None:
    """The user and the session id a cookie's token names, while the session lasts."""
    row = db.session.execute(
        sa.select(User, UserSession.id).join(UserSession, UserSession.user_id == User.id)
        .where(User.id == user_id, UserSession.token_hash == _digest(token),
               UserSession.created_at >= utcnow() - session_lifetime())).first()
    return (row[0], row[1]) if row else None


def session_lasts(user_id: int, version: int, session_id: int | None) -> bool:
    """Whether a session found earlier (a long-lived socket's) is still valid."""
    row = db.session.execute(
        sa.select(User.active, User.session_version).join(UserSession, UserSession.user_id == User.id)
        .where(User.id == user_id, UserSession.id == session_id,
               UserSession.created_at >= utcnow() - session_lifetime())).first()
    return row is not None and row.active and row.session_version == version


def end_session(user: User, session_id: int) -> None:
    """Sign-out: that browser's session is gone for every process; its sockets close."""
    db.session.execute(sa.delete(UserSession).where(UserSession.id == session_id,
                                                    UserSession.user_id == user.id))
    publish(f"user:{user.id}", "session.ended", session_id=session_id)


def end_all_sessions(user: User) -> None:
    """Every session of the user ends now (a supervisor's log-out, a new password, a deactivation):
    requests go to sign-in and every socket of the user closes at once."""
    user.session_version = (user.session_version or 1) + 1
    db.session.execute(sa.delete(UserSession).where(UserSession.user_id == user.id))
    publish(f"user:{user.id}", "session.ended")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
