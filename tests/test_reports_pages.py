"""Issue 15: the report pages, their charts and tables, and the CSV / XLSX downloads."""
from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta

import pytest

from tests.helpers import login


@pytest.fixture
def data(app, make, db):
    from webapp.models import AgentStateSpan, Interaction, SpoolMessage
    from webapp.services import report_rollups
    from webapp.services import time as clock

    g = make.group()
    camp = make.campaign(g, name="Ventas")
    make.user("sup", role="supervisor", groups=[g], language="en")
    ana = make.user("ana", groups=[g], name="Ana")
    dialer = make.dialer(g, name="Avisos")
    now = clock.now()
    start = now - timedelta(hours=3)
    db.session.add_all([
        Interaction(campaign_id=camp.id, customer_number="+59899000001", status="closed", agent_id=ana.id,
                    created_at=start, first_reply_at=start + timedelta(seconds=20),
                    closed_at=start + timedelta(minutes=5), disposition="=HYPERLINK(\"http://x\")"),
        Interaction(campaign_id=camp.id, customer_number="+59899000002", status="abandoned",
                    created_at=start + timedelta(minutes=1), closed_at=start + timedelta(minutes=20)),
        AgentStateSpan(agent_id=ana.id, state="busy", cause="agent", started_at=start,
                       ended_at=start + timedelta(hours=1)),
        SpoolMessage(dialer_id=dialer.id, destination="+59899000003", body="x", state=7, created_at=start,
                     sent_at=start, delivered_at=start)])
    db.session.commit()
    report_rollups.rebuild(now)
    db.session.commit()
    # The traffic began 3 h ago: in the centre's time that may be yesterday (a run just after midnight).
    return {"campaign": camp, "agent": ana, "dialer": dialer, "day": clock.to_center(start).date(),
            "last_day": clock.to_center(now).date()}


def query(data, period="hour"):
    return f"first={data['day']}&last={data['last_day']}&period={period}"


@pytest.mark.parametrize("kind", ["campaigns", "agents", "dialers"])
def test_a_supervisor_sees_each_report_with_its_definitions(client, data, kind):
    login(client, "sup")
    page = client.get(f"/reports/{kind}?{query(data)}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<table" in html and 'href="#def-' in html and 'id="definitions"' in html
    if kind != "dialers":
        assert "<svg" in html and 'role="img"' in html
    name = {"campaigns": "Ventas", "agents": "Ana", "dialers": "Avisos"}[kind]
    assert name in html


def test_htmx_gets_the_results_alone_and_a_bad_range_says_why(client, data):
    login(client, "sup")
    fragment = client.get(f"/reports/campaigns?{query(data)}", headers={"HX-Request": "true"})
    assert fragment.get_data(as_text=True).lstrip().startswith("<section id=\"report-results\"")
    bad = client.get("/reports/campaigns?first=2026-03-02&last=2026-03-01").get_data(as_text=True)
    assert "The end date is before the start date." in bad
    assert client.get("/reports/campaigns?first=nope").status_code == 200


def test_csv_and_xlsx_carry_the_figures_with_formulas_neutralised(client, data):
    login(client, "sup")
    text = client.get(f"/reports/campaigns.csv?{query(data, 'day')}").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[1]
    total = next(r for r in rows if r and r[0] == "Total")
    assert total[header.index("Offered")] == "2" and total[header.index("Abandoned")] == "1"
    assert ["'=HYPERLINK(\"http://x\")", "1"] in rows
    xlsx = client.get(f"/reports/campaigns.xlsx?{query(data, 'day')}")
    assert xlsx.mimetype.endswith("spreadsheetml.sheet")
    book = zipfile.ZipFile(io.BytesIO(xlsx.data))
    sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/sheet")]
    assert len(sheets) == 3 and not any(b"<f>" in book.read(n) for n in sheets)
    strings = book.read("xl/sharedStrings.xml").decode() if "xl/sharedStrings.xml" in book.namelist() else "".join(
        book.read(n).decode() for n in sheets)
    assert "&apos;=HYPERLINK" in strings or "'=HYPERLINK" in strings


def test_per_conversation_export_has_one_row_per_interaction(client, data):
    login(client, "sup")
    text = client.get(f"/reports/conversations.csv?{query(data, 'day')}").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 3
    head, first = rows[0], rows[1]
    assert first[head.index("Disposition")] == "'=HYPERLINK(\"http://x\")"
    assert first[head.index("Wait (s)")] == "20.0" and first[head.index("Handle time (s)")] == "280.0"
    assert rows[2][head.index("Status")] == "abandoned" and rows[2][head.index("Wait (s)")] == "1140.0"
    xlsx = client.get(f"/reports/conversations.xlsx?{query(data, 'day')}")
    assert zipfile.ZipFile(io.BytesIO(xlsx.data)).namelist()


def test_the_nav_links_to_reports_for_staff_only(client, make, data):
    login(client, "sup")
    assert 'href="/reports"' in client.get("/campaigns").get_data(as_text=True)
    agent = client.application.test_client()
    login(agent, "ana")
    assert 'href="/reports"' not in agent.get("/inbox").get_data(as_text=True)
