"""S4 dashboard forms: single message, the two uploads, and the bare CSRF form of the buttons."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from ..providers.gsm import MAX_MESSAGE_LENGTH
from ..services.ingest.files import FileRejected, check_filename


class ActionForm(FlaskForm):
    """Start, Stop, Delete, Confirm, Cancel, Resend: a button whose only field is the CSRF token."""


class SingleMessageForm(FlaskForm):
    phone = StringField(_l("Phone"), validators=[DataRequired(), Length(max=32)],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})
    text = TextAreaField(_l("Text"), validators=[DataRequired(), Length(max=MAX_MESSAGE_LENGTH)],
                         render_kw={"data-segments": "", "rows": 4})


def rejected_message(exc: Exception) -> str:
    """The service's refusal says where (line, field) and why, already in the user's language."""
    return _("File refused: %(message)s", message=str(exc))


class UploadForm(FlaskForm):
    """A CSV upload: present, and its name follows the manual's rule (the content is the loader's)."""

    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a .csv file first."))],
                     render_kw={"accept": ".csv,text/csv"})

    def validate_file(self, field: Any) -> None:
        try:
            check_filename(field.data.filename or "")
        except FileRejected as exc:
            raise ValidationError(rejected_message(exc)) from exc
