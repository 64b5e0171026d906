"""F2 / D2: the do-not-contact list (the manual's DNCR / NDCR "blacklist").

An entry's scope is everyone (dialer and campaign both empty), one dialer, or
one inbound campaign. Numbers are stored normalised (`normalise`): E.164 when
valid, else their digits (with a leading "+" if given), so the spool's E.164
destinations compare by plain equality.

The table has no unique constraint: on PostgreSQL NULLs are distinct in one,
so (phone, NULL, NULL) could be stored twice anyway. `add` looks for the same
scope with IS NULL where a scope is empty, inside the caller's transaction;
`blocked_among` and `is_blocked` are correct even if a race stored a twin.
The file upload lives in `ingest.do_not_contact.load_dnc`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

import sqlalchemy as sa

from ..extensions import db
from ..models import DoNotContact
from . import phones

_E164_SHAPE = re.compile(r"\+[1-9][0-9]{5,14}")
_DIGITS = re.compile(r"[0-9]+")


def normalise(phone: str, region: str | None = None) -> str | None:
    """E.164 when valid ("098344384" → "+59898344384"), else "+"/digits as given; None without digits."""
    e164 = phones.normalise(phone, region)
    if e164 is not None:
        return e164
    digits = "".join(_DIGITS.findall(phone))
    if not digits:
        return None
    return ("+" if phone.strip().startswith("+") else "") + digits


def _scope(dialer_id: int | None, campaign_id: int | None) -> list[sa.ColumnElement[bool]]:
    """The exact scope, NULL-safe (`= NULL` would never match)."""
    return [DoNotContact.dialer_id.is_(None) if dialer_id is None else DoNotContact.dialer_id == dialer_id,
            DoNotContact.campaign_id.is_(None) if campaign_id is None else DoNotContact.campaign_id == campaign_id]


def add(phone: str, *, dialer_id: int | None = None, campaign_id: int | None = None,
        source: str = "manual") -> bool:
    """List `phone` for this scope; False (and no new row) when it already is or has no digits."""
    number = normalise(phone)
    if number is None:
        return False
    exists = db.session.scalar(sa.select(DoNotContact.id).where(
        DoNotContact.phone == number, *_scope(dialer_id, campaign_id)).limit(1))
    if exists is not None:
        return False
    db.session.add(DoNotContact(phone=number, dialer_id=dialer_id, campaign_id=campaign_id, source=source))
    db.session.flush()
    return True


def remove(phone: str, *, dialer_id: int | None = None, campaign_id: int | None = None) -> int:
    """Unlist `phone` for exactly this scope (not the others); returns the rows removed."""
    number = normalise(phone)
    if number is None:
        return 0
    result = db.session.execute(sa.delete(DoNotContact).where(
        DoNotContact.phone == number, *_scope(dialer_id, campaign_id)))
    return result.rowcount or 0


def _applies(dialer_id: int | None, campaign_id: int | None) -> sa.ColumnElement[bool]:
    """Entries that bind this dialer/campaign: global ones, and those of the dialer or the campaign."""
    clauses = [sa.and_(DoNotContact.dialer_id.is_(None), DoNotContact.campaign_id.is_(None))]
    if dialer_id is not None:
        clauses.append(DoNotContact.dialer_id == dialer_id)
    if campaign_id is not None:
        clauses.append(DoNotContact.campaign_id == campaign_id)
    return sa.or_(*clauses)


def is_blocked(phone: str, *, dialer_id: int | None = None, campaign_id: int | None = None) -> bool:
    """True when listed for everyone, for this dialer, or for this campaign."""
    number = normalise(phone)
    if number is None:
        return False
    found = db.session.scalar(sa.select(DoNotContact.id).where(
        DoNotContact.phone == number, _applies(dialer_id, campaign_id)).limit(1))
    return found is not None


def blocked_among(phones_: Iterable[str], *, dialer_id: int | None) -> set[str]:
    """Which of `phones_` (returned normalised) this dialer must not message; one query for the batch.

    Strings already shaped like E.164 are taken as normalised (the spool stores them so).
    """
    numbers = set()
    for phone in phones_:
        number = phone if _E164_SHAPE.fullmatch(phone) else normalise(phone)
        if number is not None:
            numbers.add(number)
    return listed_among(numbers, dialer_id=dialer_id)


def listed_among(numbers: set[str], *, dialer_id: int | None) -> set[str]:
    """blocked_among for numbers already normalised (the bulk load's E.164 destinations)."""
    if not numbers:
        return set()
    rows = db.session.scalars(sa.select(DoNotContact.phone).where(
        DoNotContact.phone.in_(sorted(numbers)), _applies(dialer_id, None)).distinct())
    return set(rows)
