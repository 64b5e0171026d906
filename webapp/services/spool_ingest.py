"""F1 bulk-message and F2 do-not-contact files: validated, normalised and loaded, streamed.

F1 lines are `campaign;destination;message;priority;` (the trailing ";" is
optional); "campaign" is the name of an existing dialer. Columns after the
priority are template variables: the 1st fills `{1}` in the message, the 2nd
`{2}`, and so on. F2 lines are `phone;campaign;`.

Rules (each refusal is a FileRejected naming the line, and the field when there is one):
- file name: letters, digits, "_", "." and "-" only, ends in ".csv", at most 64 characters;
- encoding: UTF-8 (a BOM is fine); a file that is not valid UTF-8 is read as cp1252 (Excel's
  "CSV" on Windows), or latin-1 when even cp1252 cannot decode it. The summary says which;
- no empty line anywhere (the newline that ends the last line is fine); spaces at the end of a
  line are ignored;
- none of ' " @ ` < > \\ nor a control character (tab included) in any field;
- at least four columns (F1) / two (F2);
- the dialer exists (F2: a dialer, else an inbound campaign of that name); with `only_dialer_id`
  (an upload from one dialer's dashboard) every line must be for that dialer;
- priority: a whole number from 0 to 9999; message: not empty, at most 1,600 characters once
  the variables are filled in, and every `{n}` it uses has its column.

Line numbers fused into the first field (the manual's `1campsms;…`, `123578408;marcadortest;`):
the field is taken as it is when it is valid (it names a dialer; F2: it is a valid number); only
otherwise, when it begins with the line's own number and what follows is valid, is that number
dropped. So a dialer named "2go" works as "2go" on any line, and as "12go" on line 1.

Destinations are normalised to E.164 (`phones.to_e164`, region DEFAULT_REGION). A number that is
not valid still loads, in state INVALID ("Otros" on the dashboard), kept as written; one on the
do-not-contact list loads as BLOCKED when its dialer has DNCR on (the engine checks again before
sending); the rest as TO PROCESS.

All or nothing: `load_bulk` and `load_dnc` run in one database transaction on `db.session`. Rows
go in by chunks of CHUNK (executemany on the session's Core connection) while the file streams past (never the whole file
in memory); any refusal or error rolls the whole transaction back, chunks already inserted
included, and a success commits. Call them with no other pending work in the session.
"""
from __future__ import annotations

import codecs
import gc
import io
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Any

import sqlalchemy as sa
from flask import current_app, has_app_context, has_request_context
from flask_babel import force_locale, gettext

from ..extensions import db
from ..live.events import publish
from ..models import Campaign, Dialer, DoNotContact, SpoolMessage, SpoolState, SpoolUpload, utcnow
from ..providers import gsm
from . import dnc, phones

CHUNK = 5000
MAX_PRIORITY = 9999
MAX_MESSAGE = 1600
MAX_FILENAME = 64
MAX_DESTINATION = 32  # sms_spool.destination
DNC_PRELOAD_MAX = 200_000
_FILENAME = re.compile(r"[A-Za-z0-9_.\-]+")
_FORBIDDEN = re.compile(r"['\"@`<>\\\x00-\x1f\x7f-\x9f]")
_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_MARKS = [f"{{{i}}}" for i in range(1, 51)]
_BLOCK = 1 << 20


def _(message: str, **values: Any) -> str:
    """gettext, also outside a request (CLI, jobs, tests): the app's default language there."""
    if has_request_context() or not has_app_context():
        return gettext(message, **values)
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "es")):
        return gettext(message, **values)


class FileRejected(Exception):
    """A file that breaks a rule: nothing of it was loaded."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(_("line %(line)s", line=self.line))
        if self.field is not None:
            where.append(_("field %(field)s", field=_field_label(self.field)))
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message, "error": str(self)}


def _field_label(name: str) -> str:
    """A field's name as users read it (the attribute keeps the identifier)."""
    labels = {"campaign": _("campaign"), "destination": _("destination"), "message": _("message"),
              "priority": _("priority"), "phone": _("phone"), "filename": _("file name")}
    if name in labels:
        return labels[name]
    kind, _sep, number = name.partition(" ")
    if kind == "variable":
        return _("variable %(n)s", n=number)
    if kind == "column":
        return _("column %(n)s", n=number)
    return name


# -- summaries -------------------------------------------------------------------------------------
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


# -- file level ------------------------------------------------------------------------------------
def check_filename(name: str) -> str:
    """The manual's rule: no spaces or odd characters, not too long (DISCTEST29042014.csv)."""
    if not name:
        raise FileRejected(_("the file has no name"), field="filename")
    if len(name) > MAX_FILENAME:
        raise FileRejected(_("the file name is longer than %(max)s characters", max=MAX_FILENAME),
                           field="filename")
    if not _FILENAME.fullmatch(name):
        raise FileRejected(_("the file name may only have letters, digits, \"_\", \".\" and \"-\" "
                             "(no spaces or accents), for example DISCTEST29042014.csv"), field="filename")
    if not name.lower().endswith(".csv") or len(name) == 4:
        raise FileRejected(_("the file must be a .csv file"), field="filename")
    return name


def _seekable(stream: IO[bytes]) -> IO[bytes]:
    """The stream itself when it can be read twice; else a spooled copy (memory up to 8 MiB, then disk)."""
    try:
        if stream.seekable():
            return stream
    except (AttributeError, ValueError):
        pass
    copy = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - closed by the caller
    while block := stream.read(_BLOCK):
        copy.write(block)
    copy.seek(0)
    return copy


def _decodes(stream: IO[bytes], encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while block := stream.read(_BLOCK):
            decoder.decode(block)
        decoder.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False


def _detect_encoding(stream: IO[bytes]) -> str:
    """UTF-8 (BOM or not) when the whole file decodes as such; else cp1252; else latin-1."""
    start = stream.tell()
    head = stream.read(3)
    stream.seek(start)
    for encoding in ("utf-8", "cp1252"):
        ok = _decodes(stream, encoding)
        stream.seek(start)
        if ok:
            return "utf-8-sig" if encoding == "utf-8" and head == codecs.BOM_UTF8 else encoding
    return "latin-1"


class _Lines:
    """The file's lines, decoded, without their newline; counts them (1-based)."""

    def __init__(self, stream: IO[bytes]):
        self.source = _seekable(stream)
        self.encoding = _detect_encoding(self.source)
        self.text = io.TextIOWrapper(self.source, encoding=self.encoding, newline=None)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        line_no = 0
        for line_no, line in enumerate(self.text, 1):  # noqa: B007 - used after the loop
            if line.endswith("\n"):
                line = line[:-1]
            line = line.rstrip(" ")
            if not line:
                raise self.empty_line(line_no)
            yield line_no, line
        if line_no == 0:
            raise FileRejected(_("the file is empty"))

    @staticmethod
    def empty_line(line_no: int) -> FileRejected:
        return FileRejected(_("empty line: the file may not have empty lines (not even after the last one)"),
                            line=line_no)

    def close(self, original: IO[bytes]) -> None:
        self.text.detach()  # leave the caller's stream open
        if self.source is not original:
            self.source.close()

    @property
    def encoding_label(self) -> str:
        return {"utf-8-sig": "utf-8 (BOM)"}.get(self.encoding, self.encoding)


def _field_name(index: int) -> str:
    names = ("campaign", "destination", "message", "priority")
    return names[index] if index < len(names) else f"variable {index - len(names) + 1}"


def _split(line_no: int, line: str, minimum: int, names: Callable[[int], str]) -> list[str]:
    """The fields of a line (a final ";" ends the line, it opens no column); checks characters."""
    bad = _FORBIDDEN.search(line)
    if bad is not None:
        index = line.count(";", 0, bad.start())
        char = bad.group()
        shown = char if char.isprintable() else f"U+{ord(char):04X}"
        raise FileRejected(_("the character %(char)s is not allowed (none of ' \" @ ` < > \\ or control "
                             "characters)", char=shown), line=line_no, field=names(index))
    fields = line.split(";")
    if len(fields) > 1 and fields[-1] == "":
        fields.pop()
    if len(fields) < minimum:
        raise FileRejected(_("the line has %(found)s columns; it needs at least %(needed)s",
                             found=len(fields), needed=minimum), line=line_no)
    return fields


def _resolve_name(raw: str, line_no: int, known: Callable[[str], Any]) -> Any:
    """The fused-line-number rule (module docstring): as written first, then without the line number."""
    found = known(raw)
    if found is not None:
        return found
    prefix = str(line_no)
    if raw.startswith(prefix) and len(raw) > len(prefix):
        return known(raw[len(prefix):])
    return None


# -- F1 --------------------------------------------------------------------------------------------
@dataclass
class _DialerInfo:
    id: int
    name: str
    dncr: bool


class _BulkParser:
    """Turns lines into [dialer, destination, e164, body, priority, line] rows; raises FileRejected."""

    def __init__(self, region: str, only_dialer_id: int | None):
        self.region = region
        self.only_dialer_id = only_dialer_id
        self.dialers = {name: _DialerInfo(id_, name, dncr) for id_, name, dncr in db.session.execute(
            sa.select(Dialer.id, Dialer.name, Dialer.dncr))}

    def dialer_for(self, raw: str, line_no: int) -> _DialerInfo:
        dialer = _resolve_name(raw, line_no, self.dialers.get)
        if dialer is None:
            raise FileRejected(_("there is no dialer named %(name)s", name=raw or '""'),
                               line=line_no, field="campaign")
        if self.only_dialer_id is not None and dialer.id != self.only_dialer_id:
            raise FileRejected(_("this upload is for one dialer only; the line is for %(name)s",
                                 name=dialer.name), line=line_no, field="campaign")
        return dialer

    def chunks(self, lines: _Lines) -> Iterator[list[list[Any]]]:
        """Rows [dialer, destination, e164, body, priority, line] by CHUNK; one flat loop, it runs per line."""
        to_e164, region = phones.to_e164, self.region
        dialers, only = self.dialers, self.only_dialer_id
        forbidden = _FORBIDDEN.search
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
                _split(line_no, line, 4, _field_name)  # raises, naming the field
            fields = line.split(";")
            if fields[-1] == "" and len(fields) > 1:
                fields.pop()
            if len(fields) < 4:
                _split(line_no, line, 4, _field_name)
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
            if not body or len(body) > MAX_MESSAGE or body[0] == " ":
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
        if len(body) > MAX_MESSAGE:
            raise FileRejected(_("the message has %(length)s characters; at most %(max)s",
                                 length=len(body), max=MAX_MESSAGE), line=line_no, field="message")

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
                raise FileRejected(_("the message uses {%(n)s} but the line has %(count)s variable columns",
                                     n=index, count=len(variables)), line=line_no, field="message")
            return variables[index - 1].strip()

        return _PLACEHOLDER.sub(value, body)


def _chunks(rows: Iterator[list[Any]]) -> Iterator[list[list[Any]]]:
    chunk: list[list[Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _DncCheck:
    """Which rows of a chunk are on the do-not-contact list, for dialers with DNCR on.

    A list of up to DNC_PRELOAD_MAX (config, default 200,000) entries that bind these dialers (global and theirs: the usual
    case) is read once into sets; a longer one is asked once per chunk and dialer (one IN query).
    """

    def __init__(self, dialers: dict[str, _DialerInfo]):
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
    lines = _Lines(stream)
    parser = _BulkParser(region, only_dialer_id)
    check = _DncCheck(parser.dialers)
    rows: list[PreviewRow] = []
    per_dialer: dict[str, dict[str, int]] = {}
    encoding_counts = {"gsm7": 0, "ucs2": 0}
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
                invalid += e164 is None
                blocked += is_blocked
                encoding_counts["gsm7" if info.encoding == "gsm-7" else "ucs2"] += 1
                segments_total += info.segments
                if len(rows) < sample:
                    rows.append(PreviewRow(line_no, dialer.name, destination, e164, body, priority,
                                           info.encoding, info.segments, is_blocked))
    finally:
        lines.close(stream)
    return BulkPreview(rows, total, invalid, blocked, per_dialer, encoding_counts, segments_total,
                       lines.encoding_label)


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
    lines = _Lines(stream)
    try:
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
            publish(f"dialer:{dialer_id}", "dialer.counts", dialer_id=dialer_id)
        if before_commit is not None:
            before_commit(summary)
        session.commit()
        return summary
    except BaseException:
        session.rollback()
        raise
    finally:
        lines.close(stream)


# -- F2 --------------------------------------------------------------------------------------------
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
    lines = _Lines(stream)
    region = dnc.default_region()
    try:
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
                fields = _split(line_no, line, 2, _dnc_field_name)
                extra = [i for i, value in enumerate(fields[2:], 2) if value.strip()]
                if extra:
                    raise FileRejected(_("the line has more columns than phone;campaign"), line=line_no,
                                       field=_dnc_field_name(extra[0]))
                name = fields[1].strip()
                scope = _resolve_name(name, line_no, scope_for)
                if scope is None:
                    raise FileRejected(_("there is no dialer or campaign named %(name)s", name=name or '""'),
                                       line=line_no, field="campaign")
                if only_dialer_id is not None and scope[0] != only_dialer_id:
                    raise FileRejected(_("this upload is for one dialer only; the line is for %(name)s",
                                         name=name), line=line_no, field="campaign")
                raw = fields[0].strip()
                phone = _resolve_name(raw, line_no, lambda text: phones.to_e164(text, region))
                if phone is None:
                    phone = dnc.normalise(raw, region)
                    if phone is None:
                        raise FileRejected(_("%(value)s is not a phone number", value=raw or '""'),
                                           line=line_no, field="phone")
                    invalid += 1
                yield phone, scope[0], scope[1], scope[2]

        for chunk in _chunks(rows()):  # type: ignore[arg-type]
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
            publish(f"dialer:{dialer_id}", "dialer.counts", dialer_id=dialer_id)
        session.commit()
        return summary
    except BaseException:
        session.rollback()
        raise
    finally:
        lines.close(stream)
