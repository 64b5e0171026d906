"""Campaign, dialer and member forms, and the editable row lists (schedule entries, canned responses)
that campaigns and dialers share.

Row lists live in the form until Save: "+" and "-" post the whole unsaved form, which comes back with a
row added or the selected one removed (renumbered), so nothing typed is lost and nothing is saved.
"""
from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from ..models import DISTRIBUTIONS, MODES, RINGALL_MODES, Campaign, Dialer
from ..models.campaigns import DEFAULT_AUTO_CLOSE, DEFAULT_OUT_OF_HOURS
from ..providers.gsm import MAX_MESSAGE_LENGTH
from ..services.schedules import mask_to_days


def choices(pairs: Any, optgroup: str | None = None) -> list[SelectChoice]:
    """(value, label) pairs as WTForms 3.3 wants them."""
    return [SelectChoice(value, label, optgroup=optgroup) for value, label in pairs]


DAY_CHOICES = choices([(0, _l("Mon")), (1, _l("Tue")), (2, _l("Wed")), (3, _l("Thu")), (4, _l("Fri")),
                       (5, _l("Sat")), (6, _l("Sun"))])
MODE_LABELS = {
    "incall": _l("In call: one at a time, no calls meanwhile"),
    "nocall": _l("No call: several at once, calls ignored"),
    "interaction": _l("Interaction: one at a time, calls allowed"),
    "nopause": _l("No pause: several at once, calls allowed"),
    "ringall": _l("Ring all: offered to everyone, one at a time"),
    "ringallmultiple": _l("Ring all multiple: offered to everyone, several at once"),
}
DISTRIBUTION_LABELS = {
    "rrmemory": _l("round robin with memory"),
    "linear": _l("linear (member order)"),
    "wrandom": _l("weighted random (penalty)"),
}


def strategy_choices() -> list[SelectChoice]:
    """models.STRATEGIES in optgroups by mode (mode × distribution); the two ringall modes stand alone."""
    out: list[SelectChoice] = []
    for mode in MODES:
        label = str(MODE_LABELS[mode])
        if mode in RINGALL_MODES:
            out.append(SelectChoice(mode, label, optgroup=str(_l("Ring all (no distribution)"))))
            continue
        short = label.split(":")[0]
        out.extend(SelectChoice(f"{d}_{mode}", f"{short} · {DISTRIBUTION_LABELS[d]}", optgroup=label)
                   for d in DISTRIBUTIONS)
    return out


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class ScheduleEntryForm(Form):
    days = MultiCheckboxField(_l("Days"), choices=DAY_CHOICES, coerce=int)
    start = TimeField(_l("From"), validators=[InputRequired(_l("Write a time, e.g. 09:00."))])
    end = TimeField(_l("To"), validators=[InputRequired(_l("Write a time, e.g. 18:00."))])


class CannedResponseForm(Form):
    title = StringField(_l("Title"), validators=[DataRequired(_l("Give it a title.")), Length(max=80)])
    body = TextAreaField(_l("Text"), validators=[DataRequired(_l("Write the reply.")), Length(max=4000)])
    # W2: a template of the provider's synced catalog; the typed name below stays for templates not synced.
    template_id = SelectField(_l("WhatsApp template from the catalog"), default="", validate_choice=False,
                              description=_l("Templates synced from the campaign's provider."))
    template_ref = StringField(_l("WhatsApp template"), validators=[Optional(), Length(max=120)],
                               description=_l("Optional: an approved template (ContentSid or template name)."))


def template_choices(fieldlist: FieldList, catalog: list[tuple[Any, str]]) -> None:
    """Each canned response's template select: none, or a template of the catalog (grouped by provider)."""
    status = {"approved": _l("approved"), "pending": _l("pending"), "rejected": _l("rejected"),
              "paused": _l("paused"), "disabled": _l("disabled"), "deleted": _l("deleted")}
    options = [SelectChoice("", str(_l("None (or type its name below)")))] + [
        SelectChoice(str(t.id), f"{t.name} ({t.language}) · {status.get(t.status, t.status)}", optgroup=provider)
        for t, provider in catalog]
    for entry in fieldlist:
        entry.form.template_id.choices = options


class RowsForm(FlaskForm):
    """Only the row lists: what the "+"/"-" fragment renders."""

    schedule = FieldList(FormField(ScheduleEntryForm))
    canned = FieldList(FormField(CannedResponseForm))


# -- "+" and "-" on the unsaved form ----------------------------------------------------------------
ROW_KINDS = ("schedule", "canned")
NEW_ROW = {
    "schedule": [("days", str(d)) for d in range(5)] + [("start", "09:00"), ("end", "18:00")],
    "canned": [("title", ""), ("body", ""), ("template_id", ""), ("template_ref", "")],
}


def edit_rows(formdata: MultiDict) -> tuple[MultiDict, str | None, str | None]:
    """Apply a "+" / "-" (rows_action = "<kind>-add" / "<kind>-remove") to posted form data.

    Returns the new form data (rows renumbered), the kind acted on (None when the post is a save) and a
    note for the user (e.g. nothing selected to remove)."""
    action = formdata.get("rows_action", "")
    kind, _sep, verb = action.partition("-")
    out = MultiDict([(k, v) for k, v in formdata.items(multi=True)
                     if k != "rows_action" and not k.endswith("_selected")])
    if kind not in ROW_KINDS or verb not in ("add", "remove"):
        return out, None, None
    pattern = re.compile(rf"^{kind}-(\d+)-(.+)$")
    rows: dict[int, list[tuple[str, str]]] = {}
    for key, value in out.items(multi=True):
        match = pattern.match(key)
        if match:
            rows.setdefault(int(match.group(1)), []).append((match.group(2), value))
    ordered = [rows[i] for i in sorted(rows)]
    note = None
    if verb == "add":
        ordered.append(NEW_ROW[kind])
    else:
        selected = formdata.get(f"{kind}_selected", "")
        if selected.isdigit() and int(selected) < len(ordered):
            del ordered[int(selected)]
        else:
            note = str(_l("Select an entry in the list first, then press −."))
    rebuilt = MultiDict([(k, v) for k, v in out.items(multi=True) if not pattern.match(k)])
    for index, row in enumerate(ordered):
        for name, value in row:
            rebuilt.add(f"{kind}-{index}-{name}", value)
    return rebuilt, kind, note


def schedule_rows(fieldlist: FieldList) -> list[dict[str, Any]]:
    return [{"days": list(e.days.data or []), "start": e.start.data, "end": e.end.data} for e in fieldlist]


def canned_rows(fieldlist: FieldList) -> list[dict[str, Any]]:
    return [{"title": e.title.data or "", "body": e.body.data or "", "template_ref": e.template_ref.data or "",
             "template_id": int(e.template_id.data) if str(e.template_id.data or "").isdigit() else None}
            for e in fieldlist]


def schedule_data(entries: Any) -> list[dict[str, Any]]:
    return [{"days": mask_to_days(e.days), "start": e.start_time, "end": e.end_time} for e in entries]


def apply_errors(form: Any, errors: dict[str, str]) -> None:
    """Put service errors ("name", "schedule-0-end") beside their fields; unknown keys go to the form."""
    for key, message in errors.items():
        field = _find_field(form, key)
        if field is None:
            form.form_errors.append(message)
            continue
        if not isinstance(field.errors, list):
            field.errors = list(field.errors or [])
        field.errors.append(message)


def _find_field(form: Any, key: str) -> Any:
    parts = key.split("-")
    field = form._fields.get(parts[0]) if hasattr(form, "_fields") else None
    rest = parts[1:]
    while field is not None and rest:
        if isinstance(field, FieldList):
            index = int(rest.pop(0)) if rest[0].isdigit() else -1
            field = field.entries[index] if 0 <= index < len(field.entries) else None
        elif isinstance(field, FormField):
            field = field.form._fields.get(rest.pop(0))
        else:
            return None
    if isinstance(field, FormField):
        return None
    return field


# -- campaign -----------------------------------------------------------------------------------------
class WholeNumberField(IntegerField):
    """An integer with one clear message when the text is not a whole number."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        text = str(valuelist[0]).strip() if valuelist else ""
        if text and not re.fullmatch(r"-?\d+", text):
            self.data = None
            raise ValueError(_l("Write a whole number."))
        super().process_formdata(valuelist)


class InRange(NumberRange):
    """NumberRange that stays quiet when the value could not be read (that error is already shown)."""

    def __call__(self, form: Any, field: Any) -> None:
        if field.data is not None:
            super().__call__(form, field)


def _int(label: Any, low: int, high: int, default: int, description: Any = None) -> WholeNumberField:
    return WholeNumberField(label, default=default, description=description, validators=[
        InputRequired(_l("Write a whole number.")), InRange(low, high, message=_l("Between %(min)s and %(max)s."))])


class CampaignForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give it a name.")), Length(max=80)])
    service_level_target = _int(_l("Service level (%)"), 0, 100, 80,
                                _l("Share of interactions answered within the service level threshold."))
    did = StringField(_l("DID-ports"), validators=[DataRequired(_l("Write the number or id the provider uses.")),
                                                   Length(max=64)],
                      description=_l("Number or id that identifies the campaign at the provider."))
    provider_id = SelectField(_l("SMS provider"), coerce=int, validators=[InputRequired(_l("Pick a provider."))])
    strategy = SelectField(_l("Strategy"), default="rrmemory_nocall")
    security_group_id = SelectField(_l("Security group"), coerce=int,
                                    validators=[InputRequired(_l("Pick a security group."))])
    schedule = FieldList(FormField(ScheduleEntryForm))
    out_of_hours_message = TextAreaField(_l("Out-of-hours message"), default=DEFAULT_OUT_OF_HOURS,
                                         validators=[Length(max=MAX_MESSAGE_LENGTH)])
    language = StringField(_l("WhatsApp templates' language"), validators=[
        Optional(), Regexp(r"^[a-z]{2,3}([_-][A-Za-z]{2,4})?$", message=_l("A language code such as es or en_US."))],
        description=_l("Agents are offered the templates in this language; empty: the centre's."))
    sl_threshold_seconds = _int(_l("Service level (s)"), 1, 86400, 60,
                                _l("Expected time to an agent's first reply."))
    abandon_threshold_seconds = _int(_l("Abandon rate (s)"), 1, 86400, 600,
                                     _l("Waiting time after which a chat counts as abandoned."))
    chat_time_threshold_seconds = _int(_l("Chat time (s)"), 1, 604800, 900,
                                       _l("A conversation longer than this is flagged."))
    acd_max_waiting = _int(_l("ACD"), 0, 100000, 10, _l("Maximum customers waiting to be answered."))
    max_interactions_per_agent = _int(_l("Max interactions per agent"), 1, 100, 3,
                                      _l("Used only by the nocall strategies; the rest stay queued."))
    auto_close_hours = WholeNumberField(
        _l("Close waiting conversations after (hours)"), default=0,
        description=_l("0 (or empty) leaves them waiting until an agent answers or a person closes them."),
        validators=[Optional(), InRange(0, 720, message=_l("Between %(min)s and %(max)s."))])
    auto_close_message = TextAreaField(_l("Message when closing a long wait"), default=DEFAULT_AUTO_CLOSE,
                                       validators=[Length(max=MAX_MESSAGE_LENGTH)])
    enabled = BooleanField(_l("Enabled"), default=True)
    canned = FieldList(FormField(CannedResponseForm))

    def values(self) -> dict[str, Any]:
        return {
            "name": self.name.data.strip(), "service_level_target": self.service_level_target.data,
            "did": self.did.data.strip(), "provider_id": self.provider_id.data, "strategy": self.strategy.data,
            "security_group_id": self.security_group_id.data,
            "out_of_hours_message": self.out_of_hours_message.data or "",
            "language": (self.language.data or "").strip(),
            "sl_threshold_seconds": self.sl_threshold_seconds.data,
            "abandon_threshold_seconds": self.abandon_threshold_seconds.data,
            "chat_time_threshold_seconds": self.chat_time_threshold_seconds.data,
            "acd_max_waiting": self.acd_max_waiting.data,
            "max_interactions_per_agent": self.max_interactions_per_agent.data, "enabled": self.enabled.data,
            "auto_close_hours": self.auto_close_hours.data or 0,
            "auto_close_message": self.auto_close_message.data or "",
        }


def campaign_data(campaign: Campaign) -> dict[str, Any]:
    data = {k: getattr(campaign, k) for k in (
        "name", "service_level_target", "did", "provider_id", "strategy", "security_group_id",
        "out_of_hours_message", "language", "sl_threshold_seconds", "abandon_threshold_seconds",
        "chat_time_threshold_seconds", "acd_max_waiting", "max_interactions_per_agent", "enabled",
        "auto_close_hours", "auto_close_message")}
    data["schedule"] = schedule_data(campaign.schedule)
    data["canned"] = [{"title": c.title, "body": c.body, "template_id": str(c.template_id or ""),
                       "template_ref": "" if c.template_id else c.template_ref or ""}
                      for c in campaign.canned_responses]
    return data


# -- dialer ---------------------------------------------------------------------------------------------
class DialerForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give it a name.")), Length(max=80)])
    provider_id = SelectField(_l("Provider"), coerce=int, validators=[InputRequired(_l("Pick a provider."))])
    security_group_id = SelectField(_l("Security group"), coerce=int,
                                    validators=[InputRequired(_l("Pick a security group."))])
    schedule = FieldList(FormField(ScheduleEntryForm))
    dial_string = StringField(_l("Dial string"), validators=[Length(max=64)],
                              description=_l("Dinstar: the ports in turn, e.g. (0.3) = 0-1-2-3-0…; "
                                             "other providers need none."))
    interval_ms = _int(_l("Time between messages (ms)"), 0, 3_600_000, 1000)
    enabled = BooleanField(_l("Enabled"), default=False, description=_l("It must be enabled before it can start."))
    dncr = BooleanField(_l("DNCR"), default=True, description=_l("Check the do-not-contact list before each send."))

    def values(self) -> dict[str, Any]:
        return {"name": self.name.data.strip(), "provider_id": self.provider_id.data,
                "security_group_id": self.security_group_id.data, "dial_string": self.dial_string.data or "",
                "interval_ms": self.interval_ms.data, "enabled": self.enabled.data, "dncr": self.dncr.data}


def dialer_data(dialer: Dialer) -> dict[str, Any]:
    data = {k: getattr(dialer, k) for k in ("name", "provider_id", "security_group_id", "dial_string",
                                            "interval_ms", "enabled", "dncr")}
    data["schedule"] = schedule_data(dialer.schedule)
    return data


# -- members ----------------------------------------------------------------------------------------------
class MembershipForm(FlaskForm):
    position = WholeNumberField(_l("Order"), validators=[InputRequired(_l("Write a whole number."))])
    penalty = WholeNumberField(_l("Penalty"), validators=[InputRequired(_l("Write a whole number."))])
