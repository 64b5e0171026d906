"""Issue 15 in a real Chromium: a supervisor opens the reports from the nav, picks a range and a grouping,
sees the charts and the tables, and downloads the CSV and the XLSX."""
from __future__ import annotations

import io
import os
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import browser_login, htmx_errors, settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHOTS = os.environ.get("CONVERSA_SCREENSHOTS")


@pytest.fixture
def centre(make, db):
    from webapp.models import AgentStateSpan, Interaction
    from webapp.services import report_rollups
    from webapp.services import time as clock

    group = make.group("norte")
    campaign = make.campaign(group, name="Ventas")
    make.user("sup", role="supervisor", groups=[group], name="Sofía Supervisora")
    ana = make.user("ana", groups=[group], name="Ana Pérez")
    other = make.campaign(make.group("sur"), name="Cobranzas")  # another group's: never shown
    now = clock.now()
    start = now - timedelta(days=1, hours=2)
    for n in range(12):
        created = start + timedelta(minutes=37 * n)
        db.session.add(Interaction(campaign_id=campaign.id, customer_number=f"+5989900{n:04d}", status="closed",
                                   agent_id=ana.id, created_at=created, first_reply_at=created + timedelta(seconds=15 * n),
                                   closed_at=created + timedelta(minutes=9), disposition="venta"))
    db.session.add(Interaction(campaign_id=other.id, customer_number="+59899999999", status="abandoned",
                               created_at=start, closed_at=start + timedelta(minutes=5)))
    db.session.add(AgentStateSpan(agent_id=ana.id, state="busy", cause="agent", started_at=start,
                                  ended_at=start + timedelta(hours=4)))
    db.session.commit()
    report_rollups.rebuild(now)
    db.session.commit()
    return {"first": clock.to_center(start).date(), "last": clock.to_center(now).date()}


def test_supervisor_picks_a_range_sees_charts_and_downloads(new_page, centre):
    page = new_page("en-US")
    errors = htmx_errors(page)
    browser_login(page, "sup")
    page.click("header nav a[href='/reports']")
    page.wait_for_url("**/reports/campaigns")
    assert "Cobranzas" not in page.content()
    page.fill("input[name=first]", centre["first"].isoformat())
    page.fill("input[name=last]", centre["last"].isoformat())
    page.select_option("select[name=period]", "hour")
    page.click("form.report-filter button.primary")
    settled(page)
    assert "period=hour" in page.url
    assert page.locator(".chart svg").count() == 2
    assert page.locator(".chart svg rect.bar.offered").count() > 1
    totals = page.locator(".report-table").first.locator("tfoot th")
    assert totals.nth(1).inner_text() == "12"
    header = page.locator(".report-table").first.locator("thead th").nth(1)
    assert "arrived" in (header.get_attribute("title") or "")
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "reports.png"), full_page=True)
    with page.expect_download() as csv_download:
        page.click("text=Download CSV")
    body = Path(csv_download.value.path()).read_text(encoding="utf-8")
    assert "Offered" in body and ",12," in body
    with page.expect_download() as xlsx_download:
        page.click("text=Download XLSX")
    book = zipfile.ZipFile(io.BytesIO(Path(xlsx_download.value.path()).read_bytes()))
    assert any(name.startswith("xl/worksheets/") for name in book.namelist())
    page.click("a[href='/reports/agents']")
    page.wait_for_url("**/reports/agents")
    assert page.locator(".chart svg rect.bar.busy").count() == 1 and "Ana Pérez" in page.content()
    assert errors == []
