"""Issue 12.5: the monitor holds up on a busy day, in a real Chromium at the widths supervisors use.

Element boxes are measured, not screenshots compared: every figure of a campaign card stays inside its
box and the box inside its card, at every width from 800 to 1920 px; the campaign table and the
transcripts page do not scroll sideways at 800 px."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers import browser_login, settled

pytestmark = [pytest.mark.slow, pytest.mark.browser]
WIDTHS = (800, 900, 1024, 1280, 1440, 1600, 1920)

# Children whose box leaves their parent's, or whose text does not fit their own box (a pixel of
# rounding allowed), as "parent > child: how".
OUTSIDE = """(pairs) => {
  const out = [];
  for (const [parentSel, childSel] of pairs) {
    for (const parent of document.querySelectorAll(parentSel)) {
      const p = parent.getBoundingClientRect();
      for (const child of parent.querySelectorAll(childSel)) {
        const c = child.getBoundingClientRect();
        if (c.width === 0 && c.height === 0) continue;
        // Text cut with an ellipsis (a long campaign name, its title the whole) is inside by design.
        const cut = getComputedStyle(child).textOverflow === "ellipsis";
        const overflowing = !cut && child.scrollWidth > child.clientWidth + 1;
        // A box that scrolls up and down (the waiting list) shows its rows a screen at a time.
        const scrolls = ["auto", "scroll"].includes(getComputedStyle(parent).overflowY);
        const below = !scrolls && (c.top < p.top - 1 || c.bottom > p.bottom + 1);
        if (c.left < p.left - 1 || c.right > p.right + 1 || below || overflowing) {
          out.push(`${parentSel} > ${childSel} "${child.textContent.trim().slice(0, 30)}": ` +
                   `[${Math.round(c.left)},${Math.round(c.right)}] in [${Math.round(p.left)},${Math.round(p.right)}]` +
                   (overflowing ? ` (its text needs ${child.scrollWidth}px of ${child.clientWidth})` : ""));
        }
      }
    }
  }
  return out;
}"""
SIDEWAYS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def busy_day(make, db):
    """Two campaigns with long Spanish names and big figures; customers waiting past both thresholds."""
    from webapp.models import Interaction, utcnow

    group = make.group("norte")
    make.user("sup", role="supervisor", groups=[group], name="Sofía Supervisora")
    now = utcnow()
    for name in ("Atención al cliente Montevideo", "Cobranzas y refinanciaciones del interior"):
        campaign = make.campaign(group, name=name, acd_max_waiting=2, service_level_target=95,
                                 sl_threshold_seconds=60, abandon_threshold_seconds=600)
        for n in range(12):
            at = now - timedelta(seconds=45 * n + 5)
            status = "waiting" if n < 6 else "closed"
            db.session.add(Interaction(campaign_id=campaign.id, customer_number=f"+5989812{campaign.id}{n:03d}",
                                       customer_name="Juana Rodríguez Fernández", status=status, created_at=at,
                                       queued_at=at, closed_at=None if status == "waiting" else now))
        for n in range(3):  # long waits
            at = now - timedelta(hours=2, seconds=n)
            db.session.add(Interaction(campaign_id=campaign.id, customer_number=f"+5989813{campaign.id}{n:03d}",
                                       status="waiting", created_at=at, queued_at=at))
    db.session.commit()


def test_monitor_figures_stay_inside_their_cards_at_every_width(new_page, busy_day):
    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    browser_login(page, "sup")
    page.goto("/monitor")
    settled(page)
    assert page.locator(".wrow.late").count() > 0 and page.locator(".wrow.abandoned").count() > 0
    problems = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_function(f"() => document.documentElement.clientWidth === {width}")
        found = page.evaluate(OUTSIDE, [[".cstats", ".fig"], [".fig", "span"], [".fig", "b"], [".fig", "small"],
                                        [".wall-box", ".wrow"], [".wrow", ".timer"], [".wrow", "span"]])
        sideways = page.evaluate(SIDEWAYS)
        if found or sideways > 0:
            problems[width] = found + ([f"the page scrolls sideways by {sideways}px"] if sideways > 0 else [])
    assert problems == {}, problems


def test_campaign_table_and_transcripts_fit_at_800_px(new_page, busy_day):
    page = new_page()
    page.set_viewport_size({"width": 800, "height": 900})
    browser_login(page, "sup")
    problems = {}
    for url in ("/campaigns", "/transcripts"):
        page.goto(url)
        settled(page)
        sideways = page.evaluate(SIDEWAYS)
        found = page.evaluate(OUTSIDE, [["main", "table"], ["main", "form"], ["main", "section"]])
        if found or sideways > 0:
            problems[url] = found + ([f"the page scrolls sideways by {sideways}px"] if sideways > 0 else [])
    assert problems == {}, problems
