"""The report filter: a GET form (no CSRF, nothing changes)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SelectMultipleField
from wtforms.validators import Optional

from ..inbox.forms import choices


class ReportForm(FlaskForm):
    class Meta:
        csrf = False

    first = DateField(_l("From"), validators=[Optional()])
    last = DateField(_l("To"), validators=[Optional()])
    period = SelectField(_l("Group by"), default="day", choices=choices([
        ("hour", _l("Hour")), ("day", _l("Day")), ("week", _l("Week")), ("month", _l("Month"))]))
    ids = SelectMultipleField(_l("Show"), coerce=int, choices=[], validate_choice=False)
