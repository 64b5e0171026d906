"""F1 bulk-message files: checked and previewed, or loaded into the spool all or nothing, streamed.

The fast loop (`BulkParser.chunks`) runs once per line of a million-row file: it checks the common case
inline and leaves the wording of a refusal to the slower helpers. Rules: the package docstring.
"""
from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Any

import sqlalchemy as sa
from flask import current_app, has_app_context

from ...extensions import db
from ...models import Dialer, DoNotContact, SpoolMessage, SpoolState, SpoolUpload, utcnow
from ...providers import gsm
from ...providers.gsm import MAX_MESSAGE_LENGTH
from .. import dnc, phones
from ..dialer.counts import publish_counts
from .files import (
    CHUNK,
    FORBIDDEN,
    FileRejected,
    Lines,
    _,
    all_or_nothing,
    check_filename,
    n_,
    resolve_name,
    split_fields,
)

MAX_PRIORITY = 9999
MAX_DESTINATION = 32  # sms_spool.destination
DNC_PRELOAD_MAX = 200_000
INVALID_LISTED = 50  # invalid lines a preview names (line and value); the rest it counts
_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_MARKS = [f"{{{i}}}" for i in range(1, 51)]


def _field_name(index: int) -> str:
    names = ("campaign", "destination", "message", "priority")
    return names[index] if index < len(names) else f"variable {index - len(names) + 1}"


@dataclass
class PreviewRow:
    line: int
    dialer: str
    destination: str  # as written
    e164: str | None
    message: str  # variables filled in
    priority: int
    encoding: str  # "gsm-7" / "ucs-2"
    segments: int
    blocked: bool = False


@dataclass
class BulkPreview:
    rows: list[PreviewRow]
    total: int
    invalid: int
    blocked: int
    per_dialer: dict[str, dict[str, int]]
    encoding_counts: dict[str, int]
    segments_total: int
    encoding: str  # of the file
    invalid_lines: list[tuple[int, str]] = field(default_factory=list)  # (line, destination as written)

    @property
    def invalid_not_listed(self) -> int:
        """Invalid lines beyond the first INVALID_LISTED, counted but not listed."""
        return self.invalid - len(self.invalid_lines)


@dataclass
class LoadSummary:
    loaded: int  # every row written to the spool, whatever its state
    invalid: int
    blocked: int
    upload_id: int
    per_dialer: dict[str, dict[str, int]]
    to_process: int = 0
    encoding: str = "utf-8"

    def as_dict(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "to_process": self.to_process, "invalid": self.invalid,
                "blocked": self.blocked, "upload_id": self.upload_id, "per_dialer": self.per_dialer,
                "encoding": self.encoding}


@dataclass
class DialerInfo:
    id: int
    name: str
    dncr: bool


class _BulkParser:
    """Turns lines into [dialer, destination, e164, body, priority, line] rows; raises FileRejected."""

    def __init__(self, region: str, only_dialer_id: int | None):
        self.region = region
        self.only_dialer_id = only_dialer_id
        self.dialers = {name: DialerInfo(id_, name, dncr) for id_, name, dncr in db.session.execute(
            sa.select(Dialer.id, Dialer.name, Dialer.dncr))}

    def dialer_for(self, raw: str, line_no: int) -> DialerInfo:
        dialer = resolve_name(raw, line_no, self.dialers.get)
        if dialer is None:
            raise FileRejected(_("there is no dialer named %(name)s", name=raw or '""'),
                               line=line_no, field="campaign")
        if self.only_dialer_id is not None and dialer.id != self.only_dialer_id:
            raise FileRejected(_("this upload is for one dialer only; the line is for %(name)s",
                                 name=dialer.name), line=line_no, field="campaign")
        return dialer

    def chunks(self, lines: Lines) -> Iterator[list[list[Any]]]:
        """Rows [dialer, destination, e164, body, priority, line] by CHUNK; one flat loop, it runs per line."""
        to_e164, region = phones.to_e164, self.region
        dialers, only = self.dialers, self.only_dialer_id
        forbidden = FORBIDDEN.search
        last_name, last_dialer = None, None
        chunk: list[list[Any]] = []
        line_no = 0
        for line_no, line in enumerate(lines.text, 1):  # noqa: B007 - used after the loop
            if line[-1:] == "\n":
                line = line[:-1]
            if not line or line[-1] == " ":
                line = line.rstrip(" ")
                if not line:
                    raise lines.empty_line(line_no)
            if forbidden(line) is not None:
                split_fields(line_no, line, 4, _field_name)  # raises, naming the field
            fields = line.split(";")
            if fields[-1] == "" and len(fields) > 1:
                fields.pop()
            if len(fields) < 4:
                split_fields(line_no, line, 4, _field_name)
            name = fields[0].strip()
            if name != last_name or last_dialer is None:
                last_dialer = dialers.get(name)
                if last_dialer is None or (only is not None and last_dialer.id != only):
                    last_dialer = self.dialer_for(name, line_no)
                last_name = name if dialers.get(name) is last_dialer else None
            destination = fields[1].strip()
            if not destination or len(destination) > MAX_DESTINATION:
                self._bad_destination(destination, line_no)
            priority_text = fields[3].strip()
            if not (priority_text.isdigit() and priority_text.isascii()) or (
                    len(priority_text) > 4 and int(priority_text) > MAX_PRIORITY):
                raise FileRejected(_("must be a whole number from 0 to %(max)s", max=MAX_PRIORITY),
                                   line=line_no, field="priority")
            body = fields[2].strip()
            if "{" in body:
                body = self._fill(body, fields[4:], line_no)
            if not body or len(body) > MAX_MESSAGE_LENGTH or body[0] == " ":
                self._check_body(body, line_no)
            chunk.append([last_dialer, destination, to_e164(destination, region), body, int(priority_text),
                          line_no])
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
        if line_no == 0:
            raise FileRejected(_("the file is empty"))
        if chunk:
            yield chunk

    @staticmethod
    def _bad_destination(destination: str, line_no: int) -> None:
        if not destination:
            raise FileRejected(_("the destination is empty"), line=line_no, field="destination")
        raise FileRejected(_("the destination is longer than %(max)s characters", max=MAX_DESTINATION),
                           line=line_no, field="destination")

    @staticmethod
    def _check_body(body: str, line_no: int) -> None:
        if not body.strip():
            raise FileRejected(_("the message is empty"), line=line_no, field="message")
        if len(body) > MAX_MESSAGE_LENGTH:
            raise FileRejected(_("the message has %(length)s characters; at most %(max)s",
                                 length=len(body), max=MAX_MESSAGE_LENGTH), line=line_no, field="message")

    @staticmethod
    def _fill(body: str, variables: list[str], line_no: int) -> str:
        if "{" not in "".join(variables) and len(variables) < len(_MARKS):
            # The common case, by plain replacement: no value can bring in a placeholder of its own.
            for mark, variable in zip(_MARKS, variables, strict=False):
                body = body.replace(mark, variable.strip())
            if "{" not in body or _PLACEHOLDER.search(body) is None:
                return body

        def value(match: re.Match[str]) -> str:
            index = int(match.group(1))
            if index < 1 or index > len(variables):
                raise FileRejected(n_("the message uses {%(n)s} but the line has %(num)s variable column",
                                      "the message uses {%(n)s} but the line has %(num)s variable columns",
                                      len(variables), n=index), line=line_no, field="message")
            return variables[index - 1].strip()

        return _PLACEHOLDER.sub(value, body)


class _DncCheck:
    """Which rows of a chunk are on the do-not-contact list, for dialers with DNCR on.

    A list of up to DNC_PRELOAD_MAX (config, default 200,000) entries that bind these dialers (global and theirs: the usual
    case) is read once into sets; a longer one is asked once per chunk and dialer (one IN query).
    """

    def __init__(self, dialers: dict[str, DialerInfo]):
        ids = sorted({d.id for d in dialers.values() if d.dncr})
        self.enabled = bool(ids)
        self.global_: set[str] = set()
        self.by_dialer: dict[int, set[str]] = {}
        if not self.enabled:
            self.preloaded = True
            return
        applies = sa.or_(sa.and_(DoNotContact.dialer_id.is_(None), DoNotContact.campaign_id.is_(None)),
                         DoNotContact.dialer_id.in_(ids))
        size = db.session.scalar(sa.select(sa.func.count(DoNotContact.id)).where(applies))
        limit = current_app.config.get("DNC_PRELOAD_MAX", DNC_PRELOAD_MAX) if has_app_context() else DNC_PRELOAD_MAX
        self.preloaded = size <= limit
        if self.preloaded:
            for phone, dialer_id in db.session.execute(sa.select(DoNotContact.phone, DoNotContact.dialer_id)
                                                       .where(applies)):
                (self.global_ if dialer_id is None else self.by_dialer.setdefault(dialer_id, set())).add(phone)

    def blocked(self, chunk: list[list[Any]]) -> set[tuple[int, str]]:
        if not self.enabled:
            return set()
        if self.preloaded:
            if not self.global_ and not self.by_dialer:
                return set()
            found = set()
            for dialer, _dest, e164, *_rest in chunk:
                if e164 is not None and dialer.dncr and (
                        e164 in self.global_ or e164 in self.by_dialer.get(dialer.id, ())):
                    found.add((dialer.id, e164))
            return found
        by_dialer: dict[int, set[str]] = {}
        for dialer, _dest, e164, *_rest in chunk:
            if e164 is not None and dialer.dncr:
                by_dialer.setdefault(dialer.id, set()).add(e164)
        return {(dialer_id, number) for dialer_id, numbers in by_dialer.items()
                for number in dnc.listed_among(numbers, dialer_id=dialer_id)}


@contextmanager
def _few_collections() -> Iterator[None]:
    """Fewer garbage collections while rows stream: the rows hold no cycles, and the collector's
    passes over a process full of short-lived tuples cost ~15% of a large load."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 100_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _raw_insert(session: Any, upload_id: int) -> tuple[str, tuple[Any, ...]]:
    """The spool INSERT as driver SQL, and the values every row shares, already in driver form.

    Core's per-row parameter processing was the largest cost of a million-row load; the rows are
    plain tuples of ints and strings, so they go to the driver's executemany as they are (on the
    session's connection, so in its transaction).
    """
    dialect = session.get_bind().dialect
    mark = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"
    table = SpoolMessage.__table__
    columns = ["dialer_id", "destination", "body", "priority", "state", "upload_id", "attempts",
               "needs_review", "created_at"]
    shared = {"upload_id": upload_id, "attempts": 0, "needs_review": False, "created_at": utcnow()}
    constants = []
    for name in columns[5:]:
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        constants.append(process(shared[name]) if process else shared[name])
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
           f"VALUES ({', '.join([mark] * len(columns))})")
    return sql, tuple(constants)


def _new_counts() -> dict[str, int]:
    return {"loaded": 0, "to_process": 0, "invalid": 0, "blocked": 0}


@lru_cache(maxsize=4096)
def _segments(body: str) -> gsm.SegmentInfo:
    return gsm.segments(body)


def preview_bulk(stream: IO[bytes], filename: str, *, region: str, only_dialer_id: int | None = None,
                 sample: int = 10) -> BulkPreview:
    """Check the whole file as load_bulk would (FileRejected alike) without writing; the first rows shown."""
    check_filename(filename)
    lines = Lines(stream)
    parser = _BulkParser(region, only_dialer_id)
    check = _DncCheck(parser.dialers)
    rows: list[PreviewRow] = []
    per_dialer: dict[str, dict[str, int]] = {}
    encoding_counts = {"gsm7": 0, "ucs2": 0}
    invalid_lines: list[tuple[int, str]] = []
    total = invalid = blocked = segments_total = 0
    try:
        for chunk in parser.chunks(lines):
            listed = check.blocked(chunk)
            for dialer, destination, e164, body, priority, line_no in chunk:
                counts = per_dialer.setdefault(dialer.name, _new_counts())
                info = _segments(body)
                is_blocked = (dialer.id, e164) in listed
                state = "invalid" if e164 is None else "blocked" if is_blocked else "to_process"
                counts["loaded"] += 1
                counts[state] += 1
                total += 1
                if e164 is None:
                    invalid += 1
                    if len(invalid_lines) < INVALID_LISTED:
                        invalid_lines.append((line_no, destination))
                blocked += is_blocked
                encoding_counts["gsm7" if info.encoding == "gsm-7" else "ucs2"] += 1
                segments_total += info.segments
                if len(rows) < sample:
                    rows.append(PreviewRow(line_no, dialer.name, destination, e164, body, priority,
                                           info.encoding, info.segments, is_blocked))
    finally:
        lines.close(stream)
    return BulkPreview(rows, total, invalid, blocked, per_dialer, encoding_counts, segments_total,
                       lines.encoding_label, invalid_lines)


def load_bulk(stream: IO[bytes], filename: str, *, region: str, user_id: int | None = None,
              only_dialer_id: int | None = None, on_progress: Callable[[int], None] | None = None,
              before_commit: Callable[[LoadSummary], None] | None = None) -> LoadSummary:
    """Load an F1 file into sms_spool, all or nothing (one transaction; commits on success).

    `on_progress(rows)` is called after each chunk with the rows written so far (still uncommitted);
    `before_commit(summary)` runs in the load's transaction, so what it writes commits with the rows
    or not at all.
    """
    check_filename(filename)
    session = db.session
    with all_or_nothing(stream) as lines:
        parser = _BulkParser(region, only_dialer_id)
        check = _DncCheck(parser.dialers)
        upload = SpoolUpload(kind="bulk", filename=filename, user_id=user_id, dialer_id=only_dialer_id,
                             counts={})
        session.add(upload)
        session.flush()
        insert, constants = _raw_insert(session, upload.id)
        connection = session.connection()
        per_dialer: dict[int, dict[str, int]] = {}
        names: dict[int, str] = {}
        written = 0
        with _few_collections():
            for chunk in parser.chunks(lines):
                listed = check.blocked(chunk)
                values = []
                for dialer, destination, e164, body, priority, _line in chunk:
                    if e164 is None:
                        state, key = SpoolState.INVALID, "invalid"
                    elif (dialer.id, e164) in listed:
                        state, key = SpoolState.BLOCKED, "blocked"
                    else:
                        state, key = SpoolState.TO_PROCESS, "to_process"
                    counts = per_dialer.get(dialer.id)
                    if counts is None:
                        counts = per_dialer[dialer.id] = _new_counts()
                        names[dialer.id] = dialer.name
                    counts[key] += 1
                    values.append((dialer.id, e164 or destination, body, priority, state, *constants))
                connection.exec_driver_sql(insert, values)
                written += len(values)
                if on_progress is not None:
                    on_progress(written)
        totals = _new_counts()
        by_name: dict[str, dict[str, int]] = {}
        for dialer_id, counts in per_dialer.items():
            counts["loaded"] = counts["to_process"] + counts["invalid"] + counts["blocked"]
            by_name[names[dialer_id]] = counts
            for key in totals:
                totals[key] += counts[key]
        summary = LoadSummary(totals["loaded"], totals["invalid"], totals["blocked"], upload.id, by_name,
                              totals["to_process"], lines.encoding_label)
        upload.counts = summary.as_dict()
        if upload.dialer_id is None and len(per_dialer) == 1:
            upload.dialer_id = next(iter(per_dialer))
        for dialer_id in sorted(per_dialer):
            publish_counts(dialer_id, force=True)
        if before_commit is not None:
            before_commit(summary)
        session.commit()
        return summary
