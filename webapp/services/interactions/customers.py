"""Who the customer is: their number, the campaign a DID names, the STOP keyword and do-not-contact,
the lock that serialises one customer's messages, and their conversations."""
from __future__ import annotations

import hashlib
import re
import unicodedata

import sqlalchemy as sa
from flask import current_app

from ...extensions import db
from ...models import Campaign, Interaction, InteractionStatus, Provider
from .. import dnc, phones


def gateway_address(raw: str | None) -> str:
    """A number as a gateway writes it, without the `whatsapp:` prefix of WhatsApp addresses."""
    return (raw or "").strip().removeprefix("whatsapp:")


def normalise_number(raw: str | None, region: str | None = None) -> str | None:
    """E.164 for a number typed or reported in any usual form (`phones.normalise`), or None when invalid."""
    return phones.normalise(gateway_address(raw), region)


def customer_number(raw: str) -> str:
    """The number a gateway reports for a customer, as stored: E.164 when it reads as one, else as given."""
    raw = gateway_address(raw)
    if raw.startswith("+"):
        return raw
    return normalise_number(raw) or raw


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")


def did_matches(did: str, to: str) -> int:
    """2 for the same DID, 1 for the same number written national vs international, 0 otherwise."""
    did = gateway_address(did)
    to = gateway_address(to)
    if not did or not to:
        return 0
    a, b = _digits(did), _digits(to)
    if not a or not b or re.search(r"[A-Za-z]", did):
        return 2 if did.casefold() == to.casefold() else 0  # alphanumeric sender ids
    if a == b:
        return 2
    a, b = a.lstrip("0"), b.lstrip("0")
    short, long_ = sorted((a, b), key=len)
    return 1 if len(short) >= 7 and long_.endswith(short) else 0


def find_campaign(provider: Provider, to: str) -> Campaign | None:
    """The provider's campaign whose DID is `to`; a provider with one campaign takes everything."""
    campaigns = db.session.scalars(sa.select(Campaign).where(Campaign.provider_id == provider.id)
                                   .order_by(Campaign.id)).all()
    scored = sorted(((did_matches(c.did, to), -c.id, c) for c in campaigns), key=lambda t: t[:2], reverse=True)
    if scored and scored[0][0] > 0:
        return scored[0][2]
    if len(campaigns) == 1:
        return campaigns[0]
    return None


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[\s.!¡?¿,;:]+", " ", text).strip().upper()


def is_stop_keyword(body: str) -> bool:
    keywords = {_fold(k) for k in current_app.config.get("STOP_KEYWORDS", ())}
    return _fold(body) in keywords


def on_do_not_contact(number: str, campaign_id: int) -> bool:
    """Listed for this campaign, or for everyone."""
    return dnc.is_blocked(number, campaign_id=campaign_id)


def add_do_not_contact(number: str, campaign_id: int, source: str) -> bool:
    """Put a number on the campaign's do-not-contact list; False when it was already there."""
    if on_do_not_contact(number, campaign_id):
        return False
    return dnc.add(number, campaign_id=campaign_id, source=source)


def _lock_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def lock_customer(campaign_id: int, number: str) -> None:
    """Serialise messages of one customer in one campaign (so two at once open one interaction)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(f"cust:{campaign_id}:{number}"))))
    else:  # SQLite: taking the write lock serialises every writer
        db.session.execute(sa.update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id)
                           .values(rr_last_user_id=Campaign.__table__.c.rr_last_user_id))


def open_interaction(campaign_id: int, number: str) -> Interaction | None:
    return db.session.scalar(sa.select(Interaction).where(
        Interaction.campaign_id == campaign_id, Interaction.customer_number == number,
        Interaction.status.in_(InteractionStatus.OPEN)).order_by(Interaction.id.desc()).limit(1)
        .execution_options(populate_existing=True))


def earlier_interactions(interaction: Interaction, limit: int = 20) -> list[Interaction]:
    """A2: the same customer's other conversations, newest first, in campaigns of the same security group."""
    return list(db.session.scalars(
        sa.select(Interaction).join(Campaign, Campaign.id == Interaction.campaign_id)
        .where(Interaction.customer_number == interaction.customer_number, Interaction.id != interaction.id,
               Campaign.security_group_id == interaction.campaign.security_group_id)
        .order_by(Interaction.created_at.desc(), Interaction.id.desc()).limit(limit)))
