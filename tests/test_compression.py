"""Compressed text without a proxy (issue 14.4): static files gzipped once ahead of time, pages on the fly,
streams and media left streaming, nothing compressed for a client that did not ask."""
from __future__ import annotations

import gzip
import os
import re
from datetime import datetime
from pathlib import Path

from tests.helpers import login

GZIP = {"Accept-Encoding": "gzip, deflate, br"}


def fetch(client, url, **headers):
    """A static file's answer, read and closed (its file handle is not left to the collector)."""
    response = client.get(url, headers=headers)
    response.get_data()
    response.close()
    return response
HTMX = "vendor/htmx-2.0.11.min.js"


def htmx_url(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'src="(/static/vendor/htmx-2\.0\.11\.min\.js\?v=[0-9a-f]+)"', page).group(1)


def test_htmx_goes_gzipped_once_compressed_and_byte_identical(client, app):
    url = htmx_url(client)
    original = (Path(app.static_folder) / HTMX).read_bytes()
    response = fetch(client, url, **GZIP)
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert response.mimetype == "text/javascript"
    body = response.get_data()
    assert int(response.headers["Content-Length"]) == len(body) < len(original) // 2
    assert gzip.decompress(body) == original
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # compressed ahead of time: the file the app sends is there, beside its peers
    assert (Path(app.config["STATIC_GZIP_DIR"]) / (HTMX + ".gz")).read_bytes() == body


def test_static_without_accept_encoding_is_the_file_itself_with_another_etag(client, app):
    url = htmx_url(client)
    original = (Path(app.static_folder) / HTMX).read_bytes()
    for headers in ({}, {"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0, br"}):
        plain = fetch(client, url, **headers)
        assert "Content-Encoding" not in plain.headers and plain.get_data() == original
        assert "Accept-Encoding" in plain.headers["Vary"]
    zipped = fetch(client, url, **GZIP)
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    again = fetch(client, url, **GZIP, **{"If-None-Match": zipped.headers["ETag"]})
    assert again.status_code == 304
    assert fetch(client, url, **{"If-None-Match": zipped.headers["ETag"]}).status_code == 200


def test_a_static_file_edited_while_running_is_compressed_again(client, app):
    target = Path(app.static_folder) / f"css/_gzip_test_{os.getpid()}.css"
    try:
        target.write_text("body { color: red; }\n" * 50)
        first = fetch(client, f"/static/css/{target.name}", **GZIP)
        assert gzip.decompress(first.get_data()) == target.read_bytes()
        target.write_text("body { color: blue; }\n" * 60)
        os.utime(target, ns=(target.stat().st_mtime_ns + 10**9,) * 2)
        second = fetch(client, f"/static/css/{target.name}", **GZIP)
        assert gzip.decompress(second.get_data()) == target.read_bytes()
    finally:
        target.unlink(missing_ok=True)
        (Path(app.config["STATIC_GZIP_DIR"]) / f"css/{target.name}.gz").unlink(missing_ok=True)


def test_pages_and_fragments_are_gzipped_when_the_client_takes_it(client, make, db):
    from webapp.models import Interaction, utcnow

    group = make.group("norte")
    campaign = make.campaign(group, name="Ventas")
    ana = make.user("ana", role="agent", groups=[group])
    make.member(campaign, ana)
    for n in range(10):
        db.session.add(Interaction(campaign_id=campaign.id, customer_number=f"+5989910{n:04d}", status="active",
                                   agent_id=ana.id, created_at=utcnow(), queued_at=utcnow()))
    db.session.commit()
    login(client, "ana")
    for path, headers in (("/inbox", {}), ("/inbox/list", {"HX-Request": "true"})):
        plain = client.get(path, headers=headers)
        zipped = client.get(path, headers={**headers, **GZIP})
        assert plain.status_code == zipped.status_code == 200
        assert "Content-Encoding" not in plain.headers
        assert zipped.headers["Content-Encoding"] == "gzip"
        vary = {v.strip() for v in zipped.headers["Vary"].split(",")}
        assert "Accept-Encoding" in vary and (path != "/inbox" or "HX-Request" in vary)  # the view's kept
        assert int(zipped.headers["Content-Length"]) == len(zipped.get_data())
        assert gzip.decompress(zipped.get_data()).decode().count("</") == plain.get_data(as_text=True).count("</")


def test_a_tiny_body_goes_as_it_is(client):
    response = client.get("/healthz", headers=GZIP)
    assert response.status_code in (200, 503) and "Content-Encoding" not in response.headers


def test_a_streamed_export_still_streams_uncompressed(client, make, db):
    from webapp.models import Interaction

    group = make.group("norte")
    campaign = make.campaign(group, name="Ventas")
    make.user("sup", role="supervisor", groups=[group])
    for n in range(30):
        at = datetime(2025, 3, 10, 14, n)
        db.session.add(Interaction(campaign_id=campaign.id, customer_number=f"+5989910{n:04d}", status="closed",
                                   created_at=at, queued_at=at, closed_at=at))
    db.session.commit()
    login(client, "sup")
    response = client.get(f"/transcripts/export.csv?campaigns={campaign.id}", headers=GZIP)
    assert response.status_code == 200 and response.is_streamed
    assert "Content-Encoding" not in response.headers
    assert response.get_data(as_text=True).count("+5989910") == 30


def test_turned_off_nothing_is_compressed(app, client):
    from webapp import create_app

    off = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "REDIS_URL", "SECRET_KEY")},
                      "TESTING": True, "COMPRESS_RESPONSES": False})
    url = htmx_url(off.test_client())
    response = fetch(off.test_client(), url, **GZIP)
    assert response.status_code == 200 and "Content-Encoding" not in response.headers
    assert off.test_client().get("/login", headers=GZIP).headers.get("Content-Encoding") is None


def test_static_files_go_plain_when_their_gzip_cannot_be_written(app, tmp_path):
    from webapp import create_app

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    other = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "REDIS_URL", "SECRET_KEY")},
                        "TESTING": True, "STATIC_GZIP_DIR": str(blocked)})
    client = other.test_client()
    url = htmx_url(client)
    for _ in range(2):
        response = fetch(client, url, **GZIP)
        assert response.status_code == 200 and "Content-Encoding" not in response.headers
        assert response.get_data() == (Path(app.static_folder) / HTMX).read_bytes()
