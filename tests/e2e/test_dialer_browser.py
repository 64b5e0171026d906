"""S4 in a real browser: a supervisor uploads a bulk file on the dashboard, previews it, confirms, and
watches a real worker load it (the progress bar, then the summary) and send it (the "processed" counter
reaching the number loaded), without reloading."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, browser_login, process_env, start_worker, stop_worker

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "instance" / "screenshots"))
ROWS = 12


@pytest.fixture
def worker(app: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m workers` on this session's database and Redis; stopped at the end (its log goes with the
    test's report when it did not stop cleanly)."""
    log_path = tmp_path / "worker.log"
    proc = start_worker(process_env(app), log_path)
    yield proc
    stop_worker(proc)
    if proc.returncode not in (0, -15):
        request.node.add_report_section("teardown", "worker log", log_path.read_text(errors="replace")[-4000:])


def bulk_file(dialer: str, rows: int) -> bytes:
    lines = [f"{n}{dialer};0983{n % 100_000:05d};Hola Mundo! Mensaje {n};{max(0, 100 - n)};" for n in range(1, rows + 1)]
    return ("\n".join(lines) + "\n").encode()


def test_bulk_upload_then_processed_counter_moves_live(make, new_page, worker, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    group = make.group("norte")
    make.user("sup", role="supervisor", groups=[group])
    provider = make.provider("sandbox", name="sandbox-demo")
    dialer = make.dialer(group, provider, name="campsms", interval_ms=10, enabled=True, running=True)
    d = dialer.id

    page = new_page()
    browser_login(page, "sup")
    page.goto(f"/dialers/{d}")
    page.wait_for_function("document.body.dataset.live === 'on'")  # the socket is up: pushes, not polls
    counter = page.locator(f"#dialer-{d}-counts [data-count=processed] b")
    assert counter.inner_text() == "0"
    page.screenshot(path=str(SHOTS / "dialer-dashboard-empty.png"), full_page=True)

    page.set_input_files("#bulk-file", files=[{"name": "DISCTEST29042014.csv", "mimeType": "text/csv",
                                               "buffer": bulk_file("campsms", ROWS)}])
    page.click(f"#dialer-{d}-bulk button[type=submit]")
    preview = page.locator("#bulk-preview")
    preview.wait_for()
    assert preview.locator("[data-count=total] b").inner_text() == str(ROWS)
    assert preview.locator("[data-count=invalid] b").inner_text() == "0"
    assert preview.locator("tbody tr").count() == 10
    assert "+59898300001" in preview.inner_text()
    page.screenshot(path=str(SHOTS / "dialer-bulk-preview.png"), full_page=True)

    page.click("#confirm-upload")
    page.wait_for_url(f"**/dialers/{d}")
    assert "cargando en segundo plano" in page.locator(".flash").inner_text()
    page.wait_for_function("document.body.dataset.live === 'on'")
    page.evaluate("window.__samePage = 'yes'")  # gone if anything reloads the page
    page.locator(f"#dialer-{d}-loads [data-state=done]").wait_for(timeout=60_000)
    assert f"Cargados {ROWS} mensajes" in page.locator(f"#dialer-{d}-loads").inner_text()

    page.wait_for_function(
        "([sel, n]) => document.querySelector(sel).textContent.trim() === n",
        arg=[f"#dialer-{d}-counts [data-count=processed] b", str(ROWS)], timeout=60_000)
    assert page.evaluate("window.__samePage") == "yes"
    assert page.locator(f"#dialer-{d}-counts [data-count=not_processed] b").inner_text() == "0"
    page.screenshot(path=str(SHOTS / "dialer-dashboard-processed.png"), full_page=True)
    assert worker.poll() is None, "the worker died"


LARGE = 150_000


def test_bulk_load_progress_bar_moves_then_shows_the_summary(make, new_page, worker, tmp_path):
    """A file large enough to take a while: after Confirm the page answers at once, the bar moves through
    values between 0 and the total (pushed over the socket), other pages answer meanwhile, and the summary
    replaces the bar; nothing reloads the page."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    group = make.group("norte")
    make.user("sup", role="supervisor", groups=[group])
    dialer = make.dialer(group, make.provider("sandbox", name="sandbox-demo"), name="campsms")
    d = dialer.id

    page = new_page()
    browser_login(page, "sup")
    page.goto(f"/dialers/{d}")
    assert page.locator(f"#dialer-{d}-loads").is_hidden()  # no load yet: no empty box
    page.set_input_files("#bulk-file", files=[{"name": "DISCTEST.csv", "mimeType": "text/csv",
                                               "buffer": bulk_file("campsms", LARGE)}])
    page.click(f"#dialer-{d}-bulk button[type=submit]")
    page.locator("#bulk-preview").wait_for(timeout=60_000)
    page.click("#confirm-upload")
    page.wait_for_url(f"**/dialers/{d}")
    page.wait_for_function("document.body.dataset.live === 'on'")
    # Every state and row count the block shows from now on, and whether another page answers meanwhile.
    page.evaluate("""([sel]) => {
      window.__samePage = 'yes'; window.__seen = []; window.__others = [];
      setInterval(() => {
        const a = document.querySelector(sel);
        if (a) { window.__seen.push([a.dataset.state, +a.dataset.rows, +a.dataset.total]); }
        if (a && a.dataset.state === 'running' && window.__others.length < 3) {
          fetch('/dialers').then(r => window.__others.push(r.status));
        }
      }, 30);
    }""", [f"#dialer-{d}-loads .bulk-load"])
    page.locator(f"#dialer-{d}-loads [data-state=running]").wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "dialer-bulk-progress.png"), full_page=True)
    page.locator(f"#dialer-{d}-loads [data-state=done]").wait_for(timeout=120_000)
    page.screenshot(path=str(SHOTS / "dialer-bulk-loaded.png"), full_page=True)

    seen = page.evaluate("window.__seen")
    running = sorted({rows for state, rows, _total in seen if state == "running"})
    assert any(0 < rows < LARGE for rows in running), running  # the bar was seen part-way
    assert all(total == LARGE for _state, _rows, total in seen)
    assert page.evaluate("window.__others") and set(page.evaluate("window.__others")) == {200}
    block = page.locator(f"#dialer-{d}-loads")
    assert block.locator("progress").get_attribute("value") == "1"
    assert f"Cargados {LARGE} mensajes; 0 números inválidos; 0 bloqueados." in " ".join(block.inner_text().split())
    assert page.evaluate("window.__samePage") == "yes"
    assert worker.poll() is None, "the worker died"
