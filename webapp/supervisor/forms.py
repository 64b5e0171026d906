"""Supervision forms; choices are filled per request from what the supervisor may see."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..services.chat import MAX_LINE


class MonitorCampaignsForm(FlaskForm):
    campaigns = SelectMultipleField(_l("Campaigns"), coerce=int, choices=[], validate_choice=False)


class PauseForm(FlaskForm):
    break_type_id = SelectField(_l("Break"), coerce=int, choices=[], validators=[DataRequired()])


class ChatForm(FlaskForm):
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=MAX_LINE)])


def not_after_end(form: FlaskForm, field: DateField) -> None:
    end = form.end.data if not form.end.errors else None
    if field.data and end and field.data > end:
        raise ValidationError(_l("The start date is after the end date: change one of them."))


class TranscriptSearchForm(FlaskForm):
    """A GET search: no CSRF, nothing changes. A refused filter (a date that is no date, a start after the
    end) is said beside its field and nothing is searched."""

    class Meta:
        csrf = False

    start = DateField(_l("Start date"), validators=[Optional(), not_after_end])
    end = DateField(_l("End date"), validators=[Optional()])
    origin = StringField(_l("Origin"), validators=[Optional(), Length(max=32)])
    campaigns = SelectMultipleField(_l("Campaign"), coerce=int, choices=[], validate_choice=False)
    agents = SelectMultipleField(_l("Agent"), coerce=int, choices=[], validate_choice=False)
