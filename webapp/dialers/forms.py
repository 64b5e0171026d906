"""S4 dashboard forms: single message, the two uploads, and the bare CSRF form of the buttons."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

# Long enough for a multipart SMS or a WhatsApp text; the provider splits, the counter shows how.
MAX_SINGLE_TEXT = 1600


class ActionForm(FlaskForm):
    """Start, Stop, Delete, Confirm, Cancel, Resend: a button whose only field is the CSRF token."""


class SingleMessageForm(FlaskForm):
    phone = StringField(_l("Phone"), validators=[DataRequired(), Length(max=32)],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})
    text = TextAreaField(_l("Text"), validators=[DataRequired(), Length(max=MAX_SINGLE_TEXT)],
                         render_kw={"data-segments": "", "rows": 4})


class UploadForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired()], render_kw={"accept": ".csv,text/csv"})
