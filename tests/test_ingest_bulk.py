"""F1 bulk upload: every rule refuses the whole file naming the line; good files load with the right states."""
from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa

from webapp.models import DoNotContact, SpoolMessage, SpoolState, SpoolUpload
from webapp.services import dnc
from webapp.services.ingest.bulk import load_bulk, preview_bulk
from webapp.services.ingest.files import CHUNK, FileRejected

REGION = "UY"


def csv(*lines: str, ending: str = "\n", encoding: str = "utf-8", bom: bool = False) -> io.BytesIO:
    data = ending.join(lines) + (ending if lines else "")
    return io.BytesIO((b"\xef\xbb\xbf" if bom else b"") + data.encode(encoding))


def spool_rows(db: Any) -> list[SpoolMessage]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(SpoolMessage).order_by(SpoolMessage.id)))


def counts(db: Any) -> tuple[int, int]:
    return (db.session.scalar(sa.select(sa.func.count(SpoolMessage.id))),
            db.session.scalar(sa.select(sa.func.count(SpoolUpload.id))))


@pytest.fixture
def dialers(make: Any) -> dict[str, Any]:
    group = make.group()
    return {"campsms": make.dialer(group, name="campsms", dncr=True),
            "nodnc": make.dialer(group, name="nodnc", dncr=False),
            "2go": make.dialer(group, name="2go")}


def test_manual_example_loads_with_fused_line_numbers(db: Any, dialers: dict[str, Any]) -> None:
    """The manual's file: `1campsms;098344384;Hola Mundo!;9999;` is line 1 of dialer campsms."""
    summary = load_bulk(csv("1campsms;098344384;Hola Mundo!;9999;  ", "2campsms;098356484;Hola Mundo!;9999;",
                            "3campsms;098378984;Hola Mundo!;9999"), "DISCTEST29042014.csv", region=REGION)
    assert (summary.loaded, summary.invalid, summary.blocked, summary.to_process) == (3, 0, 0, 3)
    rows = spool_rows(db)
    assert [r.destination for r in rows] == ["+59898344384", "+59898356484", "+59898378984"]
    assert {(r.dialer_id, r.body, r.priority, r.state, r.upload_id) for r in rows} == {
        (dialers["campsms"].id, "Hola Mundo!", 9999, SpoolState.TO_PROCESS, summary.upload_id)}
    upload = db.session.get(SpoolUpload, summary.upload_id)
    assert (upload.kind, upload.filename, upload.dialer_id) == ("bulk", "DISCTEST29042014.csv",
                                                                dialers["campsms"].id)
    assert upload.counts["loaded"] == 3
    assert upload.counts["per_dialer"] == {"campsms": {"loaded": 3, "to_process": 3, "invalid": 0,
                                                       "blocked": 0}}


def test_dialer_names_starting_with_digits(db: Any, dialers: dict[str, Any]) -> None:
    """A name as written wins; the line's own number is dropped only when that leaves a dialer's name."""
    load_bulk(csv("2go;098344384;a;1;", "22go;098344385;b;1;", "2go;098344386;c;1;",
                  "campsms;098344387;d;1;"), "f.csv", region=REGION)
    assert [r.dialer_id for r in spool_rows(db)] == [dialers["2go"].id] * 3 + [dialers["campsms"].id]


def test_fused_digits_must_be_the_line_number(db: Any, dialers: dict[str, Any]) -> None:
    """`5campsms` on line 1 is not line 1 of campsms: unknown dialer, line 1."""
    with pytest.raises(FileRejected) as err:
        load_bulk(csv("5campsms;098344384;a;1;"), "f.csv", region=REGION)
    assert (err.value.line, err.value.field) == (1, "campaign")
    assert counts(db) == (0, 0)


def test_states_invalid_blocked_and_dncr_off(db: Any, dialers: dict[str, Any]) -> None:
    """Invalid numbers load INVALID as written; listed ones BLOCKED only where the dialer has DNCR on."""
    dnc.add("099000001", source="manual")  # everyone
    dnc.add("099000002", dialer_id=dialers["campsms"].id, source="manual")
    dnc.add("099000003", dialer_id=dialers["nodnc"].id, source="manual")
    db.session.commit()
    summary = load_bulk(csv(
        "campsms;099000001;a;1;", "campsms;099000002;b;1;", "campsms;099000003;c;1;", "campsms;12345;d;1;",
        "nodnc;099000001;e;1;", "nodnc;099000003;f;1;", "nodnc;0981 234;g;1;"), "f.csv", region=REGION)
    assert [(r.destination, r.state) for r in spool_rows(db)] == [
        ("+59899000001", SpoolState.BLOCKED), ("+59899000002", SpoolState.BLOCKED),
        ("+59899000003", SpoolState.TO_PROCESS), ("12345", SpoolState.INVALID),
        ("+59899000001", SpoolState.TO_PROCESS), ("+59899000003", SpoolState.TO_PROCESS),
        ("0981 234", SpoolState.INVALID)]
    assert (summary.loaded, summary.to_process, summary.invalid, summary.blocked) == (7, 3, 2, 2)
    assert summary.per_dialer == {
        "campsms": {"loaded": 4, "to_process": 1, "invalid": 1, "blocked": 2},
        "nodnc": {"loaded": 3, "to_process": 2, "invalid": 1, "blocked": 0}}


@pytest.mark.parametrize("preload_max", [0, 200_000])
def test_blocked_with_long_and_short_lists(app: Any, db: Any, dialers: dict[str, Any], preload_max: int) -> None:
    """Same states whether the list is read once (short) or asked chunk by chunk (long)."""
    dnc.add("099000001", source="manual")
    dnc.add("099000002", dialer_id=dialers["campsms"].id, source="manual")
    db.session.commit()
    app.config["DNC_PRELOAD_MAX"] = preload_max
    try:
        load_bulk(csv("campsms;099000001;a;1;", "campsms;099000002;b;1;", "2go;099000002;c;1;",
                      "2go;099000001;d;1;"), "f.csv", region=REGION)
    finally:
        app.config.pop("DNC_PRELOAD_MAX")
    assert [r.state for r in spool_rows(db)] == [SpoolState.BLOCKED, SpoolState.BLOCKED,
                                                 SpoolState.TO_PROCESS, SpoolState.BLOCKED]


def test_e164_forms_priority_and_variables(db: Any, dialers: dict[str, Any]) -> None:
    """Every way of writing a number ends in E.164; extra columns fill {1}, {2}…"""
    load_bulk(csv("campsms;+598 98 344 384;Hola {1}, tu turno es el {2}.;0;Ana;lunes;",
                  "campsms;00598-98-344-385;Hola {1};12;Bruno",
                  "campsms;(099) 123.456;Sin variables;9999;ignorada;",
                  "campsms;+54 9 11 2345-6789;{2}{1};7;a;b"), "f.csv", region=REGION)
    assert [(r.destination, r.body, r.priority) for r in spool_rows(db)] == [
        ("+59898344384", "Hola Ana, tu turno es el lunes.", 0), ("+59898344385", "Hola Bruno", 12),
        ("+59899123456", "Sin variables", 9999), ("+5491123456789", "ba", 7)]


def test_bom_crlf_and_no_final_newline(db: Any, dialers: dict[str, Any]) -> None:
    """UTF-8 with BOM, Windows line ends, and a last line without newline all load."""
    summary = load_bulk(csv("campsms;098344384;Año nuevo, señor;1;", "campsms;098344385;ñandú;1;",
                            ending="\r\n", bom=True), "f.csv", region=REGION)
    assert summary.encoding == "utf-8 (BOM)"
    assert [r.body for r in spool_rows(db)] == ["Año nuevo, señor", "ñandú"]
    load_bulk(io.BytesIO("campsms;098344386;último;1".encode()), "g.csv", region=REGION)
    assert spool_rows(db)[-1].body == "último"


def test_cp1252_fallback(db: Any, dialers: dict[str, Any]) -> None:
    """A file that is not valid UTF-8 (Excel's CSV) is read as cp1252, and the summary says so."""
    summary = load_bulk(csv("campsms;098344384;Año nuevo €5;1;", encoding="cp1252"), "f.csv", region=REGION)
    assert summary.encoding == "cp1252"
    assert spool_rows(db)[0].body == "Año nuevo €5"


def test_preview_counts_segments_and_writes_nothing(db: Any, dialers: dict[str, Any]) -> None:
    """The preview checks the whole file, counts like the load, shows segments, and stores nothing."""
    dnc.add("099000001", source="manual")
    db.session.commit()
    long_text = "x" * 161
    preview = preview_bulk(csv("1campsms;099000001;Hola {1};5;Ana;", "2campsms;12;Olá, ação;1;",
                               f"3nodnc;099000002;{long_text};1;", "4nodnc;099000003;Precio 5€;1;"),
                           "f.csv", region=REGION, sample=2)
    assert (preview.total, preview.invalid, preview.blocked) == (4, 1, 1)
    assert preview.encoding_counts == {"gsm7": 3, "ucs2": 1}
    assert preview.segments_total == 1 + 1 + 2 + 1
    assert preview.per_dialer == {"campsms": {"loaded": 2, "to_process": 0, "invalid": 1, "blocked": 1},
                                  "nodnc": {"loaded": 2, "to_process": 2, "invalid": 0, "blocked": 0}}
    first, second = preview.rows
    assert (first.line, first.dialer, first.destination, first.e164, first.message, first.priority,
            first.encoding, first.segments, first.blocked) == (
        1, "campsms", "099000001", "+59899000001", "Hola Ana", 5, "gsm-7", 1, True)
    assert (second.line, second.e164, second.encoding, second.segments) == (2, None, "ucs-2", 1)
    assert counts(db) == (0, 0)


def test_preview_refuses_like_the_load(db: Any, dialers: dict[str, Any]) -> None:
    """A bad line anywhere fails the preview too, with its line."""
    with pytest.raises(FileRejected) as err:
        preview_bulk(csv("campsms;098344384;a;1;", "campsms;098344384;a;x;"), "f.csv", region=REGION)
    assert (err.value.line, err.value.field) == (2, "priority")


GOOD = "campsms;098344384;Hola;1;"


@pytest.mark.parametrize(("lines", "line", "field", "text"), [
    ([GOOD, "nadie;098344384;Hola;1;"], 2, "campaign", "nadie"),
    ([GOOD, "campsms;098344384;Hola"], 2, None, "3"),
    ([GOOD, "campsms;098344384;Hola;"], 2, None, "3"),
    ([GOOD, "", GOOD], 2, None, None),
    ([GOOD, "   ", GOOD], 2, None, None),
    ([GOOD, GOOD, ""], 3, None, None),  # a blank line after the last one
    ([GOOD, "campsms;098344384;Hola 'Ana';1;"], 2, "message", "'"),
    ([GOOD, 'campsms;098344384;Hola "Ana";1;'], 2, "message", '"'),
    ([GOOD, "campsms;098344384;ana@mail;1;"], 2, "message", "@"),
    ([GOOD, "campsms;098344384;a`b;1;"], 2, "message", "`"),
    ([GOOD, "campsms;098344384;<b>;1;"], 2, "message", "<"),
    ([GOOD, "campsms;0983\\44384;a;1;"], 2, "destination", "\\"),
    ([GOOD, "campsms;098344384;a\tb;1;"], 2, "message", "U+0009"),
    ([GOOD, "campsms;098344384;a;1;x@y;"], 2, "variable 1", "@"),
    ([GOOD, "campsms;098344384;Hola;alta;"], 2, "priority", "9999"),
    ([GOOD, "campsms;098344384;Hola;-1;"], 2, "priority", "9999"),
    ([GOOD, "campsms;098344384;Hola;10000;"], 2, "priority", "9999"),
    ([GOOD, "campsms;098344384;Hola;1.5;"], 2, "priority", "9999"),
    ([GOOD, "campsms;098344384;  ;1;"], 2, "message", None),
    ([GOOD, "campsms;098344384;" + "a" * 1601 + ";1;"], 2, "message", "1601"),
    ([GOOD, "campsms;098344384;Hola {2};1;Ana;"], 2, "message", "{2}"),
    ([GOOD, "campsms;;Hola;1;"], 2, "destination", None),
])
def test_each_rule_refuses_the_whole_file(db: Any, dialers: dict[str, Any], lines: list[str], line: int,
                                          field: str | None, text: str | None) -> None:
    """Refused with the right line and field; the spool (and the uploads) unchanged."""
    load_bulk(csv(GOOD), "before.csv", region=REGION)
    before = counts(db)
    with pytest.raises(FileRejected) as err:
        load_bulk(csv(*lines), "f.csv", region=REGION)
    assert (err.value.line, err.value.field) == (line, field)
    if text is not None:
        assert text in err.value.message
    assert str(err.value).startswith(f"línea {line}")
    assert counts(db) == before


def test_only_dialer_refuses_other_dialers(db: Any, dialers: dict[str, Any]) -> None:
    """From one dialer's dashboard, a line for another dialer refuses the file."""
    with pytest.raises(FileRejected) as err:
        load_bulk(csv(GOOD, "nodnc;098344384;Hola;1;"), "f.csv", region=REGION,
                  only_dialer_id=dialers["campsms"].id)
    assert (err.value.line, err.value.field) == (2, "campaign")
    assert counts(db) == (0, 0)
    summary = load_bulk(csv(GOOD), "f.csv", region=REGION, only_dialer_id=dialers["campsms"].id)
    assert summary.loaded == 1


@pytest.mark.parametrize("name", ["DISC TEST.csv", "disctest.txt", "a" * 61 + ".csv", "año.csv", "x;y.csv",
                                  ".csv", "DISCTEST"])
def test_file_name_rule(db: Any, dialers: dict[str, Any], name: str) -> None:
    """No spaces or odd characters, a .csv, at most 64 characters."""
    with pytest.raises(FileRejected) as err:
        load_bulk(csv(GOOD), name, region=REGION)
    assert (err.value.line, err.value.field) == (None, "filename")
    assert counts(db) == (0, 0)


def test_empty_file_refused(db: Any, dialers: dict[str, Any]) -> None:
    with pytest.raises(FileRejected) as err:
        load_bulk(io.BytesIO(b""), "f.csv", region=REGION)
    assert err.value.line is None
    assert counts(db) == (0, 0)


def test_bad_line_after_chunks_already_inserted_rolls_everything_back(db: Any, dialers: dict[str, Any]) -> None:
    """A refusal after several chunks went in leaves the spool exactly as before."""
    load_bulk(csv(GOOD, GOOD), "before.csv", region=REGION)
    before = counts(db)
    good = [f"campsms;0983{i % 100000:05d};Hola {{1}};{i % 10};n{i};" for i in range(CHUNK * 2 + 500)]
    with pytest.raises(FileRejected) as err:
        load_bulk(csv(*good, "campsms;098344384;Hola @;1;"), "big.csv", region=REGION)
    assert (err.value.line, err.value.field) == (CHUNK * 2 + 501, "message")
    assert counts(db) == before
    summary = load_bulk(csv(*good), "big.csv", region=REGION)
    assert summary.loaded == CHUNK * 2 + 500
    assert counts(db) == (before[0] + CHUNK * 2 + 500, before[1] + 1)


def test_load_publishes_dialer_counts_after_commit(app: Any, db: Any, dialers: dict[str, Any]) -> None:
    """Each affected dialer's dashboard hears `dialer.counts` once the rows are committed."""
    pubsub = app.extensions["conversa_redis"].pubsub()
    ids = sorted([dialers["campsms"].id, dialers["nodnc"].id])
    pubsub.subscribe(*[f"conversa:live:dialer:{i}" for i in ids])
    for _ in ids:
        pubsub.get_message(timeout=1)  # subscribe confirmations
    load_bulk(csv(GOOD, "nodnc;098344384;Hola;1;"), "f.csv", region=REGION)
    events = []
    deadline = time.monotonic() + 5
    while len(events) < 2 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message and message["type"] == "message":
            events.append(json.loads(message["data"]))
    pubsub.close()
    assert sorted((e["topic"], e["kind"], e["data"]["dialer_id"]) for e in events) == [
        (f"dialer:{i}", "dialer.counts", i) for i in ids]


def test_dnc_rows_are_not_changed_by_bulk(db: Any, dialers: dict[str, Any]) -> None:
    """Loading blocked rows leaves the do-not-contact list alone."""
    dnc.add("098344384", source="manual")
    db.session.commit()
    load_bulk(csv(GOOD), "f.csv", region=REGION)
    assert db.session.scalar(sa.select(sa.func.count(DoNotContact.id))) == 1


def test_progress_is_reported_after_each_chunk(db: Any, dialers: dict[str, Any]) -> None:
    """`on_progress` hears the rows written so far after every chunk (the background load's progress bar)."""
    seen: list[int] = []
    rows = [f"campsms;0983{i % 100000:05d};Hola;1;" for i in range(CHUNK * 2 + 500)]
    load_bulk(csv(*rows), "big.csv", region=REGION, on_progress=seen.append)
    assert seen == [CHUNK, CHUNK * 2, CHUNK * 2 + 500]


def test_before_commit_joins_the_load_transaction(db: Any, dialers: dict[str, Any]) -> None:
    """What `before_commit` writes commits with the rows; when it fails, the rows are rolled back with it."""
    from webapp.models import SecurityGroup

    def mark(summary: Any) -> None:
        db.session.add(SecurityGroup(name=f"loaded-{summary.loaded}"))
        db.session.flush()

    load_bulk(csv(GOOD, GOOD), "f.csv", region=REGION, before_commit=mark)
    db.session.expire_all()
    assert db.session.scalar(sa.select(SecurityGroup.id).where(SecurityGroup.name == "loaded-2")) is not None
    assert counts(db) == (2, 1)

    def fail(summary: Any) -> None:
        raise RuntimeError("taken over")

    with pytest.raises(RuntimeError):
        load_bulk(csv(GOOD, GOOD, GOOD), "g.csv", region=REGION, before_commit=fail)
    assert counts(db) == (2, 1)
