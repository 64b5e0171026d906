"""W1 (sent), W1, W3 in a real Chromium: the agent attaches a photo with a caption and sends it; in a conversation
whose 24-hour window has closed the composer offers only templates, the agent fills the variables, sees the
preview and sends; the WhatsApp Cloud fake receives the upload, the image message and the template with
its variables; its status webhooks move each bubble sent → delivered → read without a reload; when the
customer answers, the window opens again and the text box comes back."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fakes.whatsapp_cloud import message_payload, status_payload
from tests.helpers import browser_login, htmx_errors, run_jobs, samples, wait_until
from tests.helpers.whatsapp import CUSTOMER, center

pytestmark = [pytest.mark.browser, pytest.mark.slow]
BODY = "Hola {{1}}, tu cuota de {{2}} vence mañana."


def work_until(app: Any, condition: Any, what: str) -> None:
    """Run the queued jobs (sends, webhooks) until the page or the fake shows what they caused."""
    wait_until(lambda: run_jobs(app) is not None and condition(), 15, what)


def test_an_agent_sends_a_photo_and_a_template_and_sees_them_read(
        new_page: Any, live_server: str, app: Any, make: Any, db: Any, fake_whatsapp: Any) -> None:
    from playwright.sync_api import expect

    from webapp.models import Interaction, Message
    from webapp.services import templates
    from webapp.services import time as clock

    c = center(make, db, "meta", fake_whatsapp)
    fake_whatsapp.add_template("recordatorio", "es", body=BODY)
    templates.sync(c.provider)
    long_ago = clock.now() - timedelta(hours=30)
    closed = Interaction(campaign_id=c.campaign.id, customer_number="+59899111222", channel="whatsapp",
                         status="active", agent_id=c.ana.id, created_at=long_ago, queued_at=long_ago,
                         last_message_at=long_ago, last_customer_message_at=long_ago)
    db.session.add(closed)
    db.session.commit()
    webhook = f"{live_server}/webhooks/{c.provider.id}/inbound"

    def receipt(message: Any, status: str, to: str) -> None:
        assert fake_whatsapp.post_webhook(webhook, status_payload(message.provider_message_id, status, to)) == 200

    page = new_page()
    logged = htmx_errors(page)
    browser_login(page, "ana")
    page.goto(f"/inbox/{c.iid}")
    page.wait_for_selector("body[data-live=on]")
    page.evaluate("window.__noReload = true")
    expect(page.locator(f"#window-{c.iid}")).to_contain_text("Ventana abierta hasta las")

    # A photo with its caption.
    photo = samples.jpeg()
    page.fill(f"#composer-body-{c.iid}", "Así quedó la instalación")
    page.set_input_files(f"#composer-files-{c.iid}", files=[{"name": "instalacion.jpg", "mimeType": "image/jpeg",
                                                             "buffer": photo}])
    page.click(f"#composer-{c.iid} button.send")
    messages = page.locator(f"#messages-{c.iid}")
    work_until(app, lambda: len(fake_whatsapp.sent()) == 1, "the photo at Meta")
    (sent,) = fake_whatsapp.sent()
    upload_id = sent["payload"]["image"]["id"]
    assert sent["payload"]["image"]["caption"] == "Así quedó la instalación"
    assert fake_whatsapp.uploads[upload_id][0] == photo
    db.session.expire_all()
    message = db.session.scalars(sa.select(Message).where(Message.interaction_id == c.iid)).one()
    bubble = messages.locator(f"#message-{message.id}")
    expect(bubble).to_contain_text("Así quedó la instalación")
    expect(bubble.locator(".att-image img")).to_be_visible()
    tick = page.locator(f"#message-{message.id}-status")
    expect(tick).to_have_attribute("data-status", "sent")
    for status in ("delivered", "read"):
        receipt(message, status, CUSTOMER.lstrip("+"))
        work_until(app, lambda s=status: tick.get_attribute("data-status") == s, f"the bubble {status}")
    expect(page.locator(f"#composer-body-{c.iid}")).to_have_value("")

    # The other conversation: the window is closed, only templates.
    page.locator(f"#interaction-{closed.id}").click()
    expect(page.locator(f"#window-{closed.id}")).to_contain_text("solo plantillas")
    expect(page.locator(f"#composer-body-{closed.id}")).to_have_count(0)
    page.locator(f'#composer-{closed.id} a[data-template="recordatorio"]').click()
    form = page.locator(f"#template-form-{closed.id}")
    form.locator("input[name=var-1]").fill("Ana")
    form.locator("input[name=var-2]").fill("marzo")
    expect(page.locator(f"#template-preview-{closed.id}")).to_contain_text("Hola Ana, tu cuota de marzo vence mañana.")
    form.locator("button.send").click()
    work_until(app, lambda: len(fake_whatsapp.sent()) == 2, "the template at Meta")
    template = fake_whatsapp.sent()[1]["payload"]["template"]
    assert template["name"] == "recordatorio" and template["language"] == {"code": "es"}
    assert template["components"] == [{"type": "body", "parameters": [{"type": "text", "text": "Ana"},
                                                                      {"type": "text", "text": "marzo"}]}]
    db.session.expire_all()
    sent_template = db.session.scalars(sa.select(Message).where(Message.interaction_id == closed.id)).one()
    expect(page.locator(f"#message-{sent_template.id}")).to_contain_text("Hola Ana, tu cuota de marzo vence mañana.")
    expect(page.locator(f"#template-form-{closed.id}")).to_have_count(0)
    tick = page.locator(f"#message-{sent_template.id}-status")
    for status in ("delivered", "read"):
        receipt(sent_template, status, "59899111222")
        work_until(app, lambda s=status: tick.get_attribute("data-status") == s, f"the bubble {status}")

    # The customer answers: the window opens again, the header says until when, the text box is back.
    assert fake_whatsapp.post_webhook(webhook, message_payload("59899111222", {
        "type": "text", "text": {"body": "Gracias, ya pagué"}})) == 200
    work_until(app, lambda: page.locator(f"#composer-body-{closed.id}").count() == 1, "the composer's text box")
    expect(page.locator(f"#window-{closed.id}")).to_contain_text("Ventana abierta hasta las")
    expect(page.locator(f"#messages-{closed.id}")).to_contain_text("Gracias, ya pagué")
    assert page.evaluate("window.__noReload") is True
    assert logged == []
