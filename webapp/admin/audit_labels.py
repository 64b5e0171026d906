"""The audit log in the reader's language: actions, objects and detail keys in words, and the names of
changed fields as their forms label them (one home for a field's name: its form)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms.fields.core import UnboundField

from ..campaigns.forms import CampaignForm, DialerForm, MembershipForm
from ..models import AuditEntry
from ..providers import TYPES
from .forms import BreakTypeForm, GroupForm, ProviderForm, UserForm, VoiceCampaignForm

OBJECTS = {"user": _l("User"), "provider": _l("Provider"), "campaign": _l("Campaign"), "dialer": _l("Dialer"),
           "voice_campaign": _l("Voice campaign"), "security_group": _l("Security group"),
           "break_type": _l("Break type"), "membership": _l("Membership")}
VERBS = {"create": _l("created"), "update": _l("changed"), "delete": _l("deleted"), "save": _l("saved"),
         "add": _l("added"), "remove": _l("removed")}
# Actions that are not "<object>.<verb>" of the table above.
ACTIONS = {
    "agent.pause": _l("Agent put in a break"), "agent.resume": _l("Agent back from a break"),
    "agent.logout": _l("Agent logged out"), "agent.chat": _l("Chat line to an agent"),
    "agent.spy": _l("Conversations spied on"), "agent.screen": _l("Agent's screen watched"),
    "agent.info": _l("Agent's details read"), "dialer.start": _l("Dialer started"),
    "dialer.stop": _l("Dialer stopped"), "dialer.cancel_pending": _l("Pending messages cancelled"),
    "dialer.single_message": _l("Single message queued"), "dialer.review_resend": _l("Message to review resent"),
    "dialer.review_cancel": _l("Message to review cancelled"),
}
# Detail keys the services write besides the fields of a form.
DETAIL = {
    "name": _l("Name"), "changed": _l("Changed"), "schedule_entries": _l("Schedule entries"),
    "canned_responses": _l("Canned responses"), "username": _l("Username"), "campaign": _l("Campaign"),
    "agents": _l("Agents"), "agent": _l("Agent"), "members": _l("Agents"), "type": _l("Type"),
    "credentials_changed": _l("Credentials changed"), "break_type": _l("Break"),
    "requeued": _l("Back to the queue"), "handed_to": _l("Handed to an agent"), "chat_id": _l("Chat line"),
    "interactions": _l("Conversations"), "count": _l("How many"), "destination": _l("Destination"),
    "message_id": _l("Message"), "ports": _l("Ports"), "security_groups": _l("Security groups"),
    "provider_id": _l("Provider"), "options": _l("Options"), "to": _l("To"),
}
FORMS = (CampaignForm, DialerForm, MembershipForm, UserForm, GroupForm, BreakTypeForm, VoiceCampaignForm,
         ProviderForm)


@functools.cache
def field_labels() -> dict[str, Any]:
    """Every form field's label by field name (the first form naming a field wins), then the provider
    types' credential and option fields."""
    labels: dict[str, Any] = {}
    for form in FORMS:
        for klass in form.__mro__:
            for name, field in vars(klass).items():
                if isinstance(field, UnboundField) and name not in labels:
                    label = field.args[0] if field.args else field.kwargs.get("label")
                    if label is not None:
                        labels[name] = label
    for meta in TYPES.values():
        for field in meta.credentials + meta.options:
            labels.setdefault(field.key, field.label)
    return labels


def action_label(action: str) -> str:
    if action in ACTIONS:
        return str(ACTIONS[action])
    kind, _, verb = action.partition(".")
    if kind in OBJECTS and verb in VERBS:
        return f"{OBJECTS[kind]} {VERBS[verb]}"
    return action


def _word(key: str) -> str:
    label = DETAIL.get(key) or field_labels().get(key)
    return str(label) if label is not None else key


def _value(key: str, value: Any) -> str:
    if key in ("changed", "credentials_changed") and isinstance(value, list):
        return ", ".join(_word(v) for v in value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(_l("yes") if value else _l("no"))
    return "" if value is None else str(value)


@dataclass(frozen=True)
class AuditRow:
    entry: AuditEntry
    action: str
    target: str
    detail: list[tuple[str, str]]


def rows(entries: list[AuditEntry]) -> list[AuditRow]:
    return [AuditRow(e, action_label(e.action), str(OBJECTS.get(e.target_type, e.target_type)),
                     [(_word(k), _value(k, v)) for k, v in (e.detail or {}).items()]) for e in entries]
