"""S4 live: who may follow a dialer's topics, and how its events become out-of-band fragments.

The renderers return the same fragment templates the pages include, with `oob=True`, so a pushed
block and a polled one are the same HTML.
"""
from __future__ import annotations

from typing import Any

from flask import render_template

from ..extensions import db
from ..live.registry import renderer, topic_check
from ..models import Dialer
from ..security import visible_dialers, visible_group_ids
from ..services import bulk_loads
from ..services.dialer.counts import counts, status
from ..templating import oob_remove


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 12 else None


@topic_check("dialers")
def may_follow_group(user: Any, rest: str) -> bool:
    """`dialers:<security group>`: the group's dialer list; admins any group, supervisors their own."""
    group_id = _int(rest)
    return group_id is not None and user.may_supervise and user.sees_group(group_id)


@topic_check("dialer")
def may_follow_dialer(user: Any, rest: str) -> bool:
    """`dialer:<id>`: one dialer's dashboard, when the user may see that dialer."""
    dialer_id = _int(rest)
    if dialer_id is None or not user.may_supervise:
        return False
    return db.session.scalar(visible_dialers(user).where(Dialer.id == dialer_id).with_only_columns(
        Dialer.id)) is not None


def counts_block(dialer: Dialer, *, oob: bool = False) -> str:
    return render_template("dialers/_counts.html", dialer=dialer, counts=counts(dialer.id), oob=oob)


def state_block(dialer: Dialer, *, oob: bool = False) -> str:
    return render_template("dialers/_state.html", dialer=dialer, status=status(dialer), oob=oob)


def loads_block(dialer: Dialer, *, oob: bool = False) -> str:
    return render_template("dialers/_loads.html", dialer=dialer, loads=bulk_loads.loads_for(dialer.id), oob=oob)


def list_row(dialer: Dialer, *, oob: bool = False) -> str:
    return render_template("dialers/_row.html", dialer=dialer, status=status(dialer), oob=oob)


def _dialer(event: dict[str, Any]) -> Dialer | None:
    dialer_id = event.get("data", {}).get("dialer_id")
    return db.session.get(Dialer, int(dialer_id)) if dialer_id is not None else None


@renderer("dialer", "dialer.counts")
def render_counts(event: dict[str, Any], user: Any) -> str | None:
    dialer = _dialer(event)
    return counts_block(dialer, oob=True) if dialer else None


@renderer("dialer", "dialer.state", per_viewer=True)
def render_state(event: dict[str, Any], user: Any) -> str | None:
    """Per viewer: the block carries the Start/Stop form, whose CSRF token is the viewer's own."""
    dialer = _dialer(event)
    return state_block(dialer, oob=True) if dialer else None


@renderer("dialer", "bulk.progress", per_viewer=True)
def render_loads(event: dict[str, Any], user: Any) -> str | None:
    """A bulk load was claimed, moved on or finished. Per viewer: a finished one carries a Dismiss form."""
    dialer = _dialer(event)
    return loads_block(dialer, oob=True) if dialer else None


@renderer("dialers", "dialer.state")
def render_row(event: dict[str, Any], user: Any) -> str | None:
    dialer = _dialer(event)
    group = str(event.get("topic", "")).partition(":")[2]
    if dialer is None or str(dialer.security_group_id) != group:
        # Deleted, or moved to another group: the row leaves this group's list.
        dialer_id = int(event.get("data", {}).get("dialer_id") or 0)
        return oob_remove(f"dialer-{dialer_id}-row")
    return list_row(dialer, oob=True)


def list_topics(user: Any) -> list[str]:
    """The list page follows each group the user sees (admins: every group)."""
    return [f"dialers:{gid}" for gid in visible_group_ids(user)]
