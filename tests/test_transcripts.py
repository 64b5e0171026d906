"""S3 "Grabaciones": filters, group isolation, downloads in order, CSV formula neutralisation."""
from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from tests.helpers import login


def add(db, campaign, number, created, agent=None, status="closed", messages=(), **kw):
    from webapp.models import Interaction, Message

    item = Interaction(campaign_id=campaign.id, customer_number=number, status=status, created_at=created,
                       queued_at=created, agent_id=agent.id if agent else None,
                       closed_at=kw.pop("closed_at", created.replace(minute=59)), **kw)
    db.session.add(item)
    db.session.flush()
    for n, (kind, body, who) in enumerate(messages):
        db.session.add(Message(interaction_id=item.id, sender_kind=kind, body=body,
                               sender_user_id=who.id if who else None,
                               created_at=created.replace(second=n)))
    db.session.commit()
    return item


@pytest.fixture
def data(make, db):
    """Group norte: campaigns Ventas and Soporte, agents ana and beto; group sur: Cobranzas with oto.
    Times are UTC; the center is UTC-3, so 2025-03-10 02:00 UTC is the 9th locally."""
    g1, g2 = make.group("norte"), make.group("sur")
    ventas = make.campaign(g1, name="Ventas")
    soporte = make.campaign(g1, name="Soporte")
    cobranzas = make.campaign(g2, name="Cobranzas")
    sup = make.user("sup", role="supervisor", groups=[g1], name="Sofía")
    make.user("sup2", role="supervisor", groups=[g2])
    ana = make.user("ana", groups=[g1], name="Ana")
    beto = make.user("beto", groups=[g1], name="Beto")
    oto = make.user("oto", groups=[g2], name="Otto")
    items = {
        "v1": add(db, ventas, "+59899100100", datetime(2025, 3, 10, 14, 0), ana, disposition="sale", messages=[
            ("customer", "Hola, quiero precio", None), ("bot", "Te atiende un agente", None),
            ("agent", "Hola, son $100", ana), ("supervisor", "Ana, ofrecé cuotas", sup),
            ("customer", "=HYPERLINK(\"http://evil\",\"x\")", None)]),
        "v2": add(db, ventas, "+59899200200", datetime(2025, 3, 11, 14, 0), beto,
                  messages=[("customer", "+1 gracias", None)]),
        "s1": add(db, soporte, "+59899100999", datetime(2025, 3, 12, 14, 0), beto,
                  messages=[("customer", "@soporte no anda", None)]),
        "late": add(db, soporte, "+59898000000", datetime(2025, 3, 10, 2, 0), ana),  # the 9th locally
        "c1": add(db, cobranzas, "+59899100100", datetime(2025, 3, 10, 15, 0), oto,
                  messages=[("customer", "secreto de otro grupo", None)]),
    }
    return {"sup": sup, "ana": ana, "beto": beto, "oto": oto, "ventas": ventas, "soporte": soporte,
            "cobranzas": cobranzas, **items}


def ids(user, **kw):
    from webapp.services.transcripts import TranscriptFilter, search

    return [row.id for row in search(user, TranscriptFilter(**kw), per_page=100).rows]


def test_each_filter_narrows(data):
    from datetime import date

    sup = data["sup"]
    every = [data["s1"].id, data["v2"].id, data["v1"].id, data["late"].id]  # newest first, own groups only
    assert ids(sup) == every
    assert ids(sup, start=date(2025, 3, 11)) == [data["s1"].id, data["v2"].id]
    assert ids(sup, end=date(2025, 3, 10)) == [data["v1"].id, data["late"].id]
    assert ids(sup, start=date(2025, 3, 10), end=date(2025, 3, 10)) == [data["v1"].id]  # "late" is the 9th
    assert ids(sup, start=date(2025, 3, 9), end=date(2025, 3, 9)) == [data["late"].id]
    assert ids(sup, origin="100") == [data["s1"].id, data["v1"].id]
    assert ids(sup, origin="+598 99 100 100") == [data["v1"].id]
    assert ids(sup, origin="%") == every  # no wildcard injection: nothing to match on
    assert ids(sup, campaign_ids=[data["soporte"].id]) == [data["s1"].id, data["late"].id]
    assert ids(sup, agent_ids=[data["beto"].id]) == [data["s1"].id, data["v2"].id]
    assert ids(sup, agent_ids=[data["ana"].id], campaign_ids=[data["ventas"].id]) == [data["v1"].id]


def test_groups_are_isolated(data, client):
    sup = data["sup"]
    # Another group's campaign or agent in the filter finds nothing of theirs.
    assert ids(sup, campaign_ids=[data["cobranzas"].id]) == []
    assert ids(sup, agent_ids=[data["oto"].id]) == []
    login(client, "sup")
    page = client.get("/transcripts").get_data(as_text=True)
    assert "Cobranzas" not in page and "Otto" not in page and "secreto" not in page
    assert client.get(f"/transcripts/{data['c1'].id}").status_code == 404
    assert client.get(f"/transcripts/{data['c1'].id}.csv").status_code == 404
    export = client.get(f"/transcripts/export.csv?campaigns={data['cobranzas'].id}").get_data(as_text=True)
    assert len(list(csv.reader(io.StringIO(export)))) == 1  # the header only


def test_page_filters_and_paginates(data, client, db):
    from webapp.services import transcripts

    for n in range(30):
        add(db, data["ventas"], f"+5989700{n:04d}", datetime(2025, 4, 1, 12, n))
    login(client, "sup")
    first = client.get(f"/transcripts?campaigns={data['ventas'].id}&origin=59897").get_data(as_text=True)
    assert first.count('<tr id="transcript-') == transcripts.PER_PAGE
    assert "page=2" in first
    second = client.get(f"/transcripts?campaigns={data['ventas'].id}&origin=59897&page=2",
                        headers={"HX-Request": "true"}).get_data(as_text=True)
    assert second.count('<tr id="transcript-') == 5
    assert "+59897000000" in second and "<html" not in second


def test_conversation_shows_every_message_with_its_sender(data, client):
    login(client, "sup")
    text = client.get(f"/transcripts/{data['v1'].id}").get_data(as_text=True)
    order = ["Hola, quiero precio", "Te atiende un agente", "Hola, son $100", "Ana, ofrecé cuotas", "HYPERLINK"]
    positions = [text.index(t) for t in order]
    assert positions == sorted(positions)
    for sender in ("+59899100100", "Bot", "Ana", "Sofía"):
        assert f"<b>{sender}</b>" in text


def test_text_download_has_every_message_in_order(data, client):
    login(client, "sup")
    response = client.get(f"/transcripts/{data['v1'].id}.txt")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = [line for line in response.get_data(as_text=True).splitlines() if line.startswith("[")]
    assert [line.split("] ", 1)[1] for line in lines] == [
        "+59899100100: Hola, quiero precio", "Bot: Te atiende un agente", "Ana: Hola, son $100",
        "Sofía: Ana, ofrecé cuotas", '+59899100100: =HYPERLINK("http://evil","x")']
    assert lines[0].startswith("[2025-03-10 11:00:00]")  # center time


def test_csv_download_has_every_message_and_neutralises_formulas(data, client):
    login(client, "sup")
    response = client.get(f"/transcripts/{data['v1'].id}.csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 1 + 5
    assert [r[2] for r in rows[1:]] == ["'+59899100100", "Bot", "Ana", "Sofía", "'+59899100100"]
    assert [r[3] for r in rows[1:]][-1] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert rows[1][3] == "Hola, quiero precio"


def test_export_streams_the_filtered_list_neutralised(data, client):
    login(client, "sup")
    response = client.get(f"/transcripts/export.csv?campaigns={data['ventas'].id}&campaigns={data['soporte'].id}")
    assert response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert [r[0] for r in rows[1:]] == [str(data[k].id) for k in ("s1", "v2", "v1", "late")]
    assert all(r[4].startswith("'+598") for r in rows[1:])  # origin numbers start with "+"
    assert rows[3][9] == "sale" and rows[3][10] == "5"


@pytest.mark.parametrize("cell, expected", [
    ("=1+1", "'=1+1"), ("+54", "'+54"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("hola", "hola"), ("", ""), (None, ""), (12, "12"), ("a=b", "a=b"),
])
def test_neutralise(cell, expected):
    from webapp.services.transcripts import neutralise

    assert neutralise(cell) == expected


def test_export_reads_in_batches(data, db, app):
    """More rows than a batch: every one comes out once, newest first."""
    from webapp.services.transcripts import TranscriptFilter, export_csv

    for n in range(7):
        add(db, data["ventas"], f"+5989600{n:04d}", datetime(2025, 5, 1, 12, 0))  # same created_at: id breaks ties
    with app.test_request_context():
        lines = list(export_csv(data["sup"], TranscriptFilter(origin="59896"), batch=3))
    got = [line.split(",")[0] for line in lines[1:]]
    assert len(got) == 7 and len(set(got)) == 7
    assert got == sorted(got, key=int, reverse=True)


def test_a_start_after_the_end_says_so_beside_the_field_and_keeps_the_filters(data, client):
    """Issue 12.8: a start date after the end date searched quietly and found nothing."""
    login(client, "sup")
    query = f"/transcripts?start=2025-03-12&end=2025-03-10&origin=%2B59899&campaigns={data['ventas'].id}"
    page = client.get(query).get_data(as_text=True)
    error = "La fecha de inicio es posterior a la fecha de fin: cambie una de las dos."
    assert f'id="start-error" role="alert">{error}</small>' in page
    assert 'value="2025-03-12"' in page and 'value="2025-03-10"' in page and 'value="+59899"' in page
    assert "No se buscó nada" in page and f'id="transcript-{data["v1"].id}"' not in page
    fragment = client.get(query, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'data-fill="start-error">{error}</div>' in fragment and "No se buscó nada" in fragment
    fixed = client.get("/transcripts?start=2025-03-10&end=2025-03-12", headers={"HX-Request": "true"})
    assert '<div data-fill="start-error"></div>' in fixed.get_data(as_text=True)  # the old error goes
    assert f'id="transcript-{data["v1"].id}"' in fixed.get_data(as_text=True)
