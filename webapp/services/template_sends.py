"""W3: WhatsApp templates in the agent's composer.

When the 24-hour window is closed (or whenever the agent chooses) the composer offers the campaign's
provider's approved templates in the conversation's language (`offered`); the agent fills the variables
(and a header image where the template has one), sees the message as the customer will (`render`), and
sends it (`send`): one message whose body is the rendered text and whose `template_params` the send job
turns into Twilio's ContentSid + ContentVariables or Meta's template components.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from ..extensions import db
from ..i18n import center_locale, translating
from ..models import AttachmentKind, Interaction, Message, User, WhatsAppTemplate
from . import interactions, outbound_media
from .interactions.errors import InteractionError
from .templates import VARIABLE

MAX_VALUE = 200
MAX_RENDERED = 1024  # Meta's limit for a template's body once filled
HEADER_MEDIA = ("image", "video", "document")
# Meta refuses a parameter with a new line, a tab or more than four spaces in a row.
BAD_VALUE = re.compile(r"[\n\r\t]| {5,}")


def conversation_language(interaction: Interaction) -> str:
    """The language the conversation's templates are offered in: its campaign's, else the centre's."""
    return (interaction.campaign.language or center_locale()).strip()


def _same_language(template_language: str, wanted: str) -> bool:
    """"es" offers es, es_AR, es_MX…; "es_AR" offers es_AR and plain es."""
    have, want = template_language.lower().replace("-", "_"), wanted.lower().replace("-", "_")
    return have == want or have.split("_")[0] == want or want.split("_")[0] == have


def offered(interaction: Interaction) -> list[WhatsAppTemplate]:
    """The approved templates of the conversation's provider in its language, by name."""
    if interaction.channel != "whatsapp":
        return []
    rows = db.session.scalars(sa.select(WhatsAppTemplate).where(
        WhatsAppTemplate.provider_id == interaction.campaign.provider_id, WhatsAppTemplate.status == "approved")
        .order_by(WhatsAppTemplate.name, WhatsAppTemplate.language))
    language = conversation_language(interaction)
    return [t for t in rows if _same_language(t.language or language, language)]


def offered_one(interaction: Interaction, template_id: int) -> WhatsAppTemplate | None:
    return next((t for t in offered(interaction) if t.id == template_id), None)


def header_media(template: WhatsAppTemplate) -> str | None:
    """The header's media kind when the agent supplies it (Meta sends it with the message; a Twilio
    content template carries its own)."""
    fmt = (template.header or {}).get("format")
    return fmt if fmt in HEADER_MEDIA and not template.external_id.startswith("HX") else None


def header_text(template: WhatsAppTemplate) -> str:
    header = template.header or {}
    return header.get("text") or "" if header.get("format") == "text" else ""


def render(template: WhatsAppTemplate, values: dict[str, str], blank: str | None = None) -> str:
    """The message as the customer sees it: header text, body, footer, with the values in place (an empty
    one shows as `blank`, or as its placeholder)."""
    def fill(text: str) -> str:
        return VARIABLE.sub(lambda m: values.get(m.group(1)) or (blank if blank is not None else m.group(0)), text)

    parts = [fill(header_text(template)), fill(template.body or ""), template.footer or ""]
    return "\n\n".join(p for p in parts if p.strip())


@dataclass
class Filled:
    """What the agent wrote in the template's form, checked."""

    template: WhatsAppTemplate
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def check(template: WhatsAppTemplate, values: dict[str, str]) -> Filled:
    """Every variable filled, each as WhatsApp takes it (one line, at most MAX_VALUE characters)."""
    values = {name: (values.get(name) or "").strip() for name in template.variables or []}
    filled = Filled(template, values)
    with translating():
        for name, value in values.items():
            if not value:
                filled.errors[name] = _("Fill {{%(name)s}}.", name=name)
            elif len(value) > MAX_VALUE:
                filled.errors[name] = _("{{%(name)s}} is longer than %(max)d characters.", name=name, max=MAX_VALUE)
            elif BAD_VALUE.search(value):
                filled.errors[name] = _("{{%(name)s}} must be one line, without tabs or runs of spaces.", name=name)
        if filled.ok and len(render(template, values)) > MAX_RENDERED:
            filled.errors[""] = _("The filled message is longer than %(max)d characters.", max=MAX_RENDERED)
    return filled


def params(filled: Filled, language: str) -> dict[str, Any]:
    """What the send job needs: body variables in order, header text ones apart (Meta sends them in the
    header component; Twilio's ContentVariables name them all)."""
    template = filled.template
    in_header = {m.group(1) for m in VARIABLE.finditer(header_text(template))}
    result: dict[str, Any] = {"template_id": template.id, "language": template.language or language,
                              "variables": {k: v for k, v in filled.values.items() if k not in in_header}}
    if in_header:
        result["header_variables"] = {k: v for k, v in filled.values.items() if k in in_header}
    if header_media(template):
        result["header"] = header_media(template)
    return result


def send(interaction: Interaction, agent: User, template: WhatsAppTemplate, values: dict[str, str],
         header: outbound_media.Upload | None = None) -> Message:
    """Check the filled template (and its header file) and queue it; InteractionError says what is missing."""
    filled = check(template, values)
    with translating():
        if not filled.ok:
            raise InteractionError(" ".join(filled.errors.values()))
        kind = header_media(template)
        if kind and header is None:
            raise InteractionError(_("This template needs a header %(kind)s.", kind=kind))
    kept = outbound_media.keep_upload(header) if kind and header is not None else None
    if kept is not None and kept["kind"] != (AttachmentKind.IMAGE if kind == "image" else kept["kind"]):
        with translating():
            raise InteractionError(_("The header must be a JPEG or PNG picture."))
    rendered = render(template, filled.values)
    return interactions.send_template(interaction, agent, template.ref, rendered,
                                      params(filled, conversation_language(interaction)), kept)
