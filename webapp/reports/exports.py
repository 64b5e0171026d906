"""CSV and XLSX of the report tables and of the per-conversation list. Text cells go through
`transcripts.neutralise` (a spreadsheet never runs them as formulas); XLSX writes text as strings and
numbers as numbers, never a formula."""
from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import xlsxwriter
from flask import Response, stream_with_context

from ..services.transcripts import neutralise
from .tables import Table


def value(kind: str, raw: Any) -> Any:
    """A cell as exported: seconds and percentages to a tenth, counts as they are, text neutralised."""
    if raw is None:
        return ""
    if kind in ("pct", "dur"):
        return round(float(raw), 1)
    if kind == "int":
        return int(raw)
    return neutralise(raw)


def _exported(table: Table) -> Iterator[list[Any]]:
    kinds = [c.kind for c in table.columns]
    yield [neutralise(c.label) for c in table.columns]
    for row in table.rows + ([table.total] if table.total else []):
        yield [value(k, v) for k, v in zip(kinds, row, strict=True)]


def csv_lines(tables: Iterable[Table]) -> Iterator[str]:
    for n, table in enumerate(tables):
        rows = ([[""]] if n else []) + [[neutralise(table.title)]] + list(_exported(table))
        yield from (_csv_line(row) for row in rows)


def xlsx_file(sheets: Iterable[tuple[str, Iterable[list[Any]]]]) -> Any:
    """An XLSX in a temporary file (constant memory: rows are written as they come), rewound."""
    handle = tempfile.TemporaryFile()
    book = xlsxwriter.Workbook(handle, {"constant_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False, "in_memory": False})
    seen: set[str] = set()
    for title, rows in sheets:
        name = _sheet_name(title, seen)
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                if isinstance(cell, (int, float)) and not isinstance(cell, bool):
                    sheet.write_number(r, c, cell)
                else:
                    sheet.write_string(r, c, neutralise(cell))
    book.close()
    handle.seek(0)
    return handle


def _sheet_name(title: Any, seen: set[str]) -> str:
    base = "".join(ch for ch in str(title) if ch not in "[]:*?/\\")[:28] or "Sheet"
    name, n = base, 1
    while name.lower() in seen:
        n += 1
        name = f"{base[:25]} {n}"
    seen.add(name.lower())
    return name


def download(tables: list[Table], filename: str, fmt: str) -> Response:
    if fmt == "csv":
        response = Response(stream_with_context(csv_lines(tables)), mimetype="text/csv")
    else:
        handle = xlsx_file((t.title, _exported(t)) for t in tables)
        response = Response(_chunks(handle), mimetype=XLSX_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _chunks(handle: Any, size: int = 64 * 1024) -> Iterator[bytes]:
    try:
        while chunk := handle.read(size):
            yield chunk
    finally:
        handle.close()


def rows_download(title: str, header: list[str], rows: Iterable[list[Any]], filename: str, fmt: str) -> Response:
    """One long list (the per-conversation export): CSV streamed as it is read, XLSX written then sent."""
    if fmt == "csv":
        response = Response(stream_with_context(_csv_line(row) for row in _prepend(header, rows)),
                            mimetype="text/csv")
    else:
        response = Response(_chunks(xlsx_file([(title, _prepend(header, rows))])), mimetype=XLSX_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


def _prepend(header: list[str], rows: Iterable[list[Any]]) -> Iterator[list[Any]]:
    yield header
    yield from rows


def _csv_line(row: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow([c if isinstance(c, (int, float)) else neutralise(c) for c in row])
    return out.getvalue()
