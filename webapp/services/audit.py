"""The audit log: every admin and supervisor change leaves one entry (who, what, on what, when)."""
from __future__ import annotations

from typing import Any

from ..extensions import db
from ..models import AuditEntry, User


def _client_ip() -> str | None:
    # The one place a service peeks at the request: the actor's address, when there is a request.
    from flask import has_request_context, request

    if not has_request_context():
        return None
    return (request.remote_addr or "")[:64] or None


def _plain(value: Any) -> Any:
    """Detail must be JSON: sets and tuples become lists, anything else odd becomes its text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def record(actor: User | None, action: str, target_type: str, target_id: int | None, **detail: Any) -> AuditEntry:
    """Add an audit entry (the caller commits, so it lands with the change it describes).

    action: a dotted verb such as "campaign.create"; target_type: "campaign", "user", ...;
    detail: JSON-able facts (changed field names, names of what was touched). Never secrets.
    """
    entry = AuditEntry(actor_id=getattr(actor, "id", None), action=action[:64], target_type=target_type[:32],
                       target_id=target_id, detail=_plain(detail), ip=_client_ip())
    db.session.add(entry)
    return entry
