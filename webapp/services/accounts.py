"""Sign-in rules: throttling after repeated failures, agent state on sign-in and sign-out."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from ..extensions import db
from ..models import AgentState, User, utcnow


@dataclass
class LoginResult:
    user: User | None
    locked_seconds: int = 0


def authenticate(username: str, password: str, *, max_failures: int, lock_seconds: int) -> LoginResult:
    """Check a password; after `max_failures` wrong ones in a row the account waits `lock_seconds`.

    The lock is in the database so every web process enforces it. Unknown users take the
    same time as known ones (a hash is always checked) so names cannot be probed by timing.
    """
    user = db.session.scalar(sa.select(User).where(User.username == username.strip()))
    now = utcnow()
    if user is not None and user.locked_until and user.locked_until > now:
        return LoginResult(None, int((user.locked_until - now).total_seconds()) + 1)
    if user is None:
        User(password_hash=_DUMMY_HASH).check_password(password)
        return LoginResult(None)
    if not user.check_password(password) or not user.active:
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.locked_until = now + timedelta(seconds=lock_seconds)
            user.failed_logins = 0
        return LoginResult(None)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return LoginResult(user)


_DUMMY_HASH = "scrypt:32768:8:1$abcdefghijklmnop$" + "0" * 128


def set_state(user: User, state: AgentState, break_type_id: int | None = None) -> bool:
    """Change an agent's state; the timestamp moves only when the state really changes."""
    changed = user.state != state.value or user.break_type_id != break_type_id
    if changed:
        user.state = state.value
        user.break_type_id = break_type_id if state.in_break else None
        user.state_changed_at = utcnow()
    return changed
