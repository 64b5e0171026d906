"""Issue 12.1 in a real Chromium: an agent's page closes without signing out; within the grace plus a sweep
the supervisor's monitor shows them disconnected and their customers waiting again (saying who had them),
and a new customer goes to another agent."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.helpers import browser_login, htmx_errors, run_jobs, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser]
GRACE = 2.0


@pytest.fixture
def floor(make, db, app, monkeypatch):
    from webapp.models import BreakType, Interaction, Message, utcnow

    monkeypatch.setitem(app.config, "PRESENCE_GRACE_SECONDS", GRACE)
    group = make.group("norte")
    provider = make.provider("sandbox", sender="+59829000000")
    campaign = make.campaign(group, provider, name="Ventas", did="+59829000000", strategy="linear_nopause")
    make.user("sup", role="supervisor", groups=[group], name="Sofía Supervisora")
    ana = make.user("ana", groups=[group], name="Ana Pérez")
    beto = make.user("beto", groups=[group], name="Beto Gómez")
    make.member(campaign, ana, position=0)
    make.member(campaign, beto, position=1)
    db.session.add(BreakType(name="Almuerzo", icon="🍽"))
    now = utcnow()
    talks = []
    for n, status in enumerate(("active", "assigned")):
        talk = Interaction(campaign_id=campaign.id, customer_number=f"+5989911100{n}", status=status,
                           agent_id=ana.id, created_at=now - timedelta(minutes=3 - n), queued_at=now,
                           assigned_at=now, first_reply_at=now if status == "active" else None)
        db.session.add(talk)
        db.session.flush()
        db.session.add(Message(interaction_id=talk.id, sender_kind="customer", body="Hola"))
        talks.append(talk)
    db.session.commit()
    return {"campaign": campaign, "provider": provider, "ana": ana, "beto": beto, "talks": talks}


def test_a_closed_page_disconnects_the_agent_and_their_customers_wait_again(new_page, floor, db, app):
    from playwright.sync_api import expect

    from webapp.models import Interaction, User
    from webapp.providers.base import InboundMessage
    from webapp.services import agents, interactions

    ana_id, beto_id = floor["ana"].id, floor["beto"].id
    agent_page = new_page()
    browser_login(agent_page, "ana")
    expect(agent_page.locator("body")).to_have_attribute("data-live", "on")
    beto_page = new_page()
    browser_login(beto_page, "beto")
    expect(beto_page.locator("body")).to_have_attribute("data-live", "on")
    sup = new_page()
    sup.set_viewport_size({"width": 1440, "height": 900})
    errors = htmx_errors(sup)
    browser_login(sup, "sup")
    sup.goto("/monitor")
    expect(sup.locator("body")).to_have_attribute("data-live", "on")
    expect(sup.locator(f"#agent-{ana_id}-row")).to_have_class("agent-row st-busy")
    expect(sup.locator("#waiting-list .wrow")).to_have_count(0)

    # Pages that stay open keep their agents connected past the grace (the sweep runs as the clock would).
    for _ in range(int(GRACE * 2 / 0.25)):
        assert agents.sweep_presence() == []
        sup.wait_for_timeout(250)

    agent_page.context.close()  # the tab (the browser) goes away; nobody signed out

    def swept() -> bool:
        return ana_id in agents.sweep_presence()

    wait_until(swept, GRACE * 5, "the sweep to disconnect ana")
    expect(sup.locator(f"#agent-{ana_id}-row")).to_have_class("agent-row st-disconnected")
    expect(sup.locator(f"#agent-{beto_id}-row")).to_have_class("agent-row st-free")
    expect(sup.locator("#waiting-list .wrow")).to_have_count(2)
    for talk in floor["talks"]:
        row = sup.locator(f"#waiting-{talk.id}")
        expect(row).to_contain_text(talk.customer_number)
        expect(row).to_contain_text("estaba con Ana Pérez")

    # A new customer writes: routing (the job the hand-back and the message queued) never picks Ana.
    interactions.receive_inbound(floor["provider"], InboundMessage(
        provider_message_id="new-1", from_number="+59899222333", to="+59829000000", body="Buenas"))
    db.session.commit()
    run_jobs(app)
    db.session.expire_all()
    new = db.session.scalar(sa.select(Interaction).where(Interaction.customer_number == "+59899222333"))
    assert new.agent_id == beto_id
    assert db.session.get(User, ana_id).state == "disconnected"
    expect(beto_page.locator(f"#interaction-{new.id}")).to_be_visible()
    expect(sup.locator("#waiting-list .wrow")).to_have_count(0)  # all with Beto now, answered ones first

    # Beto goes on a break before answering them: his page says what went where, and they wait again.
    beto_page.locator("#agent-state summary").click()
    beto_page.locator("#agent-state button.break").click()
    notice = beto_page.locator("#handback-notice")
    expect(notice).to_contain_text("3 conversaciones volvieron a la cola")
    expect(notice).to_contain_text("+59899222333")
    expect(sup.locator("#waiting-list .wrow")).to_have_count(3)
    notice.locator("button").click()
    expect(notice).to_be_hidden()
    assert errors == []
