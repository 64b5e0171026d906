"""`make run`'s WhatsApp, with no outside account: a sandbox WhatsApp provider with a synced template catalog,
whose simulated customers send a photo and a voice note now and then, kept like any gateway's media."""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers import login, run_jobs, samples
from webapp.models import Attachment, Campaign, CannedResponse, Interaction, Provider, WhatsAppTemplate


def test_the_demo_seed_has_a_whatsapp_sandbox_with_its_catalog_once(db: Any) -> None:
    from webapp.cli import seed_demo

    seed_demo("demo-pass-1")
    seed_demo("demo-pass-1")  # a second run changes nothing
    provider = db.session.scalar(sa.select(Provider).where(Provider.name == "Sandbox WhatsApp"))
    assert (provider.type, provider.channel, provider.templates_sync_error) == ("sandbox", "whatsapp", None)
    names = set(db.session.scalars(sa.select(WhatsAppTemplate.name).where(WhatsAppTemplate.provider_id == provider.id)))
    assert {"recordatorio_pago", "promo_invierno", "codigo_verificacion"} <= names
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.name == "whatsapp"))
    assert campaign.provider_id == provider.id and len(campaign.memberships) == 3
    canned = db.session.scalar(sa.select(CannedResponse).where(CannedResponse.campaign_id == campaign.id,
                                                              CannedResponse.template_id.is_not(None)))
    assert canned.template.name == "recordatorio_pago" and canned.template_ref == "recordatorio_pago"
    assert db.session.scalar(sa.select(sa.func.count(Provider.id)).where(Provider.name == "Sandbox WhatsApp")) == 1


@pytest.mark.parametrize(("sample", "kind", "file"), [("photo", "image", "photo.jpg"), ("voice", "audio", "voice.wav")])
def test_sandbox_customers_send_a_photo_and_a_voice_note_kept_like_any_media(
        sample: str, kind: str, file: str, app: Any, db: Any, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp.cli import seed_demo
    from workers import whatsapp

    seed_demo("demo-pass-1")
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.name == "whatsapp"))
    agent = campaign.memberships[0].user
    interaction = Interaction(campaign_id=campaign.id, customer_number="+59899111222", channel="whatsapp",
                              status="assigned", agent_id=agent.id)
    db.session.add(interaction)
    db.session.commit()

    class Always:  # the simulator's dice, loaded: this pass sends `sample`
        def random(self) -> float:
            return 0.0

        def choice(self, options: Any) -> Any:
            return sample if sample in options else options[0]

    monkeypatch.setitem(app.config, "SANDBOX_CUSTOMERS", True)
    monkeypatch.setattr(whatsapp, "_rng", Always())
    whatsapp.sandbox_media()
    run_jobs(app)
    db.session.expire_all()
    attachment = db.session.scalar(sa.select(Attachment))
    assert (attachment.kind, attachment.state, attachment.message.interaction_id) == (kind, "ready", interaction.id)
    assert attachment.details.get("voice") is (True if sample == "voice" else None)
    login(client, agent.username, "demo-pass-1")
    served = client.get(f"/media/{attachment.id}")
    assert served.data == (samples.SANDBOX_MEDIA / file).read_bytes()
    page = client.get(f"/inbox/{interaction.id}").get_data(as_text=True)
    assert (f'src="/media/{attachment.id}/thumb"' if kind == "image" else f'<audio controls preload="none" '
            f'src="/media/{attachment.id}"') in page


def test_no_sandbox_media_when_simulated_customers_are_off(app: Any, db: Any) -> None:
    from webapp.cli import seed_demo
    from workers import whatsapp

    seed_demo("demo-pass-1")
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.name == "whatsapp"))
    db.session.add(Interaction(campaign_id=campaign.id, customer_number="+59899111222", channel="whatsapp",
                               status="waiting"))
    db.session.commit()
    assert not app.config["SANDBOX_CUSTOMERS"]
    for _ in range(20):
        whatsapp.sandbox_media()
    assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 0


def test_the_sample_files_are_small() -> None:
    sizes = {p.name: p.stat().st_size for p in samples.SANDBOX_MEDIA.iterdir()}
    assert set(sizes) == {"photo.jpg", "voice.wav"} and max(sizes.values()) < 16 * 1024
