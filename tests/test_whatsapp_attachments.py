"""W1, agents send attachments: a picture, a document or audio with a caption, from the composer. WhatsApp
Cloud gets the file uploaded to the number's /media endpoint and a message naming it; Twilio WhatsApp a
MediaUrl that is a short-lived signed link to this app; an SMS gateway the same link in the text. Too
large, or a type WhatsApp does not carry: refused with a clear message, nothing kept or sent. Each
message goes once, through the send job, like a text."""
from __future__ import annotations

import io
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.helpers import run_jobs, samples
from tests.helpers.whatsapp import CUSTOMER, agent_client, center, token
from webapp.models import Attachment, Message


def send(client: Any, iid: int, body: str, *files: tuple[bytes, str, str]) -> Any:
    data: dict[str, Any] = {"body": body, "csrf_token": token(client, iid)}
    if files:
        data["files"] = [(io.BytesIO(content), name, ctype) for content, name, ctype in files]
    return client.post(f"/inbox/{iid}/send", data=data, content_type="multipart/form-data",
                       headers={"HX-Request": "true"})


def sent_messages(db: Any, iid: int) -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Message).where(Message.interaction_id == iid).order_by(Message.id)))


def test_meta_gets_the_picture_uploaded_and_a_message_naming_it_with_the_caption(
        app: Any, db: Any, make: Any, fake_whatsapp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", None)  # Meta takes the bytes: no link needed
    c = center(make, db, "meta", fake_whatsapp)
    photo = samples.jpeg()
    client = agent_client(app)
    assert send(client, c.iid, "Así quedó", (photo, "comprobante.jpg", "image/jpeg")).status_code == 200
    run_jobs(app)
    (message,) = sent_messages(db, c.iid)
    assert (message.status, message.body) == ("sent", "Así quedó")
    (upload_id,) = fake_whatsapp.uploads
    assert fake_whatsapp.uploads[upload_id] == (photo, "image/jpeg", "comprobante.jpg")
    (sent,) = fake_whatsapp.sent()
    assert sent["type"] == "image"
    assert sent["payload"]["image"] == {"id": upload_id, "caption": "Así quedó"}
    attachment = db.session.scalar(sa.select(Attachment))
    assert (attachment.message_id, attachment.kind, attachment.size) == (message.id, "image", len(photo))
    assert attachment.thumb_key  # shown like a customer's picture
    page = client.get(f"/inbox/{c.iid}").get_data(as_text=True)
    assert f'src="/media/{attachment.id}/thumb"' in page
    assert client.get(f"/media/{attachment.id}").data == photo


def test_a_document_goes_with_its_name_and_a_voice_note_without_caption(
        app: Any, db: Any, make: Any, fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    client = agent_client(app)
    assert send(client, c.iid, "la factura", (samples.pdf(), "Factura marzo.pdf", "application/pdf")).status_code == 200
    assert send(client, c.iid, "escuchá esto", (samples.voice_note(), "nota.ogg", "audio/ogg")).status_code == 200
    run_jobs(app)
    document, text, audio = fake_whatsapp.sent()
    assert document["payload"]["document"]["filename"] == "Factura marzo.pdf"
    assert document["payload"]["document"]["caption"] == "la factura"
    # Audio takes no caption on WhatsApp: the text goes first, as its own message.
    assert (text["type"], text["payload"]["text"]["body"]) == ("text", "escuchá esto")
    assert audio["type"] == "audio" and "caption" not in audio["payload"]["audio"]
    assert [m.status for m in sent_messages(db, c.iid)] == ["sent", "sent", "sent"]


def test_several_files_go_one_message_each_the_caption_on_the_first(
        app: Any, db: Any, make: Any, fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    client = agent_client(app)
    assert send(client, c.iid, "las dos", (samples.jpeg(), "a.jpg", "image/jpeg"),
                (samples.jpeg(color=(1, 2, 3)), "b.png", "image/png")).status_code == 200
    run_jobs(app)
    first, second = fake_whatsapp.sent()
    assert first["payload"]["image"]["caption"] == "las dos" and "caption" not in second["payload"]["image"]
    assert len(fake_whatsapp.uploads) == 2


# The test client spools a body this large to a temporary file it never closes itself.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(("name", "ctype", "size", "said"), [
    ("grande.jpg", "image/jpeg", 5 * 1024 * 1024 + 1, "grande.jpg supera los 5.0 MB que WhatsApp admite para archivos de tipo imagen"),
    ("audio.wav", "audio/wav", 10, "WhatsApp no transporta archivos audio/wav"),
    ("pagina.html", "text/html", 10, "no se pueden enviar archivos text/html"),
])
def test_what_whatsapp_would_refuse_is_refused_with_a_clear_message_and_nothing_goes(
        name: str, ctype: str, size: int, said: str, app: Any, db: Any, make: Any,
        fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    client = agent_client(app)
    answer = send(client, c.iid, "mirá", (b"x" * size, name, ctype))
    assert answer.status_code == 200 and said in answer.get_data(as_text=True)
    assert answer.headers["HX-Retarget"] == f"#composer-error-{c.iid}"
    run_jobs(app)
    assert sent_messages(db, c.iid) == [] and db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 0
    assert fake_whatsapp.sent() == [] and fake_whatsapp.uploads == {}


def test_an_empty_composer_is_refused(app: Any, db: Any, make: Any, fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    answer = send(agent_client(app), c.iid, "  ")
    assert "Escribí un mensaje o adjuntá un archivo primero." in answer.get_data(as_text=True)


def test_twilio_gets_a_short_lived_signed_link_that_serves_only_that_file(
        app: Any, db: Any, make: Any, fake_twilio: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    c = center(make, db, "twilio", fake_twilio)
    client = agent_client(app)
    photo, pdf = samples.jpeg(), samples.pdf()
    assert send(client, c.iid, "foto", (photo, "foto.jpg", "image/jpeg")).status_code == 200
    assert send(client, c.iid, "", (pdf, "contrato.pdf", "application/pdf")).status_code == 200
    run_jobs(app)
    first, second = fake_twilio.sent()
    assert (first["to"], first["body"], first["num_media"]) == (f"whatsapp:{CUSTOMER}", "foto", "1")
    (url,) = first["media_urls"]
    assert url.startswith("http://localhost/media/link/")
    path = urlsplit(url).path
    anonymous = app.test_client()  # Twilio signs in nowhere
    fetched = anonymous.get(path)
    assert fetched.status_code == 200 and fetched.data == photo
    assert fetched.headers["X-Content-Type-Options"] == "nosniff"
    # The signature is for that file and that expiry only.
    other = urlsplit(second["media_urls"][0]).path
    a_id, expires, signature = re.match(r"/media/link/(\d+)/(\d+)/(\w+)/", path).groups()
    b_id = re.match(r"/media/link/(\d+)/", other).group(1)
    assert anonymous.get(path.replace(f"/link/{a_id}/", f"/link/{b_id}/", 1)).status_code == 404
    assert anonymous.get(path.replace(signature, "0" * len(signature))).status_code == 404
    assert anonymous.get(path.replace(f"/{expires}/", f"/{int(expires) + 3600}/")).status_code == 404
    assert anonymous.get(path.replace(signature, "%C3%A9" * 20)).status_code == 404  # not ASCII: no 500
    assert int(expires) - time.time() <= app.config["MEDIA_FETCH_LINK_SECONDS"] + 5
    monkeypatch.setattr(time, "time", lambda: int(expires) + 1)
    assert anonymous.get(path).status_code == 404  # expired


def test_sms_says_the_file_goes_as_a_link_and_it_goes_as_one_that_expires(
        app: Any, db: Any, make: Any, fake_twilio: Any) -> None:
    c = center(make, db, "sms", fake_twilio)
    client = agent_client(app)
    page = client.get(f"/inbox/{c.iid}").get_data(as_text=True)
    assert "Los SMS no llevan archivos: un archivo adjunto va como un enlace en el mensaje, que funciona durante 7 días." in page
    pdf = samples.pdf()
    assert send(client, c.iid, "te mando el contrato", (pdf, "contrato.pdf", "application/pdf")).status_code == 200
    run_jobs(app)
    (sent,) = fake_twilio.sent()
    assert sent["to"] == CUSTOMER and sent["num_media"] == "0"
    caption, link_line = sent["body"].split("\n")
    assert caption == "te mando el contrato" and link_line.startswith("contrato.pdf: http://localhost/media/link/")
    link = link_line.split(": ", 1)[1]
    expires = int(re.match(r".*/media/link/\d+/(\d+)/", link).group(1))
    assert expires - time.time() > 6 * 24 * 3600
    assert app.test_client().get(urlsplit(link).path).data == pdf
    (message,) = sent_messages(db, c.iid)
    assert message.body == "te mando el contrato"  # the bubble shows the caption and the file itself


def test_a_file_message_is_sent_once_however_often_its_job_runs(
        app: Any, db: Any, make: Any, fake_whatsapp: Any) -> None:
    from workers.inbound import send_message

    c = center(make, db, "meta", fake_whatsapp)
    assert send(agent_client(app), c.iid, "una", (samples.jpeg(), "a.jpg", "image/jpeg")).status_code == 200
    (message,) = sent_messages(db, c.iid)
    run_jobs(app)
    assert send_message(message.id) == "skipped"
    assert len(fake_whatsapp.sent()) == 1 and len(fake_whatsapp.uploads) == 1


def test_a_failed_upload_sends_nothing_and_says_why(app: Any, db: Any, make: Any,
                                                    fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    fake_whatsapp.set_mode("500", path="/media")
    assert send(agent_client(app), c.iid, "una", (samples.jpeg(), "a.jpg", "image/jpeg")).status_code == 200
    run_jobs(app)
    (message,) = sent_messages(db, c.iid)
    assert message.status == "failed" and "131000" in message.error
    assert fake_whatsapp.sent() == []


def test_another_agent_cannot_send_into_the_conversation(app: Any, db: Any, make: Any,
                                                         fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp)
    client = agent_client(app, "beto")
    answer = client.post(f"/inbox/{c.iid}/send", data={"body": "x", "files": (io.BytesIO(b"x"), "a.pdf")},
                         content_type="multipart/form-data")
    assert answer.status_code in (400, 404)
    assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 0


def test_without_a_public_url_a_twilio_file_send_fails_saying_why(
        app: Any, db: Any, make: Any, fake_twilio: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", None)
    c = center(make, db, "twilio", fake_twilio)
    assert send(agent_client(app), c.iid, "foto", (samples.jpeg(), "a.jpg", "image/jpeg")).status_code == 200
    run_jobs(app)
    (message,) = sent_messages(db, c.iid)
    assert message.status == "failed" and "PUBLIC_BASE_URL is not set" in message.error
    assert fake_twilio.sent() == []
