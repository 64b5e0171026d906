"""W1 in a real Chromium: each kind of media a WhatsApp customer sends arrives through a signed webhook, is
fetched from the Meta fake (with its bearer token), and shows in the agent's open conversation without a
reload: "downloading…" first, then the picture, the voice note's player, the video, the document's link,
the location's map link, the contact card. What the browser gets back is byte for byte the original; an
SVG is downloaded, never rendered; another group's supervisor gets 404."""
from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fakes.whatsapp_cloud import (
    ACCESS_TOKEN,
    APP_SECRET,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    media_message,
    message_payload,
)
from tests.helpers import browser_login, htmx_errors, run_jobs_until, samples

pytestmark = [pytest.mark.slow, pytest.mark.browser]
SHOTS = os.environ.get("CONVERSA_SCREENSHOTS")
CUSTOMER = "59899123456"

SHA256_OF_URL = """async url => {
  const r = await fetch(url);
  const digest = await crypto.subtle.digest("SHA-256", await r.arrayBuffer());
  return [r.status, r.headers.get("content-type"), [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, "0")).join("")];
}"""


def test_every_media_kind_shows_in_the_agents_conversation(
        new_page: Any, live_server: str, app: Any, make: Any, db: Any, fake_whatsapp: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import expect

    from webapp.models import Attachment, Interaction
    from webapp.services import time as clock
    from workers.whatsapp import fetch_media

    ventas, cobros = make.group("ventas"), make.group("cobros")
    provider = make.provider("whatsapp_cloud", channel="whatsapp", sender=DISPLAY_NUMBER, base_url=fake_whatsapp.url,
                             max_per_second=0, credentials={"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET,
                                                            "verify_token": VERIFY_TOKEN},
                             options={"phone_number_id": PHONE_NUMBER_ID})
    campaign = make.campaign(ventas, provider, name="Ventas", did="+" + DISPLAY_NUMBER, strategy="linear_nopause")
    make.member(campaign, make.user("ana", name="Ana Pérez", groups=[ventas]))
    make.user("other", role="supervisor", groups=[cobros])
    webhook = f"{live_server}/webhooks/{provider.id}/inbound"

    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    logged = htmx_errors(page)
    browser_login(page, "ana")
    page.goto("/inbox")
    page.wait_for_selector("body[data-live=on]")

    def customer_sends(message: dict[str, Any]) -> None:
        assert fake_whatsapp.post_webhook(webhook, message_payload(CUSTOMER, message, name="Lucía")) == 200

    customer_sends({"type": "text", "text": {"body": "Hola, les mando unas cosas"}})
    item = page.locator("#inbox-list .item", has_text="Lucía")
    run_jobs_until(app, lambda: item.count() == 1, "the conversation in the agent's list")
    interaction = db.session.scalar(sa.select(Interaction))
    item.click()
    messages = page.locator(f"#messages-{interaction.id}")
    expect(messages).to_contain_text("les mando unas cosas")
    page.evaluate("window.__noReload = true")

    # A photo whose download fails at first: "downloading…" until the retry keeps it, then the thumbnail.
    photo = samples.jpeg(800, 600)
    fake_whatsapp.set_mode("500", path="/whatsapp_business")
    customer_sends(media_message("image", fake_whatsapp.add_media(photo, "image/jpeg"), "image/jpeg",
                                 caption="Así llegó la caja"))
    waiting = messages.locator(".att-image.att-pending")
    run_jobs_until(app, lambda: waiting.count() == 1, "the attachment waiting for its download")
    expect(waiting).to_contain_text("Imagen · descargando…")
    fake_whatsapp.set_mode(None)
    later = clock.now() + timedelta(minutes=2)
    monkeypatch.setattr(clock, "now", lambda: later)
    image_id = db.session.scalar(sa.select(Attachment.id).where(Attachment.kind == "image"))
    assert fetch_media(image_id) == "ready"
    picture = messages.locator(f"#attachment-{image_id} img")
    expect(picture).to_be_visible()  # pushed by the socket, no reload
    picture.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth === 320", arg=picture.element_handle())
    assert picture.get_attribute("width") == "320" and picture.get_attribute("height") == "240"
    full = page.evaluate(SHA256_OF_URL, f"/media/{image_id}")
    assert full == [200, "image/jpeg", hashlib.sha256(photo).hexdigest()]

    # The other kinds, each fetched and shown.
    note, film, invoice, sticker = samples.voice_note(), samples.video(), samples.pdf(), samples.webp_sticker()
    customer_sends(media_message("audio", fake_whatsapp.add_media(note, "audio/wav"), "audio/wav", voice=True))
    customer_sends(media_message("video", fake_whatsapp.add_media(film, "video/mp4"), "video/mp4"))
    customer_sends(media_message("document", fake_whatsapp.add_media(invoice, "application/pdf"), "application/pdf",
                                 filename="Factura marzo.pdf", caption="la factura"))
    customer_sends(media_message("sticker", fake_whatsapp.add_media(sticker, "image/webp"), "image/webp"))
    customer_sends({"type": "location", "location": {"latitude": -34.9059, "longitude": -56.1913,
                                                     "name": "Oficina Centro", "address": "18 de Julio 1234"}})
    customer_sends({"type": "contacts", "contacts": [{"name": {"formatted_name": "Pedro Ruiz"},
                                                      "phones": [{"phone": "+598 99 555 444"}]}]})
    ready = messages.locator(".att-ready")
    run_jobs_until(app, lambda: ready.count() == 7, "seven attachments ready")
    ids = dict(db.session.execute(sa.select(Attachment.kind, Attachment.id)).all())

    audio = messages.locator(f"#attachment-{ids['audio']} audio")
    expect(audio).to_have_attribute("src", f"/media/{ids['audio']}")
    duration = audio.evaluate("""a => new Promise(done => { a.addEventListener("loadedmetadata", () => done(a.duration));
                                                            a.preload = "metadata"; a.load(); })""")
    assert 1.1 < duration < 1.3  # the voice note plays: Chromium read it as audio
    expect(messages.locator(f"#attachment-{ids['audio']}")).to_contain_text("Nota de voz")
    expect(messages.locator(f"#attachment-{ids['video']} video")).to_have_attribute("src", f"/media/{ids['video']}")
    document = messages.locator(f"#attachment-{ids['document']} a.att-doc")
    expect(document).to_contain_text("Factura marzo.pdf")
    expect(document).to_contain_text(f"{len(invoice)} B")
    expect(messages.locator(f"#attachment-{ids['sticker']} img")).to_be_visible()
    place = messages.locator(f"#attachment-{ids['location']} a.att-location")
    expect(place).to_have_text("📍 Oficina Centro")
    assert place.get_attribute("href").startswith("https://www.openstreetmap.org/?mlat=-34.9059&mlon=-56.1913")
    expect(messages.locator(f"#attachment-{ids['location']}")).to_contain_text("18 de Julio 1234 · -34.9059, -56.1913")
    expect(messages.locator(f"#attachment-{ids['contacts']}")).to_contain_text("Pedro Ruiz +598 99 555 444")
    for kind, original, mime in (("audio", note, "audio/wav"), ("video", film, "video/mp4"),
                                 ("document", invoice, "application/pdf"), ("sticker", sticker, "image/webp")):
        assert page.evaluate(SHA256_OF_URL, f"/media/{ids[kind]}") == [200, mime, hashlib.sha256(original).hexdigest()]
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "media-inbox.png"), full_page=True)

    # An SVG is a download: the browser never renders it (its script would set the title).
    customer_sends(media_message("document", fake_whatsapp.add_media(samples.SVG, "image/svg+xml"), "image/svg+xml",
                                 filename="dibujo.svg"))
    run_jobs_until(app, lambda: ready.count() == 8, "eight attachments ready")
    svg_id = db.session.scalar(sa.select(sa.func.max(Attachment.id)))
    with page.expect_download() as download:
        messages.locator(f"#attachment-{svg_id} a.att-doc").click()
    assert download.value.suggested_filename == "dibujo.svg"
    assert page.title() != "pwned"
    viewer = page.context.new_page()  # the same signed-in agent, the file's URL typed in a tab
    with viewer.expect_download():
        viewer.evaluate(f"location.href = '{live_server}/media/{svg_id}'")
    assert viewer.title() != "pwned"
    assert page.evaluate("window.__noReload") is True
    assert logged == []

    # Another group's supervisor: the same 404 as for the conversation.
    other = new_page()
    browser_login(other, "other")
    assert other.evaluate("async url => (await fetch(url)).status", f"/media/{image_id}") == 404
    assert other.evaluate("async url => (await fetch(url)).status", f"/media/{image_id}/thumb") == 404
