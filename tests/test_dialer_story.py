"""Issue 12 point 7: the dialer dashboard tells the whole story (invalid lines listed in the bulk preview,
a single message on a stopped dialer says it waits for Start)."""
from __future__ import annotations

import io
import re

import pytest

from tests.helpers import csrf_token, login
from webapp.services.ingest import bulk


@pytest.fixture
def world(make):
    group = make.group("norte")
    make.user("sup", role="supervisor", groups=[group])
    dialer = make.dialer(group, make.provider("sandbox", name="sandbox-a"), name="campsms", interval_ms=10)
    return {"dialer_id": dialer.id}


def post(client, path, data=None, **kw):
    data = dict(data or {})
    data.setdefault("csrf_token", csrf_token(client, "/dialers"))
    return client.post(path, data=data, **kw)


def flashes(html: bytes) -> str:
    return " ".join(re.findall(r'<p class="flash[^"]*" role="status">(.*?)</p>', html.decode(), re.S))


def english(client) -> None:
    client.post("/language", data={"lang": "en", "next": "/dialers", "csrf_token": csrf_token(client, "/dialers")})


def preview_html(client, dialer_id: int, content: bytes) -> str:
    response = post(client, f"/dialers/{dialer_id}/bulk", {"file": (io.BytesIO(content), "LISTA.csv")},
                    content_type="multipart/form-data")
    assert response.status_code == 200
    return response.data.decode()


def test_bulk_preview_lists_the_invalid_lines_with_their_value(client, world):
    login(client, "sup")
    content = (b"campsms;098344384;Hola;1;\n"
               b"campsms;12;Numero malo;1;\n"
               b"campsms;098356484;Hola;1;\n"
               b"campsms;abc99;Otro malo;1;\n")
    html = preview_html(client, world["dialer_id"], content)
    listed = re.search(r'<details class="invalid-lines".*?</details>', html, re.S).group(0)
    assert re.findall(r'<tr data-invalid-line="(\d+)"><td>\d+</td><td class="nowrap">([^<]*)</td>', listed) == [
        ("2", "12"), ("4", "abc99")]
    assert "2 líneas con un número inválido" in listed and "más" not in listed
    english(client)
    html = preview_html(client, world["dialer_id"], b"campsms;12;Numero malo;1;\n")
    assert "1 line with an invalid number: it loads as invalid and is not sent." in html


def test_bulk_preview_names_the_first_invalid_lines_and_counts_the_rest(client, world, monkeypatch):
    monkeypatch.setattr(bulk, "INVALID_LISTED", 3)
    login(client, "sup")
    content = b"".join(b"campsms;%d;Malo;1;\n" % n for n in range(1, 8)) + b"campsms;098344384;Bueno;1;\n"
    html = preview_html(client, world["dialer_id"], content)
    listed = re.search(r'<details class="invalid-lines".*?</details>', html, re.S).group(0)
    assert re.findall(r'data-invalid-line="(\d+)"', listed) == ["1", "2", "3"]
    assert "7 líneas con un número inválido" in listed and "Y 4 líneas más con un número inválido." in listed


def test_a_valid_file_lists_no_invalid_lines(client, world):
    login(client, "sup")
    assert "invalid-lines" not in preview_html(client, world["dialer_id"], b"campsms;098344384;Hola;1;\n")


def test_single_message_on_a_stopped_dialer_says_it_waits_for_start(client, world, db):
    login(client, "sup")
    d = world["dialer_id"]
    response = post(client, f"/dialers/{d}/single", {"phone": "098 344 384", "text": "Hola"}, follow_redirects=True)
    assert ("Mensaje a +59898344384 encolado. El marcador está detenido: saldrá cuando usted pulse Iniciar."
            in flashes(response.data))
    english(client)
    response = post(client, f"/dialers/{d}/single", {"phone": "098 344 384", "text": "Hola"}, follow_redirects=True)
    assert "The dialer is stopped: it will go out when you press Start." in flashes(response.data)


def test_single_message_on_a_running_dialer_just_says_queued(client, world, db):
    from webapp.models import Dialer

    db.session.get(Dialer, world["dialer_id"]).running = True
    db.session.commit()
    login(client, "sup")
    response = post(client, f"/dialers/{world['dialer_id']}/single", {"phone": "098344384", "text": "Hola"},
                    follow_redirects=True)
    notice = flashes(response.data)
    assert "Mensaje a +59898344384 encolado en este marcador." in notice and "detenido" not in notice
