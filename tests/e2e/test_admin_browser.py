"""The admin pages in a real Chromium: provider, campaign with schedule rows (+ and -), members, language."""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from tests.helpers import browser_login

pytestmark = [pytest.mark.slow, pytest.mark.browser]
SHOTS = os.environ.get("CONVERSA_SCREENSHOTS")  # a directory: save screenshots there to look at them


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def test_admin_sets_up_provider_campaign_and_members(new_page, make, db):
    """Sign in as admin, create a provider, a campaign with schedule rows, assign two agents, switch to English."""
    from webapp.models import Campaign, Membership, Provider

    group = make.group("ventas")
    make.user("root", role="admin", groups=[group], name="Root")
    make.user("ana", groups=[group], name="Ana Pérez")
    make.user("beto", groups=[group], name="Beto Gómez")
    page = new_page()
    page.set_viewport_size({"width": 1100, "height": 800})
    browser_login(page, "root")

    # Provider: Twilio shows its own credential fields once picked (htmx swaps them in).
    page.goto("/admin/providers")
    page.fill("input[name=name]", "Twilio UY")
    page.select_option("select[name=type]", "twilio")
    page.wait_for_selector("input[name=cred-account_sid]")
    assert page.locator("input[name=cred-username]").count() == 0
    page.fill("input[name=cred-account_sid]", "AC123456789")
    page.fill("input[name=cred-auth_token]", "token-very-secret")
    page.fill("input[name=sender]", "+59829001234")
    _shot(page, "provider-new")
    page.click("button.primary[type=submit]")
    page.wait_for_url("**/admin/providers/*")
    assert "/webhooks/" in page.content()
    assert "token-very-secret" not in page.content()
    _shot(page, "provider-edit")
    provider = db.session.scalar(sa.select(Provider).where(Provider.name == "Twilio UY"))
    assert provider.credentials == {"account_sid": "AC123456789", "auth_token": "token-very-secret"}

    # Campaign: two schedule entries with "+", a third removed with "-", all in place before saving.
    page.goto("/campaigns")
    page.fill("input[name=name]", "Soporte")
    page.fill("input[name=did]", "+59829001234")
    page.select_option("select[name=provider_id]", str(provider.id))
    page.select_option("select[name=strategy]", "linear_nocall")
    url_before = page.url
    for count in (1, 2, 3):
        page.click("#schedule-rows button[value=schedule-add]")
        page.wait_for_function(f"document.querySelectorAll('#schedule-rows li.schedule-row').length == {count}")
    assert page.url == url_before  # in place, nothing saved
    assert db.session.scalar(sa.select(sa.func.count(Campaign.id))) == 0
    page.fill("input[name=schedule-1-start]", "14:00")
    page.fill("input[name=schedule-1-end]", "22:00")
    page.check("input[name=schedule_selected][value='2']")
    page.click("#schedule-rows button[value=schedule-remove]")
    page.wait_for_function("document.querySelectorAll('#schedule-rows li.schedule-row').length == 2")
    assert page.input_value("input[name=schedule-1-start]") == "14:00"  # what was typed stays
    page.click("details.advanced summary")
    _shot(page, "campaign-new")
    page.click("form button.primary[type=submit]")
    page.wait_for_url("**/campaigns/*")
    assert page.locator("#campaigns-table").inner_text().count("Soporte") == 1
    _shot(page, "campaign-edit")
    db.session.expire_all()
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.name == "Soporte"))
    assert [(e.start_time.strftime("%H:%M"), e.end_time.strftime("%H:%M")) for e in campaign.schedule] == [
        ("09:00", "18:00"), ("14:00", "22:00")]

    # Members: pick the campaign and both agents, Add; the members column shows them.
    page.goto("/members")
    page.select_option("#pick-campaigns", [str(campaign.id)])
    page.wait_for_selector(f"#campaign-{campaign.id}-members")
    page.select_option("#pick-agents", label=["Ana Pérez", "Beto Gómez"])
    page.click("button:has-text('Agregar')")
    page.wait_for_selector(f"#campaign-{campaign.id}-members table")
    column = page.locator("#members-column").inner_text()
    assert "Ana Pérez" in column and "Beto Gómez" in column
    _shot(page, "members")
    assert db.session.scalar(sa.select(sa.func.count(Membership.id))) == 2

    # Language: English labels after picking English.
    page.click("form.lang button")
    page.wait_for_load_state("networkidle")
    page.goto("/campaigns")
    assert page.locator("h1").first.inner_text() == "New campaign"
    assert "Strategy" in page.content() and "Estrategia" not in page.content()
    _shot(page, "campaigns-en")


def test_schedule_minus_without_selection_says_so(new_page, make):
    """"-" with nothing selected removes nothing and says to select one first."""
    group = make.group()
    make.user("root", role="admin", groups=[group])
    make.provider()
    page = new_page()
    browser_login(page, "root")
    page.goto("/campaigns")
    page.click("#schedule-rows button[value=schedule-add]")
    page.wait_for_selector("#schedule-rows li.schedule-row")
    page.click("#schedule-rows button[value=schedule-remove]")
    page.wait_for_selector("#schedule-rows .error")
    assert page.locator("#schedule-rows li.schedule-row").count() == 1
    assert "Seleccione primero" in page.locator("#schedule-rows .error").inner_text()
