"""S1/S2 in a real Chromium, two browser contexts (supervisor and agent): the supervisor watches the wallboard,
spies a conversation and sees a customer's new message arrive, pauses the agent (both pages show the break),
chats both ways, and logs the agent out: the agent's page lands on sign-in by itself."""
from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest

from tests.helpers import browser_login, htmx_errors, settled

pytestmark = [pytest.mark.slow, pytest.mark.browser]
SHOTS = os.environ.get("CONVERSA_SCREENSHOTS")  # a directory: save screenshots there to look at them


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=False)


@pytest.fixture
def floor(make, db):
    """One campaign of group "norte" with a supervisor, two agents (ana busy with a customer) and waiting customers."""
    from webapp.models import BreakType, Interaction, Message, utcnow

    group = make.group("norte")
    provider = make.provider("sandbox", sender="+59829000000")
    campaign = make.campaign(group, provider, name="Ventas", did="+59829000000", acd_max_waiting=2,
                             service_level_target=80)
    make.user("sup", role="supervisor", groups=[group], name="Sofía Supervisora")
    ana = make.user("ana", groups=[group], name="Ana Pérez", monitor_screen_allowed=True)
    beto = make.user("beto", groups=[group], name="Beto Gómez", state="free")
    make.member(campaign, ana)
    make.member(campaign, beto)
    db.session.add(BreakType(name="Almuerzo", icon="🍽"))
    now = utcnow()
    talk = Interaction(campaign_id=campaign.id, customer_number="+59899111222", status="active", agent_id=ana.id,
                       created_at=now - timedelta(minutes=3), assigned_at=now - timedelta(minutes=3),
                       first_reply_at=now - timedelta(minutes=2), queued_at=now - timedelta(minutes=3))
    db.session.add(talk)
    db.session.flush()
    db.session.add_all([
        Message(interaction_id=talk.id, sender_kind="customer", body="Hola, ¿tienen envío a Salto?"),
        Message(interaction_id=talk.id, sender_kind="agent", sender_user_id=ana.id, body="¡Hola! Sí, en 48 h."),
    ])
    for n in range(3):
        db.session.add(Interaction(campaign_id=campaign.id, customer_number=f"+5989855500{n}", status="waiting",
                                   created_at=now - timedelta(seconds=40 * (n + 1)),
                                   queued_at=now - timedelta(seconds=40 * (n + 1))))
    db.session.commit()
    return {"campaign": campaign, "provider": provider, "ana": ana, "beto": beto, "talk": talk}


def test_supervisor_spies_pauses_chats_and_logs_out(new_page, floor, db):
    from playwright.sync_api import expect

    from webapp.providers.base import InboundMessage
    from webapp.services import interactions

    agent_page = new_page()
    agent_page.set_viewport_size({"width": 1280, "height": 800})
    browser_login(agent_page, "ana")
    assert agent_page.url.endswith("/inbox")
    ana_id, talk_id = floor["ana"].id, floor["talk"].id

    sup = new_page()
    sup.set_viewport_size({"width": 1440, "height": 900})
    sup.on("dialog", lambda dialog: dialog.accept())  # "log out agent?" confirmation
    browser_login(sup, "sup")
    sup.goto("/monitor")
    expect(sup.locator("body")).to_have_attribute("data-live", "on")
    row = sup.locator(f"#agent-{ana_id}-row")
    expect(row).to_contain_text("Ana Pérez")
    expect(sup.locator(f"#campaign-{floor['campaign'].id}-stats [data-fig=waiting]")).to_have_class("fig over")
    expect(sup.locator("#waiting-list .wrow")).to_have_count(3)
    _shot(sup, "monitor")

    # Spy: the open conversation, then a new customer message arrives live.
    row.click()
    settled(sup)
    sup.locator("[data-action=spy]").click()
    settled(sup)
    messages = sup.locator(f"#messages-{talk_id}")
    expect(messages).to_contain_text("en 48 h")
    provider = db.session.merge(floor["provider"])
    interactions.receive_inbound(provider, InboundMessage(provider_message_id="SM-e2e-1", from_number="+59899111222",
                                                          to="+59829000000", body="¿Y el costo del envío?"))
    db.session.commit()
    expect(messages).to_contain_text("¿Y el costo del envío?")
    _shot(sup, "spy")

    # Pause: both pages show the break.
    sup.select_option("#agent-panel select[name=break_type_id]", label="🍽 Almuerzo")
    sup.locator("[data-action=pause]").click()
    settled(sup)
    expect(sup.locator("#agent-panel")).to_contain_text("Almuerzo")
    expect(row).to_contain_text("Almuerzo")
    expect(agent_page.locator("body")).to_contain_text("Almuerzo")
    _shot(agent_page, "agent-paused")

    # Chat both ways.
    sup.locator("[data-action=chat]").click()
    settled(sup)
    sup.fill(f"#chat-body-{ana_id}", "Ana, cuando vuelvas tomá la cola de Ventas")
    sup.locator("[data-action=send-chat]").click()
    settled(sup)
    expect(sup.locator(f"#chat-log-{ana_id}")).to_contain_text("tomá la cola")
    expect(agent_page.locator("body")).to_contain_text("tomá la cola de Ventas")
    agent_page.evaluate("""() => {
        const form = document.querySelector('form.chat-form');
        form.querySelector('input[name=body]').value = 'Dale, en 5 minutos';
        htmx.trigger(form, 'submit');
    }""")
    expect(sup.locator(f"#chat-log-{ana_id}")).to_contain_text("Dale, en 5 minutos")
    _shot(sup, "chat")

    # Log out: the agent's page goes to sign-in without the agent doing anything.
    sup.locator("[data-action=logout]").click()
    expect(sup.locator("#agent-panel")).to_contain_text("Ana Pérez")
    # (The socket's redirect and an htmx poll answered 401 may both navigate: look at the URL, not a load event.
    # If the agent's socket happened to be reconnecting when the session ended, the page's 5 s polling
    # fallback gets the 401 + HX-Redirect instead: allow for one poll.)
    expect(agent_page).to_have_url(re.compile(r"/login"), timeout=15_000)
    expect(agent_page.locator("input[name=password]")).to_be_visible()
    expect(row).to_contain_text(sup.evaluate("() => document.documentElement.lang") == "es" and "Desconectado"
                                or "Disconnected")
    _shot(sup, "after-logout")


def test_monitor_screenshots_in_both_languages(new_page, floor, make):
    """Not an assertion of looks: the wallboard in Spanish and English for a person to check."""
    from playwright.sync_api import expect

    for locale in ("es-UY", "en-US"):
        page = new_page(locale=locale)
        page.set_viewport_size({"width": 1440, "height": 900})
        browser_login(page, "sup")
        page.goto("/monitor")
        expect(page.locator("#monitor-agents")).to_contain_text("Beto")
        _shot(page, f"monitor-{locale}")
        page.goto("/transcripts?origin=59899111222")
        expect(page.locator("#transcript-results")).to_contain_text("+59899111222")
        page.locator("[data-action=open]").first.click()
        expect(page.locator("#transcript-view")).to_contain_text("Hola")
        _shot(page, f"transcripts-{locale}")


def test_agent_row_follows_conversations_live(new_page, floor, db):
    """Ana, with two customers, closes one: her state stays as it was (no state event), so only the campaign's
    interaction.changed event can bring her row's new figures. They must arrive without a reload."""
    from playwright.sync_api import expect

    from webapp.models import Interaction, User, utcnow
    from webapp.services import interactions

    ana_id, campaign_id = floor["ana"].id, floor["campaign"].id
    db.session.add(Interaction(campaign_id=campaign_id, customer_number="+59899333444", status="active",
                               agent_id=ana_id, channel="whatsapp", created_at=utcnow(), assigned_at=utcnow(),
                               queued_at=utcnow()))
    db.session.commit()
    sup = new_page()
    sup.set_viewport_size({"width": 1440, "height": 900})
    logged = htmx_errors(sup)
    browser_login(sup, "sup")
    sup.goto("/monitor")
    expect(sup.locator("body")).to_have_attribute("data-live", "on")
    row = sup.locator(f"#agent-{ana_id}-row")
    completed, active = row.locator("td.num").nth(0), row.locator("td.num").nth(1)
    expect(active).to_have_text("2")
    expect(completed).to_have_text("0")
    expect(row.locator("td.channels")).to_contain_text("WA")

    state = db.session.get(User, ana_id).state
    interactions.close(db.session.get(Interaction, floor["talk"].id), db.session.get(User, ana_id), "Resuelto")
    db.session.commit()
    assert db.session.get(User, ana_id).state == state  # her state did not change: no agent.state event
    expect(sup.locator(f"#campaign-{campaign_id}-stats [data-fig=completed] b")).to_have_text("1")
    expect(completed).to_have_text("1")
    expect(active).to_have_text("1")
    expect(row.locator("td.channels")).not_to_contain_text("SMS")
    assert logged == []  # the closed conversation was no waiting row: its removal found nothing, quietly
