"""Driving the app in Debian's Chromium through Playwright: launch options, sign-in, htmx settling and errors."""
from __future__ import annotations

from typing import Any

from tests.helpers.web import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]


def settled(page: Any) -> None:
    """Wait until htmx has wired the content it swapped in (a click before that would submit natively): no
    request in flight, no swap or settle under way, and no element still marked new (htmx takes `htmx-added`
    off each new element just before it processes its attributes)."""
    busy = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"
    try:
        page.wait_for_function(f"() => !document.querySelector({busy!r})")
    except Exception as exc:
        still = page.evaluate(f"() => Array.from(document.querySelectorAll({busy!r}))"
                              ".map(e => e.outerHTML.slice(0, 300))")
        raise AssertionError(f"htmx never settled; still busy: {still}") from exc


def htmx_errors(page: Any) -> list[str]:
    """The htmx errors the page logs from now on (an out-of-band target missing, a failed swap...)."""
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and "htmx" in m.text and errors.append(m.text))
    return errors


def browser_login(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
