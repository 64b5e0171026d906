"""A small centre with one WhatsApp (or SMS) campaign on a gateway fake and a conversation of agent ana's,
shared by the tests of issue 13's second part (composer attachments, templates, receipts, replies)."""
from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.fakes.whatsapp_cloud import (
    ACCESS_TOKEN,
    APP_SECRET,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WABA_ID,
)
from tests.helpers.web import login

CUSTOMER = "+59899123456"


def provider_for(make: Any, kind: str, fake: Any) -> Any:
    """kind: "meta" (WhatsApp Cloud), "twilio" (Twilio WhatsApp) or "sms" (Twilio SMS)."""
    if kind == "meta":
        return make.provider("whatsapp_cloud", channel="whatsapp", sender=DISPLAY_NUMBER, base_url=fake.url,
                             max_per_second=0, credentials={"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET,
                                                            "verify_token": VERIFY_TOKEN},
                             options={"phone_number_id": PHONE_NUMBER_ID, "waba_id": WABA_ID})
    return make.provider("twilio", channel="whatsapp" if kind == "twilio" else "sms", sender="+15005550006",
                         base_url=fake.url, max_per_second=0,
                         credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
                         options={"content_api_url": fake.url})


def center(make: Any, db: Any, kind: str, fake: Any, *, window_open: bool = True, language: str = "") -> SimpleNamespace:
    from datetime import timedelta

    from webapp.models import Interaction
    from webapp.services import time as clock

    ventas, cobros = make.group("ventas"), make.group("cobros")
    provider = provider_for(make, kind, fake)
    campaign = make.campaign(ventas, provider, name="Ventas", did="+" + DISPLAY_NUMBER, strategy="linear_nopause",
                             language=language)
    ana = make.user("ana", groups=[ventas], state="free")
    beto = make.user("beto", groups=[ventas], state="free")
    make.member(campaign, ana)
    make.member(campaign, beto)
    make.user("other", groups=[cobros], state="free")
    now = clock.now()
    last = now - (timedelta(hours=1) if window_open else timedelta(hours=30))
    interaction = Interaction(campaign_id=campaign.id, customer_number=CUSTOMER, channel=provider.channel,
                              status="active", agent_id=ana.id, assigned_at=last, created_at=last, queued_at=last,
                              last_message_at=last, last_customer_message_at=last)
    db.session.add(interaction)
    db.session.commit()
    return SimpleNamespace(provider=provider, campaign=campaign, ana=ana, beto=beto, fake=fake,
                           interaction=interaction, iid=interaction.id)


def agent_client(app: Any, username: str = "ana") -> Any:
    client = app.test_client()
    login(client, username)
    return client


def token(client: Any, iid: int) -> str:
    page = client.get(f"/inbox/{iid}").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page) or re.search(
        r'name="csrf-token" content="([^"]+)"', page)
    assert match, "no CSRF token on the conversation"
    return match.group(1)
