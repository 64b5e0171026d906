"""S4 in a real browser: while the gateway rate limits a dialer its dashboard says so, without a reload,
and the notice goes away once the gateway lets the messages through again."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    ROOT,
    browser_login,
    drain_until_done,
    htmx_errors,
    numbers,
    queue,
    run,
    twilio_provider,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "instance" / "screenshots"))


def test_rate_limit_notice_comes_and_goes_live(app: Any, db: Any, make: Any, new_page: Any,
                                               fake_twilio: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 (Retry-After: 1) shows "El proveedor nos está limitando" on the open dashboard over the socket;
    once the messages go out the notice leaves the same page, and nothing failed."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    monkeypatch.setitem(app.config, "DIALER_JOB_SECONDS", 0.5)
    monkeypatch.setitem(app.config, "DIALER_RATE_LIMIT_QUIET", 0)
    group = make.group("norte")
    make.user("sup", role="supervisor", groups=[group])
    d = make.dialer(group, twilio_provider(make, fake_twilio), name="campsms", interval_ms=0, running=True)
    queue(db, d, numbers(3))

    page = new_page()
    browser_login(page, "sup")
    page.goto(f"/dialers/{d.id}")
    page.wait_for_function("document.body.dataset.live === 'on'")  # the socket is up: pushes, not polls
    errors = htmx_errors(page)
    page.evaluate("window.__samePage = 'yes'")  # gone if anything reloads the page
    notice = page.locator(f"#dialer-{d.id}-rate-limit")
    assert notice.count() == 0

    fake_twilio.fail_next(1, "429")
    assert run(d)["rate_limited"] == 1
    notice.wait_for()
    text = notice.inner_text()
    assert "El proveedor nos está limitando." in text and "sin gastar sus intentos" in text
    page.screenshot(path=str(SHOTS / "dialer-rate-limited.png"), full_page=True)

    drain_until_done(db, d)
    notice.wait_for(state="detached")
    page.wait_for_function(
        "([sel, n]) => document.querySelector(sel).textContent.trim() === n",
        arg=[f"#dialer-{d.id}-counts [data-count=processed] b", "3"])
    assert page.locator(f"#dialer-{d.id}-counts [data-count=failed] b").inner_text() == "0"
    assert page.evaluate("window.__samePage") == "yes"
    assert errors == []
