"""Admin forms: users, security groups, break types, voice campaigns and providers."""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DecimalField,
    EmailField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from ..campaigns.forms import choices
from ..models import BreakType, Provider, Role, SecurityGroup, User, VoiceCampaign

ROLE_CHOICES = choices([(Role.ADMIN.value, _l("Administrator")), (Role.SUPERVISOR.value, _l("Supervisor")),
                        (Role.AGENT.value, _l("Agent"))])
LANGUAGE_CHOICES = choices([("es", "Español"), ("en", "English")])
CHANNEL_CHOICES = choices([("sms", "SMS"), ("whatsapp", "WhatsApp")])


class UserForm(FlaskForm):
    username = StringField(_l("Username"), validators=[
        DataRequired(_l("Write a username.")), Length(max=64),
        Regexp(r"^[A-Za-z0-9._@-]+$", message=_l("Letters, digits and . _ @ - only, no spaces."))])
    name = StringField(_l("Name"), validators=[Length(max=120)])
    email = EmailField(_l("Email"), validators=[Optional(), Length(max=200),
        Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message=_l("Not an email address."))])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, default=Role.AGENT.value)
    language = SelectField(_l("Language"), choices=LANGUAGE_CHOICES, default="es")
    security_group_ids = SelectMultipleField(_l("Security groups"), coerce=int)
    monitor_screen_allowed = BooleanField(_l("Monitor screen allowed"),
                                          description=_l("Supervisors may see this agent's screen live."))
    active = BooleanField(_l("Active"), default=True)
    password = PasswordField(_l("Password"), validators=[
        Optional(), Length(min=8, max=200, message=_l("At least 8 characters."))],
        description=_l("On edit, leave empty to keep the current one. A new one ends the user's sessions."))

    def values(self) -> dict[str, Any]:
        return {"username": self.username.data.strip(), "name": (self.name.data or "").strip(),
                "email": (self.email.data or "").strip(), "role": self.role.data, "language": self.language.data,
                "monitor_screen_allowed": self.monitor_screen_allowed.data, "active": self.active.data,
                "security_group_ids": self.security_group_ids.data or [], "password": self.password.data or ""}


def user_data(user: User) -> dict[str, Any]:
    return {"username": user.username, "name": user.name, "email": user.email, "role": user.role,
            "language": user.language or "es", "monitor_screen_allowed": user.monitor_screen_allowed,
            "active": user.active, "security_group_ids": [g.id for g in user.security_groups]}


class GroupForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give it a name.")), Length(max=80)])
    description = StringField(_l("Description"), validators=[Length(max=255)])

    def values(self) -> dict[str, Any]:
        return {"name": self.name.data.strip(), "description": (self.description.data or "").strip()}


def group_data(group: SecurityGroup) -> dict[str, Any]:
    return {"name": group.name, "description": group.description}


class BreakTypeForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give it a name.")), Length(max=80)])
    icon = StringField(_l("Icon"), default="☕", validators=[DataRequired(_l("Pick an emoji.")), Length(max=16)],
                       description=_l("An emoji shown beside the agent on the monitor."))
    enabled = BooleanField(_l("Enabled"), default=True)

    def values(self) -> dict[str, Any]:
        return {"name": self.name.data.strip(), "icon": self.icon.data.strip(), "enabled": self.enabled.data}


def break_type_data(break_type: BreakType) -> dict[str, Any]:
    return {"name": break_type.name, "icon": break_type.icon, "enabled": break_type.enabled}


class VoiceCampaignForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give it a name.")), Length(max=80)])
    member_ids = SelectMultipleField(_l("Agents"), coerce=int)

    def values(self) -> dict[str, Any]:
        return {"name": self.name.data.strip(), "member_ids": self.member_ids.data or []}


def voice_campaign_data(voice: VoiceCampaign) -> dict[str, Any]:
    return {"name": voice.name, "member_ids": [u.id for u in voice.members]}


class ProviderForm(FlaskForm):
    """The fields every type has; credentials and options come per type (cred-<key>, opt-<key>)."""

    name = StringField(_l("Name"), validators=[DataRequired(_l("Give it a name.")), Length(max=80)])
    type = SelectField(_l("Type"))
    channel = SelectField(_l("Channel"), choices=CHANNEL_CHOICES, default="sms")
    sender = StringField(_l("Sender"), validators=[Length(max=64)],
                         description=_l("The number or id messages go out from."))
    base_url = StringField(_l("Base URL"), validators=[
        Length(max=255), Optional(), Regexp(r"^https?://\S+$", message=_l("Start it with http:// or https://."))])
    max_per_second = DecimalField(_l("Max messages per second"), default=10, places=None, validators=[
        InputRequired(_l("Write a number.")), NumberRange(0.1, 1000, message=_l("Between %(min)s and %(max)s."))])
    enabled = BooleanField(_l("Enabled"), default=True)

    def values(self) -> dict[str, Any]:
        return {"name": self.name.data.strip(), "type": self.type.data, "channel": self.channel.data,
                "sender": (self.sender.data or "").strip(), "base_url": (self.base_url.data or "").strip(),
                "max_per_second": float(self.max_per_second.data), "enabled": self.enabled.data}


def provider_data(provider: Provider) -> dict[str, Any]:
    return {"name": provider.name, "type": provider.type, "channel": provider.channel, "sender": provider.sender,
            "base_url": provider.base_url, "max_per_second": provider.max_per_second, "enabled": provider.enabled}
