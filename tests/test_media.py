"""W1, inbound media kept: every kind arrives through a signed webhook, is fetched from the gateway's fake
(with its auth) into the media store, and is served back byte for byte only to users who may see the
conversation, with safe headers. The disk store and the S3-compatible one (moto's server on loopback) pass
the same tests."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from tests.fakes.whatsapp_cloud import (
    ACCESS_TOKEN,
    APP_SECRET,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WABA_ID,
    media_message,
    message_payload,
    sign,
)
from tests.helpers import login, run_jobs, samples
from webapp.models import Attachment, AttachmentState, Interaction, Message
from webapp.services import media, media_store
from webapp.services.media_store import CHUNK, DiskStore, NotStored, S3Store, open_store

CUSTOMER = "59899123456"
DID = "+" + DISPLAY_NUMBER


# -- the stores ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_endpoint() -> Any:
    with samples.s3_server() as url:
        yield url


def _new_store(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    if kind == "disk":
        return open_store(f"file://{tmp_path / 'media'}", tmp_path)
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"conversa-{uuid.uuid4().hex[:12]}"
    samples.new_bucket(endpoint, bucket)
    return open_store(f"s3://{bucket}/center-1/media?endpoint_url={endpoint}&region=us-east-1", tmp_path)


@pytest.fixture(params=["disk", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    return _new_store(request.param, request, tmp_path)


@pytest.fixture(params=["disk", "s3"])
def app_store(request: pytest.FixtureRequest, tmp_path: Any, app: Any) -> Any:
    """The app's media store for this test: a fresh folder, or a fresh bucket of the S3 server."""
    before = app.extensions.get("conversa_media_store")
    app.extensions["conversa_media_store"] = chosen = _new_store(request.param, request, tmp_path)
    yield chosen
    app.extensions["conversa_media_store"] = before


def test_the_store_keeps_a_file_byte_for_byte_and_reads_ranges(store: Any) -> None:
    data = samples.jpeg()
    assert store.put("2025/03/01/1-abc", io.BytesIO(data), "image/jpeg") == len(data)
    assert store.size("2025/03/01/1-abc") == len(data)
    assert store.read("2025/03/01/1-abc").read_all() == data
    part = store.read("2025/03/01/1-abc", 100, 199)
    assert (part.size, part.read_all()) == (100, data[100:200])
    assert store.read("2025/03/01/1-abc", len(data) - 10).read_all() == data[-10:]


def test_the_store_streams_a_large_file_in_chunks(store: Any, tmp_path: Any) -> None:
    """Written from a file and read back in chunks of at most 64 KiB: never whole in memory."""
    path = tmp_path / "big.bin"
    data = bytes(range(256)) * (3 * 4096)  # 3 MiB
    path.write_bytes(data)
    with path.open("rb") as source:
        store.put("big/1", source, "application/octet-stream")
    blob = store.read("big/1")
    chunks = list(blob.chunks)
    assert blob.size == len(data) and len(chunks) >= len(data) // CHUNK
    assert max(len(c) for c in chunks) <= CHUNK
    assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(data).digest()


def test_a_missing_file_and_a_deleted_one_are_not_stored(store: Any) -> None:
    with pytest.raises(NotStored):
        store.read("nothing/here")
    store.put("gone/1", io.BytesIO(b"x"), "text/plain")
    store.delete("gone/1")
    with pytest.raises(NotStored):
        store.size("gone/1")


@pytest.mark.parametrize("key", ["../etc/passwd", "a/../../b", "/abs", "a//b", "", "a\x00b", "spaces are bad"])
def test_the_store_refuses_keys_that_would_leave_it(store: Any, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, io.BytesIO(b"x"), "text/plain")


def test_media_store_url_settings(tmp_path: Any) -> None:
    assert isinstance(open_store("", tmp_path), DiskStore) and open_store("", tmp_path).root == tmp_path
    assert open_store(str(tmp_path / "m"), tmp_path).root == tmp_path / "m"
    assert open_store(f"file://{tmp_path}/m", tmp_path).root == tmp_path / "m"
    s3 = open_store("s3://bucket/pre/fix?endpoint_url=http://127.0.0.1:9000&region=sa-east-1", tmp_path)
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("bucket", "pre/fix")
    with pytest.raises(ValueError, match="unknown setting secret"):
        open_store("s3://bucket/p?secret=x", tmp_path)
    with pytest.raises(ValueError, match="no bucket"):
        open_store("s3:///p", tmp_path)
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        open_store("ftp://host/x", tmp_path)


# -- a center on WhatsApp Cloud (the fake) -----------------------------------------------------------------
@pytest.fixture
def center(make: Any, db: Any, fake_whatsapp: Any) -> SimpleNamespace:
    ventas, cobros = make.group("ventas"), make.group("cobros")
    provider = make.provider("whatsapp_cloud", channel="whatsapp", sender=DISPLAY_NUMBER, base_url=fake_whatsapp.url,
                             max_per_second=0, credentials={"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET,
                                                            "verify_token": VERIFY_TOKEN},
                             options={"phone_number_id": PHONE_NUMBER_ID, "waba_id": WABA_ID})
    campaign = make.campaign(ventas, provider, name="Ventas", did=DID, strategy="linear_nopause")
    ana = make.user("ana", groups=[ventas], state="free")
    beto = make.user("beto", groups=[ventas], state="free")
    make.member(campaign, ana)
    make.user("sup", role="supervisor", groups=[ventas])
    make.user("other", role="supervisor", groups=[cobros])
    make.user("boss", role="admin")
    return SimpleNamespace(provider=provider, campaign=campaign, ana=ana, beto=beto, fake=fake_whatsapp)


def meta_webhook(client: Any, provider: Any, payload: dict[str, Any]) -> int:
    body = json.dumps(payload).encode()
    return client.post(f"/webhooks/{provider.id}/inbound", data=body, content_type="application/json",
                       headers={"X-Hub-Signature-256": sign(body)}).status_code


def arrive(client: Any, app: Any, db: Any, center: SimpleNamespace, message: dict[str, Any]) -> Attachment:
    """The customer sends `message` (type and its part) through the signed webhook; every job runs."""
    assert meta_webhook(client, center.provider, message_payload(CUSTOMER, message)) == 200
    run_jobs(app)
    db.session.expire_all()
    return db.session.scalars(sa.select(Attachment).order_by(Attachment.id.desc())).first()


def get_as(app: Any, username: str, path: str, **kw: Any) -> Any:
    client = app.test_client()
    login(client, username)
    return client.get(path, **kw)


KINDS = {
    "image": (samples.jpeg, "image/jpeg", {"caption": "Así llegó"}),
    "audio": (samples.voice_note, "audio/ogg", {"voice": True}),
    "video": (samples.video, "video/mp4", {"caption": "mirá"}),
    "document": (samples.pdf, "application/pdf", {"filename": "Factura marzo.pdf", "caption": "la factura"}),
    "sticker": (samples.webp_sticker, "image/webp", {"animated": False}),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_media_kind_is_fetched_with_the_token_and_served_back_byte_for_byte(
        kind: str, client: Any, app: Any, db: Any, center: SimpleNamespace, app_store: Any) -> None:
    make_bytes, mime, extra = KINDS[kind]
    data = make_bytes()
    media_id = center.fake.add_media(data, mime + ("; codecs=opus" if kind == "audio" else ""))
    attachment = arrive(client, app, db, center, media_message(kind, media_id, mime, **extra))

    assert (attachment.kind, attachment.state, attachment.error) == (kind, AttachmentState.READY, None)
    assert attachment.size == len(data) and attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert attachment.content_type == mime
    if kind == "document":
        assert attachment.filename == "Factura marzo.pdf"
        assert attachment.message.body == "la factura"
    if kind == "audio":
        assert attachment.details == {"voice": True}
    # Both calls to Meta carried the bearer token (the fake refuses any other).
    calls = [r for r in center.fake.api_requests() if r.method == "GET"]
    assert [r.path.split("/")[-1] for r in calls] == [media_id, ""]
    assert all(r.header("Authorization") == f"Bearer {ACCESS_TOKEN}" and r.status == 200 for r in calls)

    served = get_as(app, "ana", f"/media/{attachment.id}")
    assert served.status_code == 200 and served.data == data
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Length"] == str(len(data))
    disposition = served.headers["Content-Disposition"]
    if kind == "document":
        assert served.mimetype == "application/pdf" and disposition.startswith("attachment;")
        assert "filename*=UTF-8''Factura%20marzo.pdf" in disposition
    else:
        assert served.mimetype == mime and disposition.startswith("inline;")
    if kind in ("image", "sticker"):
        assert (attachment.width, attachment.height) == ((640, 480) if kind == "image" else (512, 512))
        assert max(attachment.thumb_width, attachment.thumb_height) == 320
        thumb = get_as(app, "ana", f"/media/{attachment.id}/thumb")
        assert thumb.status_code == 200 and thumb.mimetype == ("image/jpeg" if kind == "image" else "image/webp")
        from PIL import Image

        with Image.open(io.BytesIO(thumb.data)) as small:
            assert small.size == (attachment.thumb_width, attachment.thumb_height)
    else:
        assert attachment.thumb_key is None


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_audio_and_video_answer_range_requests(kind: str, client: Any, app: Any, db: Any, center: SimpleNamespace,
                                                app_store: Any) -> None:
    make_bytes, mime, extra = KINDS[kind]
    data = make_bytes()
    attachment = arrive(client, app, db, center, media_message(kind, center.fake.add_media(data, mime), mime))
    part = get_as(app, "ana", f"/media/{attachment.id}", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.data == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert part.headers["Accept-Ranges"] == "bytes"
    tail = get_as(app, "ana", f"/media/{attachment.id}", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.data == data[-100:]
    outside = get_as(app, "ana", f"/media/{attachment.id}", headers={"Range": f"bytes={len(data) + 5}-"})
    assert outside.status_code == 416 and outside.headers["Content-Range"] == f"bytes */{len(data)}"


def test_location_and_contact_cards_are_kept_without_a_download(client: Any, app: Any, db: Any,
                                                                 center: SimpleNamespace) -> None:
    location = arrive(client, app, db, center, {"type": "location", "location": {
        "latitude": -34.9059, "longitude": -56.1913, "name": "Oficina Centro", "address": "18 de Julio 1234"}})
    assert location.state == AttachmentState.READY
    assert location.details == {"latitude": -34.9059, "longitude": -56.1913, "name": "Oficina Centro",
                                "address": "18 de Julio 1234"}
    cards = arrive(client, app, db, center, {"type": "contacts", "contacts": [
        {"name": {"formatted_name": "Lucía Gómez", "first_name": "Lucía"},
         "phones": [{"phone": "+598 99 111 222", "type": "CELL"}, {"phone": "+598 2 900 1234", "type": "WORK"}]},
        {"name": {"first_name": "Pedro", "last_name": "Ruiz"}, "phones": []}]})
    assert cards.details == {"contacts": [{"name": "Lucía Gómez", "phones": ["+598 99 111 222", "+598 2 900 1234"]},
                                          {"name": "Pedro Ruiz", "phones": []}]}
    assert center.fake.api_requests() == []  # nothing to download
    assert get_as(app, "ana", f"/media/{location.id}").status_code == 404  # no file to serve


def test_twilio_media_is_fetched_with_basic_auth_and_the_cdn_gets_no_credentials(
        client: Any, app: Any, db: Any, make: Any, fake_twilio: Any, app_store: Any) -> None:
    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN

    group = make.group()
    provider = make.provider("twilio", channel="whatsapp", sender="+15005550006", base_url=fake_twilio.url,
                             credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN})
    make.campaign(group, provider, did="+15005550006")
    make.user("sup", role="supervisor", groups=[group])
    photo, note = samples.jpeg(320, 200), samples.voice_note()
    urls = [fake_twilio.add_media(photo, "image/jpeg"), fake_twilio.add_media(note, "audio/ogg")]
    params = {"MessageSid": "SM" + "c" * 32, "AccountSid": ACCOUNT_SID, "From": "whatsapp:+59899123456",
              "To": "whatsapp:+15005550006", "Body": "", "NumMedia": "2", "MediaUrl0": urls[0],
              "MediaContentType0": "image/jpeg", "MediaUrl1": urls[1], "MediaContentType1": "audio/ogg"}
    url = f"http://localhost/webhooks/{provider.id}/inbound"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    assert client.post(f"/webhooks/{provider.id}/inbound", data=urlencode(params),
                       content_type="application/x-www-form-urlencoded",
                       headers={"X-Twilio-Signature": signature}).status_code == 200
    run_jobs(app)
    message = db.session.scalar(sa.select(Message))
    assert [(a.kind, a.state) for a in message.attachments] == [("image", "ready"), ("audio", "ready")]
    asked = fake_twilio.media_requests()
    assert [r.path.startswith("/cdn/") for r in asked] == [False, True, False, True]
    assert all(r.header("Authorization", ) for r in asked if "/Media/" in r.path)
    assert not any(r.header("Authorization") for r in asked if r.path.startswith("/cdn/"))
    assert all(r.status == 200 for r in asked if r.path.startswith("/cdn/"))
    for attachment, original in zip(message.attachments, (photo, note), strict=True):
        assert get_as(app, "sup", f"/media/{attachment.id}").data == original


def test_a_twilio_media_url_with_wrong_credentials_keeps_trying_and_says_why(
        client: Any, app: Any, db: Any, make: Any, fake_twilio: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes.twilio import ACCOUNT_SID
    from webapp.models import Provider
    from webapp.providers.base import InboundMessage
    from webapp.services import interactions

    group = make.group()
    provider = make.provider("twilio", channel="whatsapp", sender="+15005550006", base_url=fake_twilio.url,
                             credentials={"account_sid": ACCOUNT_SID, "auth_token": "not-the-token"})
    make.campaign(group, provider, did="+15005550006")
    url = fake_twilio.add_media(b"jpeg", "image/jpeg")
    interactions.receive_inbound(db.session.get(Provider, provider.id), InboundMessage(
        "SM1", "+59899123456", "+15005550006", "", "whatsapp", media=[{"kind": "image", "url": url,
                                                                        "content_type": "image/jpeg"}]))
    db.session.commit()
    run_jobs(app)
    attachment = db.session.scalar(sa.select(Attachment))
    assert (attachment.state, attachment.attempts) == ("pending", 1)
    assert "HTTP 401" in attachment.error
    assert fake_twilio.answered(401, "/Media/")


# -- who may see it ------------------------------------------------------------------------------------------
def test_only_users_who_see_the_conversation_get_the_file(client: Any, app: Any, db: Any,
                                                          center: SimpleNamespace) -> None:
    data = samples.jpeg()
    attachment = arrive(client, app, db, center, media_message("image", center.fake.add_media(data, "image/jpeg"),
                                                               "image/jpeg"))
    assert attachment.message.interaction.agent_id == center.ana.id  # routing gave it to ana
    for user in ("ana", "sup", "boss"):
        assert get_as(app, user, f"/media/{attachment.id}").data == data
        assert get_as(app, user, f"/media/{attachment.id}/thumb").status_code == 200
    for user in ("other", "beto"):  # another group's supervisor; an agent it is not assigned to
        assert get_as(app, user, f"/media/{attachment.id}").status_code == 404
        assert get_as(app, user, f"/media/{attachment.id}/thumb").status_code == 404
    assert get_as(app, "other", f"/media/{attachment.id + 1000}").status_code == 404
    anonymous = app.test_client().get(f"/media/{attachment.id}")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


@pytest.mark.parametrize(("mime", "data"), [("image/svg+xml", samples.SVG),
                                            ("text/html", b"<script>alert(document.cookie)</script>"),
                                            ("application/xhtml+xml", b"<html xmlns='http://www.w3.org/1999/xhtml'/>")])
def test_markup_is_served_as_a_download_never_inline(mime: str, data: bytes, client: Any, app: Any, db: Any,
                                                     center: SimpleNamespace) -> None:
    attachment = arrive(client, app, db, center, media_message(
        "document", center.fake.add_media(data, mime), mime, filename="dibujo.svg"))
    served = get_as(app, "ana", f"/media/{attachment.id}")
    assert served.data == data
    assert served.mimetype == "application/octet-stream"
    assert served.headers["Content-Disposition"].startswith('attachment; filename="dibujo.svg"')
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"] == "sandbox"


def test_served_types(app: Any) -> None:
    assert media.served_type("image/jpeg") == ("image/jpeg", True)
    assert media.served_type("audio/ogg; codecs=opus") == ("audio/ogg", True)
    assert media.served_type("application/pdf") == ("application/pdf", False)
    assert media.served_type("text/plain") == ("text/plain", False)
    for active in ("image/svg+xml", "text/html", "text/xml", "application/xml", "application/javascript",
                   "text/javascript", "multipart/related", "image/SVG+XML", "not a type"):
        assert media.served_type(active) in (("application/octet-stream", False),), active


# -- limits and failures --------------------------------------------------------------------------------------
def test_an_image_over_5_mb_is_refused_with_the_reason_and_not_downloaded(client: Any, app: Any, db: Any,
                                                                          center: SimpleNamespace) -> None:
    big = b"\xff\xd8" + b"\x00" * (5 * 1024 * 1024 + 10)
    attachment = arrive(client, app, db, center, media_message("image", center.fake.add_media(big, "image/jpeg"),
                                                               "image/jpeg"))
    assert attachment.state == AttachmentState.REFUSED
    assert attachment.details == {"size": len(big), "limit": 5 * 1024 * 1024}
    assert "over the 5242880 bytes WhatsApp allows" in attachment.error
    assert [r.path for r in center.fake.api_requests()] == [f"/v21.0/{attachment.source['id']}"]  # no download
    page = get_as(app, "ana", f"/inbox/{attachment.message.interaction_id}").get_data(as_text=True)
    assert "5.0 MB" in page and "no se guardó" in page


def test_a_file_that_streams_past_its_limit_is_refused(app: Any) -> None:
    """No size declared: counted while it streams, and stopped at the limit."""
    from webapp.providers.base import MediaDownload

    chunks = iter([b"x" * 400_000, b"x" * 400_000])
    with pytest.raises(media.Refused) as refused:
        media.copy_limited(MediaDownload(chunks=chunks), io.BytesIO(), 500 * 1024)
    assert (refused.value.size, refused.value.limit) == (800_000, 512_000)


def test_a_failed_download_is_retried_with_backoff_and_shows_downloading_until_then(
        client: Any, app: Any, db: Any, center: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    from webapp.services import time as clock
    from workers.whatsapp import fetch_media

    data = samples.jpeg()
    center.fake.set_mode("500", path="/whatsapp_business")
    attachment = arrive(client, app, db, center, media_message("image", center.fake.add_media(data, "image/jpeg"),
                                                               "image/jpeg"))
    assert (attachment.state, attachment.attempts) == (AttachmentState.PENDING, 1)
    assert "HTTP 500" in attachment.error and attachment.next_attempt_at is not None
    queue = app.extensions["conversa_queues"]["housekeeping"]
    assert ScheduledJobRegistry(queue=queue).count == 1  # RQ's retry, with its backoff
    assert FailedJobRegistry(queue=queue).count == 0
    page = get_as(app, "ana", f"/inbox/{attachment.message.interaction_id}").get_data(as_text=True)
    assert f'id="attachment-{attachment.id}"' in page and "descargando…" in page

    assert fetch_media(attachment.id) == "skipped"  # not before its time
    center.fake.set_mode(None)
    later = clock.now() + timedelta(seconds=60)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert fetch_media(attachment.id) == AttachmentState.READY
    db.session.expire_all()
    attachment = db.session.get(Attachment, attachment.id)
    assert (attachment.attempts, attachment.error, attachment.size) == (2, None, len(data))


def test_every_try_failing_ends_failed(client: Any, app: Any, db: Any, center: SimpleNamespace,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp.services import time as clock
    from workers.whatsapp import fetch_media

    monkeypatch.setitem(app.config, "MEDIA_FETCH_ATTEMPTS", 2)
    center.fake.set_mode("500", path="/whatsapp_business")
    attachment = arrive(client, app, db, center, media_message("image", center.fake.add_media(b"x", "image/jpeg"),
                                                               "image/jpeg"))
    later = clock.now() + timedelta(hours=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert fetch_media(attachment.id) == AttachmentState.FAILED
    db.session.expire_all()
    attachment = db.session.get(Attachment, attachment.id)
    assert attachment.attempts == 2 and "HTTP 500" in attachment.error
    page = get_as(app, "ana", f"/inbox/{attachment.message.interaction_id}").get_data(as_text=True)
    assert "no se pudo descargar" in page


def test_a_media_id_meta_no_longer_has_fails_at_once(client: Any, app: Any, db: Any,
                                                     center: SimpleNamespace) -> None:
    from rq.registry import ScheduledJobRegistry

    attachment = arrive(client, app, db, center, media_message("image", "123456789", "image/jpeg"))
    assert (attachment.state, attachment.attempts) == (AttachmentState.FAILED, 1)
    assert "100" in attachment.error
    assert ScheduledJobRegistry(queue=app.extensions["conversa_queues"]["housekeeping"]).count == 0


def test_an_expired_download_url_is_asked_for_again(client: Any, app: Any, db: Any, center: SimpleNamespace) -> None:
    data = samples.pdf()
    center.fake.expire_next_urls = 1
    attachment = arrive(client, app, db, center, media_message(
        "document", center.fake.add_media(data, "application/pdf"), "application/pdf", filename="a.pdf"))
    assert (attachment.state, attachment.attempts, attachment.size) == (AttachmentState.READY, 1, len(data))
    statuses = [(r.path.startswith("/whatsapp_business"), r.status) for r in center.fake.api_requests()]
    assert statuses == [(False, 200), (True, 404), (False, 200), (True, 200)]


def test_a_download_whose_job_was_lost_is_queued_again(client: Any, app: Any, db: Any, center: SimpleNamespace,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp.models import Provider
    from webapp.providers.base import InboundMessage
    from webapp.services import interactions
    from webapp.services import time as clock

    data = samples.jpeg()
    media_id = center.fake.add_media(data, "image/jpeg")
    interactions.receive_inbound(db.session.get(Provider, center.provider.id), InboundMessage(
        "wamid.LOST", "+" + CUSTOMER, DID, "", "whatsapp", media=[{"kind": "image", "id": media_id}]))
    db.session.commit()
    app.extensions["conversa_queues"]["housekeeping"].empty()  # as if Redis had lost the job
    assert media.recover() == 0  # too early: its job may still be on its way
    later = clock.now() + timedelta(minutes=5)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert media.recover() == 1
    run_jobs(app)
    db.session.expire_all()
    assert db.session.scalar(sa.select(Attachment.state)) == AttachmentState.READY
    assert media.recover() == 0


def test_two_jobs_for_one_file_download_it_once(client: Any, app: Any, db: Any, center: SimpleNamespace) -> None:
    from workers.whatsapp import fetch_media

    attachment = arrive(client, app, db, center, media_message(
        "image", center.fake.add_media(samples.jpeg(), "image/jpeg"), "image/jpeg"))
    assert fetch_media(attachment.id) == "skipped"
    assert len([r for r in center.fake.api_requests() if r.path.startswith("/whatsapp_business")]) == 1


# -- where it shows ------------------------------------------------------------------------------------------
def test_the_conversation_shows_downloading_then_the_picture_and_the_live_event_pushes_it(
        client: Any, app: Any, db: Any, center: SimpleNamespace) -> None:
    from webapp.live.registry import find_renderer
    from webapp.models import Provider
    from webapp.providers.base import InboundMessage
    from webapp.services import interactions

    media_id = center.fake.add_media(samples.jpeg(), "image/jpeg")
    message = interactions.receive_inbound(db.session.get(Provider, center.provider.id), InboundMessage(
        "wamid.P1", "+" + CUSTOMER, DID, "la foto", "whatsapp",
        media=[{"kind": "image", "id": media_id, "content_type": "image/jpeg"}]))
    db.session.commit()
    interaction = db.session.get(Interaction, message.interaction_id)
    interaction.agent_id, interaction.status = center.ana.id, "assigned"
    db.session.commit()
    attachment = db.session.scalar(sa.select(Attachment))
    before = get_as(app, "ana", f"/inbox/{interaction.id}").get_data(as_text=True)
    assert "Imagen · descargando…" in before and "<img" not in before.split(f'id="attachment-{attachment.id}"')[1][:300]

    run_jobs(app)
    after = get_as(app, "ana", f"/inbox/{interaction.id}").get_data(as_text=True)
    assert f'href="/media/{attachment.id}"' in after and f'src="/media/{attachment.id}/thumb"' in after
    assert 'loading="lazy"' in after and 'width="320" height="240"' in after

    render, _ = find_renderer({"topic": f"interaction:{interaction.id}", "kind": "message.media"})
    with app.test_request_context():
        html = render({"topic": f"interaction:{interaction.id}", "kind": "message.media",
                       "data": {"attachment_id": attachment.id}}, None)
        wrong = render({"topic": "interaction:999", "kind": "message.media",
                        "data": {"attachment_id": attachment.id}}, None)
    assert f'id="attachment-{attachment.id}"' in html and 'hx-swap-oob="true"' in html and "/thumb" in html
    assert wrong is None


def test_spy_screen_and_transcripts_show_and_name_the_attachments(client: Any, app: Any, db: Any,
                                                                  center: SimpleNamespace) -> None:
    note = samples.voice_note()
    arrive(client, app, db, center, media_message("audio", center.fake.add_media(note, "audio/ogg"), "audio/ogg",
                                                  voice=True))
    arrive(client, app, db, center, media_message(
        "document", center.fake.add_media(samples.pdf(), "application/pdf"), "application/pdf",
        filename="Factura.pdf", caption="te mando la factura"))
    location = arrive(client, app, db, center, {"type": "location", "location": {
        "latitude": -34.9, "longitude": -56.16, "name": "Casa"}})
    interaction = location.message.interaction
    audio, document = db.session.scalars(sa.select(Attachment).order_by(Attachment.id)).all()[:2]

    spy = get_as(app, "sup", f"/monitor/agents/{center.ana.id}/spy/{interaction.id}")
    assert spy.status_code == 200
    page = spy.get_data(as_text=True)
    assert f'<audio controls preload="none" src="/media/{audio.id}"' in page
    assert "Factura.pdf" in page and "openstreetmap.org/?mlat=-34.9&amp;mlon=-56.16" in page

    transcript = get_as(app, "sup", f"/transcripts/{interaction.id}").get_data(as_text=True)
    assert f'src="/media/{audio.id}"' in transcript and f'href="/media/{document.id}"' in transcript
    text = get_as(app, "sup", f"/transcripts/{interaction.id}.txt").get_data(as_text=True)
    assert f"[Nota de voz: {audio.filename}, audio/ogg, {media.human_size(len(note))}]" in text
    assert "te mando la factura [Documento: Factura.pdf, application/pdf," in text
    assert "[Ubicación: -34.9, -56.16 (Casa)]" in text
    rows = list(csv.reader(io.StringIO(get_as(app, "sup", f"/transcripts/{interaction.id}.csv")
                                       .get_data(as_text=True))))
    assert rows[0][-1] == "Adjuntos"
    assert [r[-1].split(":")[0] for r in rows[1:]] == ["[Nota de voz", "[Documento", "[Ubicación"]


def test_human_size_and_file_names() -> None:
    assert [media.human_size(n) for n in (None, 10, 2048, 5 * 1024 * 1024)] == ["", "10 B", "2 KB", "5.0 MB"]
    assert media.safe_filename("../../etc/pass\x00wd", "document", "text/plain") == "passwd"
    assert media.safe_filename("", "image", "image/jpeg", 7) == "image-7.jpg"
    assert media.safe_filename(None, "audio", "audio/ogg", 8) == "audio-8.oga"
    assert len(media.safe_filename("x" * 300 + ".pdf", "document", "application/pdf")) == 114
    assert media.content_disposition("Año ñandú.pdf", False) == (
        "attachment; filename=\"Ano nandu.pdf\"; filename*=UTF-8''A%C3%B1o%20%C3%B1and%C3%BA.pdf")
    assert media_store.check_key("2025/01/02/3-abc.thumb.jpg")
