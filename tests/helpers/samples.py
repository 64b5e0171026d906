"""Small real files of each kind a WhatsApp customer sends, made here (no file is downloaded), and the S3
server the media store tests run against (moto's, on loopback)."""
from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_MEDIA = ROOT / "webapp" / "providers" / "sandbox_media"
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def jpeg(width: int = 640, height: int = 480, color: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), color)
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=(250, 200, 40))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def webp_sticker() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((40, 40, 472, 472), fill=(255, 210, 0, 255))
    out = io.BytesIO()
    image.save(out, "WEBP")
    return out.getvalue()


def voice_note() -> bytes:
    return (SANDBOX_MEDIA / "voice.wav").read_bytes()


def pdf() -> bytes:
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
            b"trailer<</Root 1 0 R>>\n%%EOF\n")


def video() -> bytes:
    """Bytes labelled video/mp4 (an ftyp box and noise): enough to check they come back unchanged."""
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(30_000)


SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="document.title=\'pwned\'">'
       b"<script>document.title='pwned'</script><rect width='10' height='10'/></svg>")


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port, with test credentials in the environment; yields its URL."""
    import pytest
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        for key, value in S3_ENV.items():
            patch.setenv(key, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def new_bucket(endpoint: str, name: str) -> None:
    import boto3

    boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
