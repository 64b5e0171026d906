"""F2 do-not-contact: uploads (rules, all or nothing, scopes, no doubles) and the dnc service."""
from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from webapp.models import DoNotContact, SpoolUpload
from webapp.services import dnc
from webapp.services.ingest.do_not_contact import load_dnc
from webapp.services.ingest.files import CHUNK, FileRejected


def csv(*lines: str) -> io.BytesIO:
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def entries(db: Any) -> list[tuple[str, int | None, int | None, str]]:
    db.session.expire_all()
    return [tuple(row) for row in db.session.execute(sa.select(
        DoNotContact.phone, DoNotContact.dialer_id, DoNotContact.campaign_id, DoNotContact.source).order_by(
        DoNotContact.id))]


def counts(db: Any) -> tuple[int, int]:
    return (db.session.scalar(sa.select(sa.func.count(DoNotContact.id))),
            db.session.scalar(sa.select(sa.func.count(SpoolUpload.id))))


@pytest.fixture
def scope(make: Any) -> dict[str, Any]:
    group = make.group()
    return {"marcadortest": make.dialer(group, name="marcadortest"), "otro": make.dialer(group, name="otro"),
            "ventas": make.campaign(group, name="ventas")}


def test_manual_example(db: Any, scope: dict[str, Any]) -> None:
    """`123578408;marcadortest;` is line 1 of number 23578408 (the manual fuses line numbers)."""
    summary = load_dnc(csv("123578408;marcadortest;", "223113758;marcadortest;", "322150696;marcadortest;",
                           "422016549;marcadortest;"), "DNCR.csv")
    d = scope["marcadortest"].id
    assert (summary.added, summary.already, summary.invalid) == (4, 0, 0)
    assert entries(db) == [("+59823578408", d, None, "upload"), ("+59823113758", d, None, "upload"),
                           ("+59822150696", d, None, "upload"), ("+59822016549", d, None, "upload")]
    upload = db.session.get(SpoolUpload, summary.upload_id)
    assert (upload.kind, upload.counts["added"]) == ("dnc", 4)


def test_scope_by_dialer_and_campaign(db: Any, scope: dict[str, Any]) -> None:
    """A dialer's entry blocks that dialer only; a campaign name makes a campaign entry."""
    load_dnc(csv("098344384;marcadortest;", "+598 99 123 456;ventas"), "f.csv")
    mt, otro, ventas = scope["marcadortest"].id, scope["otro"].id, scope["ventas"].id
    assert dnc.is_blocked("098344384", dialer_id=mt) is True
    assert dnc.is_blocked("+59898344384", dialer_id=otro) is False
    assert dnc.is_blocked("099123456", campaign_id=ventas) is True
    assert dnc.is_blocked("099123456", dialer_id=mt) is False
    assert dnc.blocked_among(["098344384", "099123456", "+59898344384"], dialer_id=mt) == {"+59898344384"}
    assert dnc.blocked_among(["098344384"], dialer_id=otro) == set()


def test_duplicates_not_doubled(db: Any, scope: dict[str, Any]) -> None:
    """Twice in a file, or again in a later file (even spread over chunks): one row per number and scope."""
    first = load_dnc(csv("098344384;marcadortest;", "98344384;marcadortest;", "098344384;otro;"), "f.csv")
    assert (first.added, first.already) == (2, 1)
    lines = ([f"0983{i:05d};marcadortest;" for i in range(CHUNK + 10)]
             + ["098300001;marcadortest;", "098344384;marcadortest;"])  # twice in the file; listed before
    second = load_dnc(csv(*lines), "g.csv")
    assert (second.added, second.already) == (CHUNK + 10, 2)
    assert counts(db)[0] == 2 + CHUNK + 10


@pytest.mark.parametrize(("lines", "line", "field"), [
    (["098344384;marcadortest;", "098344385;nadie;"], 2, "campaign"),
    (["098344384;marcadortest;", "098344385;"], 2, None),
    (["098344384;marcadortest;", "098344385"], 2, None),
    (["098344384;marcadortest;", "", "098344386;marcadortest;"], 2, None),
    (["098344384;marcadortest;", "0983@44385;marcadortest;"], 2, "phone"),
    (["098344384;marcadortest;", "098344385;marcador'test;"], 2, "campaign"),
    (["098344384;marcadortest;", "098344385;marcadortest;extra;"], 2, "column 3"),
    (["098344384;marcadortest;", "sin numero;marcadortest;"], 2, "phone"),
])
def test_each_rule_refuses_the_whole_file(db: Any, scope: dict[str, Any], lines: list[str], line: int,
                                          field: str | None) -> None:
    """Refused naming the line (and field); the list unchanged."""
    before = counts(db)
    with pytest.raises(FileRejected) as err:
        load_dnc(csv(*lines), "f.csv")
    assert (err.value.line, err.value.field) == (line, field)
    assert counts(db) == before


def test_blank_line_at_end_and_file_name(db: Any, scope: dict[str, Any]) -> None:
    """No blank line after the last one; the file name rule is F1's."""
    with pytest.raises(FileRejected) as err:
        load_dnc(io.BytesIO(b"098344384;marcadortest;\n\n"), "f.csv")
    assert err.value.line == 2
    with pytest.raises(FileRejected) as err:
        load_dnc(csv("098344384;marcadortest;"), "lista negra.csv")
    assert err.value.field == "filename"
    assert counts(db) == (0, 0)


def test_all_or_nothing_after_chunks(db: Any, scope: dict[str, Any]) -> None:
    """A bad line after whole chunks were inserted: nothing stays."""
    lines = [f"0983{i:05d};marcadortest;" for i in range(CHUNK * 2 + 3)] + ["098344384;nadie;"]
    with pytest.raises(FileRejected) as err:
        load_dnc(csv(*lines), "f.csv")
    assert err.value.line == CHUNK * 2 + 4
    assert counts(db) == (0, 0)


def test_only_dialer(db: Any, scope: dict[str, Any]) -> None:
    """From a dialer's dashboard, lines for other dialers are refused."""
    with pytest.raises(FileRejected) as err:
        load_dnc(csv("098344384;marcadortest;", "098344385;otro;"), "f.csv",
                 only_dialer_id=scope["marcadortest"].id)
    assert (err.value.line, err.value.field) == (2, "campaign")
    assert counts(db) == (0, 0)


def test_add_is_null_safe_and_remove_is_scoped(db: Any, scope: dict[str, Any]) -> None:
    """Global entries (both scopes NULL) are not doubled; remove touches one scope only."""
    mt = scope["marcadortest"].id
    assert dnc.add("098344384", source="keyword") is True
    assert dnc.add("+598 98 344 384", source="keyword") is False
    assert dnc.add("098344384", dialer_id=mt, source="manual") is True
    assert dnc.add("098344384", dialer_id=mt, source="manual") is False
    db.session.commit()
    assert entries(db) == [("+59898344384", None, None, "keyword"), ("+59898344384", mt, None, "manual")]
    assert dnc.is_blocked("098344384", dialer_id=scope["otro"].id) is True  # global
    assert dnc.remove("098344384") == 1
    db.session.commit()
    assert dnc.is_blocked("098344384", dialer_id=scope["otro"].id) is False
    assert dnc.is_blocked("098344384", dialer_id=mt) is True


def test_normalise() -> None:
    """E.164 when valid, digits otherwise, None without digits."""
    assert dnc.normalise("098344384", "UY") == "+59898344384"
    assert dnc.normalise("123", "UY") == "123"
    assert dnc.normalise("+12 3", "UY") == "+123"
    assert dnc.normalise("abc", "UY") is None


def test_blocked_among_is_one_query(db: Any, scope: dict[str, Any]) -> None:
    """A batch of numbers costs one SELECT, whatever its size."""
    dnc.add("098344384", source="manual")
    db.session.commit()
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        found = dnc.blocked_among([f"0983{i:05d}" for i in range(43000, 45000)],
                                  dialer_id=scope["marcadortest"].id)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert found == {"+59898344384"}
    assert len([s for s in statements if "do_not_contact" in s]) == 1
