"""What F1 and F2 files share: the file name, the encoding, the lines and their fields, and the refusal
(FileRejected) that says where (line, field) and why. The rules are in the package docstring."""
from __future__ import annotations

import codecs
import io
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from flask_babel import ngettext

from ...extensions import db
from ...i18n import gettext_anywhere as _
from ...i18n import translating

CHUNK = 5000  # rows per INSERT (executemany) while the file streams past
MAX_FILENAME = 64
_FILENAME = re.compile(r"[A-Za-z0-9_.\-]+")
FORBIDDEN = re.compile(r"['\"@`<>\\\x00-\x1f\x7f-\x9f]")
_BLOCK = 1 << 20


def n_(singular: str, plural: str, num: int, **values: Any) -> str:
    """ngettext that also works outside a request (`i18n.translating`: the centre's language there)."""
    with translating():
        return ngettext(singular, plural, num, **values)


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


class Lines:
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


@contextmanager
def all_or_nothing(stream: IO[bytes]) -> Iterator[Lines]:
    """The file's lines for a load in one transaction on `db.session`: any refusal or error rolls back
    all the load wrote (chunks already inserted included). The caller's stream stays open."""
    lines = Lines(stream)
    try:
        yield lines
    except BaseException:
        db.session.rollback()
        raise
    finally:
        lines.close(stream)


def split_fields(line_no: int, line: str, minimum: int, names: Callable[[int], str]) -> list[str]:
    """The fields of a line (a final ";" ends the line, it opens no column); checks characters."""
    bad = FORBIDDEN.search(line)
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


def resolve_name(raw: str, line_no: int, known: Callable[[str], Any]) -> Any:
    """The fused-line-number rule (module docstring): as written first, then without the line number."""
    found = known(raw)
    if found is not None:
        return found
    prefix = str(line_no)
    if raw.startswith(prefix) and len(raw) > len(prefix):
        return known(raw[len(prefix):])
    return None


def chunked(rows: Iterator[list[Any]]) -> Iterator[list[list[Any]]]:
    chunk: list[list[Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
