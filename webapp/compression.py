"""Compressed text without a proxy in front (`make run`, a bare gunicorn): agents on slow links get htmx as
17 KB instead of 52, an inbox page as a quarter of its bytes.

- Static files: each text file (CSS, JS, SVG, …) is gzipped once, ahead of time, when the app starts, into
  `STATIC_GZIP_DIR` (`<name>.gz`, stamped with the source's modification time; a source edited while the
  server runs is compressed again on its next request). The static view sends that file, with its own
  ETag and Content-Length, `Content-Encoding: gzip` and `Vary: Accept-Encoding`, to a client that accepts
  gzip; the file as it is to any other.
- Pages (HTML, htmx fragments, JSON, plain text) are gzipped on the fly after the view when the client
  accepts gzip and the body is at least `COMPRESS_MIN_BYTES`. Streamed responses (CSV exports) and
  pass-through ones (media files, static files) are left as they are, so they keep streaming; so are
  websockets, HEAD, 204/206/304 and anything already encoded.

`COMPRESS_RESPONSES=0` turns both off (a proxy in front that compresses already).
"""
from __future__ import annotations

import gzip
import logging
import mimetypes
import os
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask, request, send_from_directory
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join

log = logging.getLogger(__name__)

TEXT_TYPES = frozenset({"text/html", "text/css", "text/plain", "text/csv", "text/javascript", "text/xml",
                        "application/javascript", "application/json", "application/xml", "image/svg+xml"})
STATIC_SUFFIXES = frozenset({".css", ".js", ".svg", ".txt", ".html", ".json", ".xml", ".map"})
NO_BODY = frozenset({204, 206, 304})


def accepts_gzip() -> bool:
    """The client said it takes gzip (`Accept-Encoding: gzip`, or `*`), with a quality above 0."""
    return request.accept_encodings["gzip"] > 0


# -- static files: compressed once --------------------------------------------------------------------
def compress_file(source: Path, target: Path, level: int = 9) -> bool:
    """Write `target` = gzip of `source`, atomically (processes starting together may both write it), with
    the source's modification time: that is how a stale one is recognised. False when it cannot be written."""
    try:
        stat = source.stat()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".gz")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(gzip.compress(source.read_bytes(), level, mtime=0))
            os.utime(tmp, ns=(stat.st_mtime_ns, stat.st_mtime_ns))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("static file %s not precompressed (%s): it is served uncompressed", source, exc)
        return False
    return True


def fresh(source: Path, target: Path) -> bool:
    try:
        return target.stat().st_mtime_ns == source.stat().st_mtime_ns
    except OSError:
        return False


def precompress_static(folder: Path, into: Path) -> int:
    """Gzip every text file under `folder` whose `.gz` in `into` is missing or stale; how many were written."""
    written = 0
    for source in sorted(folder.rglob("*")):
        if source.is_file() and source.suffix in STATIC_SUFFIXES:
            target = into / (str(source.relative_to(folder)) + ".gz")
            if not fresh(source, target) and compress_file(source, target):
                written += 1
    return written


def _install_static(app: Flask) -> None:
    folder = Path(app.static_folder or "static").resolve()
    into = Path(app.config["STATIC_GZIP_DIR"]).resolve()
    precompress_static(folder, into)
    plain_view = app.view_functions["static"]
    unwritable: set[str] = set()  # tried once in this process and could not be written: served plain

    def gzipped(filename: str, source: Path) -> Any:
        """The fresh `.gz` of `source` as an answer, or None (it cannot be written, or went meanwhile)."""
        target = into / (filename + ".gz")
        if filename in unwritable or not (fresh(source, target) or compress_file(source, target)):
            unwritable.add(filename)
            return None
        mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        try:
            response = send_from_directory(into, filename + ".gz", mimetype=mimetype,
                                           max_age=app.get_send_file_max_age(filename))
        except NotFound:
            return None
        response.headers["Content-Encoding"] = "gzip"
        return response

    def static(filename: str) -> Any:
        """The precompressed file to a client that takes gzip; the file as it is otherwise."""
        source = safe_join(str(folder), filename)
        if source is None or Path(source).suffix not in STATIC_SUFFIXES or not os.path.isfile(source):
            return plain_view(filename=filename)
        response = (gzipped(filename, Path(source)) if accepts_gzip() else None) or plain_view(filename=filename)
        response.vary.add("Accept-Encoding")
        return response

    app.view_functions["static"] = static


# -- pages: compressed on the fly ---------------------------------------------------------------------
def _may_compress(response: Any) -> bool:
    return (not response.direct_passthrough and not response.is_streamed and request.method != "HEAD"
            and response.status_code >= 200 and response.status_code not in NO_BODY
            and "Content-Encoding" not in response.headers and response.mimetype in TEXT_TYPES
            and "upgrade" not in request.headers.get("Connection", "").lower())


def _install_pages(app: Flask) -> None:
    minimum = int(app.config["COMPRESS_MIN_BYTES"])
    level = int(app.config["COMPRESS_LEVEL"])

    @app.after_request
    def compress(response: Any) -> Any:
        """Registered first of the app's after_request functions, so it runs after all of them."""
        if not _may_compress(response) or response.content_length is None or response.content_length < minimum:
            return response
        response.vary.add("Accept-Encoding")
        if not accepts_gzip():
            return response
        response.set_data(gzip.compress(response.get_data(), level, mtime=0))
        response.headers["Content-Encoding"] = "gzip"
        etag, weak = response.get_etag()
        if etag:  # another representation: another tag
            response.set_etag(etag + "-gzip", weak=weak)
        return response


def init_app(app: Flask) -> None:
    if not app.config.get("COMPRESS_RESPONSES", True):
        return
    _install_pages(app)
    _install_static(app)
