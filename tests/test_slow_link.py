"""Pages that paint after one round trip on a slow link (issue 14.4): no stylesheet or icon to fetch before
the first paint, the deferred scripts announced in the headers. The figures: tests/bench/bench_slow_link.py."""
from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import login


def test_the_inbox_fetches_nothing_before_its_first_paint(client, make, app):
    make.user("ana", role="agent")
    login(client, "ana")
    response = client.get("/inbox")
    html = response.get_data(as_text=True)
    head = html.split("</head>")[0]
    assert not re.search(r'<link[^>]+rel="stylesheet"', head), "a stylesheet blocks the first paint"
    assert not re.search(r'<script(?![^>]*\bdefer\b)[^>]*\bsrc=', head), "a script blocks the parser"
    icon = re.search(r'<link rel="icon" href="([^"]+)"', head).group(1)
    assert icon.startswith("data:image/svg+xml,")
    styles = "".join(re.findall(r"<style>(.*?)</style>", head, re.S))
    for name in ("app.css", "media.css", "inbox.css"):
        first_rule = (Path(app.static_folder) / "css" / name).read_text().split("}")[0].split("*/")[-1].strip()
        assert first_rule in styles, f"{name} is not in the page"


def test_the_deferred_scripts_are_announced_in_the_headers(client, make):
    make.user("ana", role="agent")
    login(client, "ana")
    response = client.get("/inbox")
    html = response.get_data(as_text=True)
    scripts = re.findall(r'<script src="([^"]+)" defer></script>', html)
    assert len(scripts) == 4 and any("htmx" in s for s in scripts)
    links = re.findall(r"<([^>]+)>; rel=preload; as=script", response.headers.get("Link", ""))
    assert links == scripts
    fragment = client.get("/inbox/list", headers={"HX-Request": "true"})
    assert "Link" not in fragment.headers  # a fragment loads no script
