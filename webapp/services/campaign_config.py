"""Configuration of inbound campaigns (C1-C3), their members (M1-M2) and dialers (D1-D2).

Saves take plain values, check what needs the database, add to the session and audit; the caller
commits once, so a campaign with its schedule and canned responses is saved whole or not at all.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import time
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import ngettext

from ..extensions import db
from ..models import (
    Campaign,
    CannedResponse,
    Dialer,
    Interaction,
    InteractionStatus,
    Membership,
    Provider,
    Role,
    ScheduleEntry,
    User,
    WhatsAppTemplate,
    voice_campaign_members_table,
)
from . import audit, dialstring
from .interactions.customers import did_matches
from .records import Invalid, Refused, name_errors, replace_rows
from .schedules import days_to_mask


def _check_common(model: Any, obj: Any, values: dict[str, Any], actor: User) -> dict[str, str]:
    errors = name_errors(model, values["name"], obj.id if obj else None)
    if not actor.sees_group(values["security_group_id"]):
        errors["security_group_id"] = _("Pick one of your security groups.")
    if db.session.get(Provider, values["provider_id"]) is None:
        errors["provider_id"] = _("Pick a provider.")
    return errors


def _set_schedule(owner: Campaign | Dialer, rows: Sequence[dict[str, Any]]) -> None:
    """Replace the schedule with `rows` ({days: [0..6], start: time, end: time}), reusing rows in place."""
    def fill(entry: ScheduleEntry, row: dict[str, Any], _index: int) -> None:
        entry.days = days_to_mask(row["days"])
        entry.start_time = row["start"]
        entry.end_time = row["end"]

    replace_rows(owner.schedule, rows, ScheduleEntry, fill)


def _set_canned(campaign: Campaign, rows: Sequence[dict[str, Any]]) -> None:
    def fill(item: CannedResponse, row: dict[str, Any], index: int) -> None:
        item.title = row["title"].strip()
        item.body = row["body"]
        template = db.session.get(WhatsAppTemplate, row["template_id"]) if row.get("template_id") else None
        # W2: a catalog template is sent by its name (Meta) or ContentSid (Twilio), as a typed one is.
        item.template_id = template.id if template is not None else None
        item.template_ref = template.ref[:120] if template is not None else (
            (row.get("template_ref") or "").strip() or None)
        item.position = index

    replace_rows(campaign.canned_responses, rows, CannedResponse, fill)


def canned_errors(provider_id: int | None, rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """A catalog template must be one of the campaign's provider (the one that will send it)."""
    errors = {}
    for index, row in enumerate(rows):
        if not row.get("template_id"):
            continue
        template = db.session.get(WhatsAppTemplate, row["template_id"])
        if template is None:
            errors[f"canned-{index}-template_id"] = _("That template is no longer in the catalog; pick another.")
        elif template.provider_id != provider_id:
            errors[f"canned-{index}-template_id"] = _("That template belongs to another provider: pick one of the "
                                                      "campaign's provider, or type its name.")
    return errors


def schedule_errors(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Per-row checks: at least one day, and a range that is not empty. An end before the start is an
    overnight range (22:00-06:00 runs into the next morning), as ScheduleEntry.covers reads it."""
    errors = {}
    for index, row in enumerate(rows):
        if not row.get("days"):
            errors[f"schedule-{index}-days"] = _("Tick at least one day.")
        start, end = row.get("start"), row.get("end")
        if isinstance(start, time) and isinstance(end, time) and start == end:
            errors[f"schedule-{index}-end"] = _("The end is the same as the start; the range would be empty.")
    return errors


# -- campaigns --------------------------------------------------------------------------------
CAMPAIGN_FIELDS = ("name", "service_level_target", "did", "provider_id", "strategy", "security_group_id",
                   "out_of_hours_message", "language", "sl_threshold_seconds", "abandon_threshold_seconds",
                   "chat_time_threshold_seconds", "acd_max_waiting", "max_interactions_per_agent", "enabled",
                   "auto_close_hours", "auto_close_message")


def did_owner(campaign: Campaign | None, provider_id: int, did: str) -> Campaign | None:
    """Another campaign of the provider already answering this DID (the same number, or the same number
    written national vs international): inbound traffic could reach only one of them."""
    others = db.session.scalars(sa.select(Campaign).where(
        Campaign.provider_id == provider_id, Campaign.id != (campaign.id if campaign else -1)).order_by(Campaign.id))
    return next((c for c in others if max(did_matches(c.did, did), did_matches(did, c.did)) > 0), None)


def campaign_errors(campaign: Campaign | None, values: dict[str, Any], actor: User) -> dict[str, str]:
    """What the database refuses of a campaign (a name taken, a DID another campaign of the provider
    answers), said field by field; also what a save lost to a simultaneous one hears (IntegrityError)."""
    errors = _check_common(Campaign, campaign, values, actor)
    other = did_owner(campaign, values["provider_id"], values["did"])
    if other is not None:
        errors["did"] = _("Campaign “%(name)s” already uses this DID on this provider (%(did)s); each campaign "
                          "needs its own.", name=other.name, did=other.did)
    return errors


def save_campaign(campaign: Campaign | None, values: dict[str, Any], schedule: Sequence[dict[str, Any]],
                  canned: Sequence[dict[str, Any]], actor: User) -> Campaign:
    """Create or update a campaign with its schedule and canned responses, all or nothing."""
    errors = campaign_errors(campaign, values, actor)
    errors.update(schedule_errors(schedule))
    errors.update(canned_errors(values["provider_id"], canned))
    if errors:
        raise Invalid(errors)
    creating = campaign is None
    if creating:
        campaign = Campaign()
        db.session.add(campaign)
    changed = [k for k in CAMPAIGN_FIELDS if getattr(campaign, k) != values[k]]
    for key in CAMPAIGN_FIELDS:
        setattr(campaign, key, values[key])
    _set_schedule(campaign, schedule)
    _set_canned(campaign, canned)
    db.session.flush()
    audit.record(actor, "campaign.create" if creating else "campaign.update", "campaign", campaign.id,
                 name=campaign.name, changed=changed, schedule_entries=len(schedule), canned_responses=len(canned))
    return campaign


def open_interactions(campaign: Campaign) -> int:
    return db.session.scalar(sa.select(sa.func.count(Interaction.id)).where(
        Interaction.campaign_id == campaign.id, Interaction.status.in_(InteractionStatus.OPEN))) or 0


def delete_campaign(campaign: Campaign, actor: User) -> None:
    """Refused while customers are still being served in it: close or transfer them first."""
    count = open_interactions(campaign)
    if count:
        raise Refused(ngettext("“%(name)s” has %(num)s open interaction; close or transfer it first, "
                               "or untick Enabled to stop new traffic.",
                               "“%(name)s” has %(num)s open interactions; close or transfer them first, "
                               "or untick Enabled to stop new traffic.", count, name=campaign.name))
    audit.record(actor, "campaign.delete", "campaign", campaign.id, name=campaign.name)
    db.session.delete(campaign)


# -- members ------------------------------------------------------------------------------------
def agents_without_voice(agents: Iterable[User]) -> list[User]:
    agents = list(agents)
    with_voice = set(db.session.scalars(sa.select(voice_campaign_members_table.c.user_id).where(
        voice_campaign_members_table.c.user_id.in_([a.id for a in agents] or [-1]))))
    return [a for a in agents if a.id not in with_voice]


def add_members(campaigns: Sequence[Campaign], agents: Sequence[User], actor: User) -> int:
    """M1/M2: add every agent to every campaign (existing members stay as they are). Refused as a whole,
    naming them, when an agent is in no voice campaign. Returns how many memberships were created."""
    if not campaigns or not agents:
        raise Refused(_("Pick at least one campaign and one agent."))
    not_agents = [a.display_name for a in agents if a.role != Role.AGENT.value]
    if not_agents:
        raise Refused(_("Only agents can be members: %(names)s.", names=", ".join(not_agents)))
    missing = agents_without_voice(agents)
    if missing:
        raise Refused(ngettext("Nothing was added: %(names)s belongs to no voice campaign, so they would receive "
                               "no interactions. Add them to a voice campaign first.",
                               "Nothing was added: %(names)s belong to no voice campaign, so they would receive no "
                               "interactions. Add them to a voice campaign first.",
                               len(missing), names=", ".join(a.display_name for a in missing)))
    created = 0
    for campaign in campaigns:
        present = {m.user_id for m in campaign.memberships}
        next_position = max((m.position for m in campaign.memberships), default=0)
        for agent in agents:
            if agent.id in present:
                continue
            next_position += 1
            campaign.memberships.append(Membership(user_id=agent.id, position=next_position, penalty=0))
            created += 1
        audit.record(actor, "membership.add", "campaign", campaign.id, campaign=campaign.name,
                     agents=[a.username for a in agents if a.id not in present])
    db.session.flush()
    return created


def remove_members(campaigns: Sequence[Campaign], agents: Sequence[User], actor: User) -> int:
    if not campaigns or not agents:
        raise Refused(_("Pick at least one campaign and one agent."))
    agent_ids = {a.id for a in agents}
    removed = 0
    for campaign in campaigns:
        gone = [m for m in campaign.memberships if m.user_id in agent_ids]
        for membership in gone:
            campaign.memberships.remove(membership)
        removed += len(gone)
        if gone:
            audit.record(actor, "membership.remove", "campaign", campaign.id, campaign=campaign.name,
                         agents=sorted(m.user.username for m in gone))
    db.session.flush()
    return removed


def update_membership(membership: Membership, position: int, penalty: int, actor: User) -> None:
    """Order (for `linear`) and penalty 0-100 (for `wrandom`)."""
    errors = {}
    if not 0 <= penalty <= 100:
        errors["penalty"] = _("The penalty goes from 0 to 100.")
    if not 0 <= position <= 9999:
        errors["position"] = _("The order goes from 0 to 9999.")
    if errors:
        raise Invalid(errors)
    changed = {k: v for k, v in (("position", position), ("penalty", penalty)) if getattr(membership, k) != v}
    for key, value in changed.items():
        setattr(membership, key, value)
    if changed:
        audit.record(actor, "membership.update", "membership", membership.id,
                     campaign=membership.campaign.name, agent=membership.user.username, **changed)


# -- dialers --------------------------------------------------------------------------------------
DIALER_FIELDS = ("name", "provider_id", "security_group_id", "dial_string", "interval_ms", "enabled", "dncr")


def save_dialer(dialer: Dialer | None, values: dict[str, Any], schedule: Sequence[dict[str, Any]],
                actor: User) -> Dialer:
    """Create or update a dialer; the dial string is parsed for the provider's type into `ports`."""
    errors = _check_common(Dialer, dialer, values, actor)
    errors.update(schedule_errors(schedule))
    provider = db.session.get(Provider, values["provider_id"])
    ports: list[int] = []
    if provider is not None:
        try:
            ports = dialstring.parse(values["dial_string"], provider.type)
        except dialstring.DialStringError as exc:
            errors["dial_string"] = str(exc)
    if values["interval_ms"] < 0:
        errors["interval_ms"] = _("The time between messages cannot be negative.")
    if errors:
        raise Invalid(errors)
    creating = dialer is None
    if creating:
        dialer = Dialer()
        db.session.add(dialer)
    values = {**values, "dial_string": values["dial_string"].strip()}
    changed = [k for k in DIALER_FIELDS if getattr(dialer, k) != values[k]]
    for key in DIALER_FIELDS:
        setattr(dialer, key, values[key])
    dialer.ports = ports
    _set_schedule(dialer, schedule)
    db.session.flush()
    audit.record(actor, "dialer.create" if creating else "dialer.update", "dialer", dialer.id,
                 name=dialer.name, changed=changed, ports=ports, schedule_entries=len(schedule))
    return dialer


def delete_dialer(dialer: Dialer, actor: User) -> None:
    """Refused while it is running; its spool goes with it."""
    if dialer.active:
        raise Refused(_("“%(name)s” is running; stop it on its dashboard first.", name=dialer.name))
    audit.record(actor, "dialer.delete", "dialer", dialer.id, name=dialer.name)
    db.session.delete(dialer)
