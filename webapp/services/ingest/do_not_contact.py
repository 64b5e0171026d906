"""F2 do-not-contact files (`phone;campaign;`): loaded into the list all or nothing, streamed."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import sqlalchemy as sa

from ...extensions import db
from ...models import Campaign, Dialer, DoNotContact, SpoolUpload, utcnow
from .. import dnc, phones
from ..dialer.counts import publish_counts
from .files import FileRejected, _, all_or_nothing, check_filename, chunked, resolve_name, split_fields


@dataclass
class DncSummary:
    added: int
    already: int  # on the list before (or twice in the file): not stored again
    upload_id: int
    invalid: int = 0  # stored as written (digits): they can never match a valid destination
    per_dialer: dict[str, int] = field(default_factory=dict)
    encoding: str = "utf-8"

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "already": self.already, "invalid": self.invalid,
                "upload_id": self.upload_id, "per_dialer": self.per_dialer, "encoding": self.encoding}


def _dnc_field_name(index: int) -> str:
    return ("phone", "campaign")[index] if index < 2 else f"column {index + 1}"


def load_dnc(stream: IO[bytes], filename: str, *, user_id: int | None = None,
             only_dialer_id: int | None = None) -> DncSummary:
    """Load an F2 file (`phone;campaign;`) into the do-not-contact list, all or nothing (commits).

    "campaign" names a dialer; when no dialer has that name, an inbound campaign. A number
    already listed for the same dialer/campaign (or twice in the file) is counted in `already`.
    """
    check_filename(filename)
    session = db.session
    region = phones.default_region()
    with all_or_nothing(stream) as lines:
        dialers = {name: id_ for name, id_ in session.execute(sa.select(Dialer.name, Dialer.id))}
        campaigns = {name: id_ for name, id_ in session.execute(sa.select(Campaign.name, Campaign.id))}

        def scope_for(name: str) -> tuple[int | None, int | None, str] | None:
            if name in dialers:
                return (dialers[name], None, name)
            if name in campaigns:
                return (None, campaigns[name], name)
            return None

        upload = SpoolUpload(kind="dnc", filename=filename, user_id=user_id, dialer_id=only_dialer_id,
                             counts={})
        session.add(upload)
        session.flush()
        added = already = invalid = 0
        per_scope: dict[str, int] = {}
        now = utcnow()

        def rows() -> Iterator[tuple[str, int | None, int | None, str]]:
            nonlocal invalid
            for line_no, line in lines:
                fields = split_fields(line_no, line, 2, _dnc_field_name)
                extra = [i for i, value in enumerate(fields[2:], 2) if value.strip()]
                if extra:
                    raise FileRejected(_("the line has more columns than phone;campaign"), line=line_no,
                                       field=_dnc_field_name(extra[0]))
                name = fields[1].strip()
                scope = resolve_name(name, line_no, scope_for)
                if scope is None:
                    raise FileRejected(_("there is no dialer or campaign named %(name)s", name=name or '""'),
                                       line=line_no, field="campaign")
                if only_dialer_id is not None and scope[0] != only_dialer_id:
                    raise FileRejected(_("this upload is for one dialer only; the line is for %(name)s",
                                         name=name), line=line_no, field="campaign")
                raw = fields[0].strip()
                phone = resolve_name(raw, line_no, lambda text: phones.to_e164(text, region))
                if phone is None:
                    phone = dnc.normalise(raw, region)
                    if phone is None:
                        raise FileRejected(_("%(value)s is not a phone number", value=raw or '""'),
                                           line=line_no, field="phone")
                    invalid += 1
                yield phone, scope[0], scope[1], scope[2]

        for chunk in chunked(rows()):  # type: ignore[arg-type]
            existing = {tuple(row) for row in session.execute(sa.select(
                DoNotContact.phone, DoNotContact.dialer_id, DoNotContact.campaign_id).where(
                DoNotContact.phone.in_({row[0] for row in chunk})))}
            values = []
            for phone, dialer_id, campaign_id, name in chunk:
                key = (phone, dialer_id, campaign_id)
                if key in existing:
                    already += 1
                    continue
                existing.add(key)
                added += 1
                per_scope[name] = per_scope.get(name, 0) + 1
                values.append({"phone": phone, "dialer_id": dialer_id, "campaign_id": campaign_id,
                               "source": "upload", "created_at": now})
            if values:
                session.execute(sa.insert(DoNotContact.__table__), values)
        summary = DncSummary(added, already, upload.id, invalid, per_scope, lines.encoding_label)
        upload.counts = summary.as_dict()
        for dialer_id in sorted({dialers[n] for n in per_scope if n in dialers}):
            publish_counts(dialer_id, force=True)
        session.commit()
        return summary
