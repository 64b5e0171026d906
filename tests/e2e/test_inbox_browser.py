"""The agent workspace in a real Chromium: a signed Twilio webhook reaches the open inbox without reload,
and the canned response the agent clicks is exactly what the Twilio fake receives."""
from __future__ import annotations

import os
from typing import Any

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from tests.helpers import browser_login, htmx_errors, run_jobs_until, settled

pytestmark = [pytest.mark.slow, pytest.mark.browser]
SHOTS = os.environ.get("CONVERSA_SCREENSHOTS")  # a directory: save screenshots there to look at them
CUSTOMER = "+59899123456"
DID = "+15005550006"
CANNED = "¡Hola! Soy Ana de Ventas. ¿En qué te puedo ayudar?"


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))


def post_signed_webhook(url: str, body: str, sid: str) -> int:
    """What Twilio sends when a customer writes: form fields signed with the account's auth token."""
    import requests

    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN

    params = {"MessageSid": sid, "SmsMessageSid": sid, "AccountSid": ACCOUNT_SID, "From": CUSTOMER, "To": DID,
              "Body": body, "NumMedia": "0", "NumSegments": "1", "ApiVersion": "2010-04-01"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    return requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10).status_code


def test_webhook_reaches_the_open_inbox_and_the_canned_reply_reaches_twilio(
        new_page: Any, live_server: str, app: Any, make: Any, db: Any, fake_twilio: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import expect

    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN
    from webapp.models import BreakType, CannedResponse, Interaction

    # Twilio signs the public URL: the webhook route rebuilds it from PUBLIC_BASE_URL.
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", live_server)
    group = make.group("ventas")
    provider = make.provider("twilio", sender=DID, base_url=fake_twilio.url, max_per_second=0,
                             credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN})
    campaign = make.campaign(group, provider, name="Ventas", did=DID, strategy="linear_nopause")
    ana = make.user("ana", name="Ana Pérez", groups=[group])
    make.member(campaign, ana)
    db.session.add_all([CannedResponse(campaign_id=campaign.id, title="Saludo", body=CANNED, position=0),
                        CannedResponse(campaign_id=campaign.id, title="Horario",
                                       body="Atendemos de lunes a viernes de 9 a 18.", position=1),
                        BreakType(name="Almuerzo", icon="🍽"), BreakType(name="Capacitación", icon="📚")])
    db.session.commit()
    webhook = f"{live_server}/webhooks/{provider.id}/inbound"

    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    logged = htmx_errors(page)
    browser_login(page, "ana")
    page.goto("/inbox")
    page.wait_for_selector("body[data-live=on]")  # the socket is up

    # A customer writes: the conversation appears in the list without reload.
    assert post_signed_webhook(webhook, "Hola, necesito ayuda con mi factura <b>urgente</b>", "SM" + "1" * 32) == 200
    run_jobs_until(app, lambda: page.locator("#inbox-list .item", has_text="necesito ayuda").count(),
                   "the customer's message in the inbox list")
    item = page.locator("#inbox-list .item", has_text="necesito ayuda")
    expect(item).to_have_count(1)
    interaction = db.session.scalar(sa.select(Interaction))
    assert interaction.agent_id == ana.id
    page.evaluate("window.__noReload = true")

    item.click()
    messages = page.locator(f"#messages-{interaction.id}")
    expect(messages).to_contain_text("necesito ayuda con mi factura <b>urgente</b>")  # as text, not markup
    expect(page.locator(".conv-head h1")).to_contain_text("Ventas")
    expect(page.locator(".conv-head h1")).to_contain_text(CUSTOMER)

    # The customer writes again while the conversation is open: it lands in it, live.
    assert post_signed_webhook(webhook, "¿Siguen ahí?", "SM" + "2" * 32) == 200
    run_jobs_until(app, lambda: page.locator(f"#messages-{interaction.id} .msg.customer", has_text="¿Siguen ahí?").count(),
                   "the second message in the open conversation")
    expect(messages.locator(".msg.customer")).to_have_count(2)
    _shot(page, "inbox-1280")

    # Insert the canned response at the cursor and send it.
    textarea = page.locator(f"#composer-body-{interaction.id}")
    page.locator("details[data-pop=canned] summary").click()
    page.locator("button.canned", has_text="Saludo").click()
    expect(textarea).to_have_value(CANNED)
    expect(page.locator(f"#seg-{interaction.id}")).to_contain_text("1 SMS · GSM-7")  # ¡ ¿ é are GSM-7
    page.locator(f"#composer-{interaction.id} button.send").click()
    expect(messages.locator(".msg.agent")).to_have_count(1)
    expect(textarea).to_have_value("")
    expect(page.locator(f"#conv-status-{interaction.id}")).to_have_class("status-label active")  # was "New"
    run_jobs_until(app, lambda: fake_twilio.sends_for(CUSTOMER), "the reply to reach Twilio")
    assert [m["body"] for m in fake_twilio.sends_for(CUSTOMER)] == [CANNED]
    expect(messages.locator(".msg.agent .tick.sent")).to_have_count(1)  # the status came back live
    assert page.evaluate("window.__noReload") is True  # the whole exchange happened without a reload
    assert logged == []  # e.g. no "oobErrorNoTarget" for the new item's removal of an older copy

    page.set_viewport_size({"width": 1024, "height": 700})
    page.locator("details[data-pop=emoji] summary").click()
    _shot(page, "inbox-1024-emoji")
    page.keyboard.press("Escape")
    expect(page.locator("details[data-pop=emoji]")).not_to_have_attribute("open", "")


def sales_team(make: Any, *agents: tuple[str, str, str], **campaign: Any) -> tuple[Any, list[Any]]:
    """Campaign "Ventas" (group "ventas", a sandbox at DID) and its agents, each (username, name, state)."""
    group = make.group("ventas")
    sales = make.campaign(group, make.provider("sandbox", sender=DID), name="Ventas", did=DID, **campaign)
    members = [make.user(username, name=name, groups=[group], state=state) for username, name, state in agents]
    for user in members:
        make.member(sales, user)
    return sales, members


def customer_writes(db: Any, campaign: Any, body: str, *, status: str, agent: Any = None, unread: int = 0) -> Any:
    """An interaction of CUSTOMER with their first message, added to the session (the caller commits)."""
    from webapp.models import Interaction, Message, utcnow

    now = utcnow()
    interaction = Interaction(campaign_id=campaign.id, customer_number=CUSTOMER, status=status,
                              agent_id=agent.id if agent else None, created_at=now, queued_at=now,
                              assigned_at=now if agent else None, last_message_at=now, unread=unread)
    db.session.add(interaction)
    db.session.flush()
    db.session.add(Message(interaction_id=interaction.id, sender_kind="customer", body=body))
    return interaction


def test_what_happened_before_the_socket_was_live_still_shows(new_page: Any, app: Any, make: Any, db: Any) -> None:
    """An assignment published after the page was rendered but before its socket was subscribed reaches
    no socket (routing often assigns right at sign-in). Polling is off once the socket is open, so the
    page reloads its live regions when the server says the socket is live."""
    from playwright.sync_api import expect

    from webapp.live.events import publish

    campaign, [ana] = sales_team(make, ("ana", "Ana Pérez", "free"))
    held: list[Any] = []
    page = new_page()
    page.route_web_socket("**/ws*", lambda ws: held.append(ws))  # the socket opens, reaching no server yet
    browser_login(page, "ana")
    page.wait_for_selector("body[data-live=on]")
    assert len(held) == 1
    expect(page.locator("#inbox-list .item")).to_have_count(0)

    talk = customer_writes(db, campaign, "Hola, ¿hay stock?", status="assigned", agent=ana, unread=1)
    publish(f"user:{ana.id}", "interaction.assigned", interaction_id=talk.id)
    db.session.commit()  # the event goes out now, to nobody
    page.wait_for_timeout(300)
    expect(page.locator("#inbox-list .item")).to_have_count(0)

    held[0].connect_to_server()  # the real socket: the server says "on", the page catches up
    expect(page.locator("#inbox-list .item", has_text="¿hay stock?")).to_have_count(1)
    assert page.evaluate("document.body.dataset.live") == "on"


def test_a_conversation_taken_away_says_so_where_it_is_open(new_page: Any, make: Any, db: Any) -> None:
    """Transferred away while the agent has it open: the list item goes, the open conversation says why,
    and nothing is logged as an htmx error."""
    from playwright.sync_api import expect

    from webapp.models import Interaction, User
    from webapp.services import interactions

    campaign, [ana, beto] = sales_team(make, ("ana", "Ana Pérez", "busy"), ("beto", "Beto Gómez", "free"))
    talk = customer_writes(db, campaign, "¿Me pasan con ventas?", status="active", agent=ana)
    db.session.commit()
    page = new_page()
    logged = htmx_errors(page)
    browser_login(page, "ana")
    page.goto(f"/inbox/{talk.id}")
    page.wait_for_selector("body[data-live=on]")
    expect(page.locator(f"#interaction-{talk.id}")).to_have_count(1)

    interactions.transfer_to_agent(db.session.get(Interaction, talk.id), db.session.get(User, ana.id),
                                   db.session.get(User, beto.id))
    db.session.commit()
    expect(page.locator(f"#interaction-{talk.id}")).to_have_count(0)
    expect(page.locator(f"#conv-notice-{talk.id} .conv-notice")).to_have_text(
        "Esta conversación ya no está asignada a usted.")
    assert logged == []


def test_taking_a_ringall_offer(new_page: Any, make: Any, db: Any) -> None:
    """Ringall: the offer waits in 'Waiting to be taken'; Take makes it the agent's conversation, and the
    offer, its count and (empty now) its section go, without a reload and without htmx errors."""
    from playwright.sync_api import expect

    from webapp.models import Interaction

    campaign, [ana] = sales_team(make, ("ana", "Ana Pérez", "free"), strategy="ringall")
    offer = customer_writes(db, campaign, "¿Alguien me atiende?", status="waiting", unread=1)
    db.session.commit()
    page = new_page()
    logged = htmx_errors(page)
    # Once the socket is live the page may reload its live regions (unless nothing happened since it was
    # rendered): a Take clicked while the offers list is being swapped for its fresh copy may hit a form
    # htmx has not wired yet. Click after that.
    browser_login(page, "ana")
    page.wait_for_function("document.body.dataset.live === 'on'")
    page.wait_for_load_state("networkidle")
    settled(page)
    expect(page.locator("#offers")).to_be_visible()
    expect(page.locator("#offers-count")).to_have_text("1")
    page.locator(f"#offer-{offer.id} button", has_text="Tomar").click()
    expect(page.locator(f"#messages-{offer.id}")).to_contain_text("¿Alguien me atiende?")
    expect(page.locator(f"#composer-{offer.id}")).to_be_visible()
    expect(page.locator(f"#offer-{offer.id}")).to_have_count(0)
    expect(page.locator("#offers-count")).to_have_text("0")
    expect(page.locator("#offers")).to_be_hidden()
    expect(page.locator(f"#inbox-list #interaction-{offer.id}")).to_have_count(1)
    db.session.expire_all()
    assert db.session.get(Interaction, offer.id).agent_id == ana.id
    assert logged == []
