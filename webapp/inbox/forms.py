"""The agent workspace's forms; choices are filled per request from what the agent may see."""
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    FileField,
    HiddenField,
    IntegerField,
    MultipleFileField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from ..models import Campaign, WhatsAppTemplate
from ..providers.gsm import MAX_MESSAGE_LENGTH
from ..services.chat import MAX_LINE
from ..services.outbound_media import Upload

DISPOSITIONS = (
    ("resolved", _l("Resolved")),
    ("info_given", _l("Information given")),
    ("follow_up", _l("Needs follow-up")),
    ("sale", _l("Sale")),
    ("no_answer", _l("Customer did not answer")),
    ("wrong_number", _l("Wrong number")),
    ("spam", _l("Spam")),
)


def choices(pairs: object) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]  # type: ignore[attr-defined]


class SendForm(FlaskForm):
    body = TextAreaField(_l("Message"), validators=[Optional(), Length(max=MAX_MESSAGE_LENGTH)])
    # A WhatsApp template chosen from the canned responses (outside the 24 h window).
    canned_id = HiddenField()
    # W1: pictures, documents, audio; the text goes as their caption.
    files = MultipleFileField(_l("Attach"))

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        if not (self.body.data or "").strip() and not self.uploads():
            self.body.errors = [_("Write a message or attach a file first.")]
            return False
        return True

    def text(self) -> str:
        return (self.body.data or "").replace("\r\n", "\n")

    def uploads(self) -> list[Upload]:
        """The chosen files (a browser sends an empty part when none was chosen)."""
        return [Upload(f.filename or "", f.mimetype or "", f.stream) for f in self.files.data or []
                if getattr(f, "filename", None)]


class TemplateSendForm(FlaskForm):
    """W3: a template's variables come as `var-<name>` fields (their names are the template's), read by
    `template_values`; the header picture, when the template has one, as `header`."""

    header = FileField(_l("Header image"))

    def header_upload(self) -> Upload | None:
        f = self.header.data
        return Upload(f.filename or "", f.mimetype or "", f.stream) if getattr(f, "filename", None) else None


def template_values(template: WhatsAppTemplate, source: Mapping[str, str]) -> dict[str, str]:
    """The values written for each of the template's variables (missing ones empty)."""
    return {name: str(source.get(f"var-{name}", ""))[:1000] for name in template.variables or []}


def error_text(form: FlaskForm) -> str:
    """Every error of a refused form, in one line ("" when none)."""
    return "; ".join(e for errors in form.errors.values() for e in errors)


class CloseForm(FlaskForm):
    disposition = SelectField(_l("Disposition"), choices=choices(DISPOSITIONS), validators=[Optional()])
    note = StringField(_l("Other"), validators=[Optional(), Length(max=80)])

    def disposition_text(self) -> str:
        """What the closed conversation records: the note written, else the chosen disposition's label."""
        disposition = (self.note.data or "").strip() or dict(DISPOSITIONS).get(
            self.disposition.data, self.disposition.data) or ""
        return str(disposition)[:80]


class TransferForm(FlaskForm):
    agent_id = SelectField(_l("To an agent"), coerce=int, choices=[], validate_choice=False,
                           validators=[Optional()])
    campaign_id = SelectField(_l("To a campaign"), coerce=int, choices=[], validate_choice=False,
                              validators=[Optional()])


class OutboundForm(FlaskForm):
    campaign_id = SelectField(_l("Campaign"), coerce=int, choices=[], validate_choice=False)
    number = StringField(_l("Number"), validators=[DataRequired(), Length(max=32)])
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=MAX_MESSAGE_LENGTH)])


def outbound_form(campaigns: list[Campaign], **kwargs: Any) -> OutboundForm:
    """The softphone's form, offering the agent's campaigns."""
    form = OutboundForm(**kwargs)
    form.campaign_id.choices = choices((c.id, c.name) for c in campaigns)
    return form


class BreakForm(FlaskForm):
    break_type_id = IntegerField(_l("Break"), validators=[DataRequired()])


class ChatForm(FlaskForm):
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=MAX_LINE)])
