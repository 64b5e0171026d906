"""Issue 12.2: the abandon threshold counts, it never closes; the optional rule that closes long waits;
a WhatsApp customer whose 24 h window closed is shown as such."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers import login
from webapp.models import Interaction, InteractionStatus, Message, SenderKind
from webapp.services import interactions, stats
from webapp.services import time as clock
from workers.periodic import TASKS

NOW = datetime(2025, 3, 4, 15, 0)


@pytest.fixture
def world(make: Any, db: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    group = make.group()
    campaign = make.campaign(group, did="+59829001000", strategy="ringall", abandon_threshold_seconds=600)
    supervisor = make.user("sup", role="supervisor", groups=[group])
    return {"group": group, "campaign": campaign, "supervisor": supervisor}


def waiting(db: Any, campaign: Any, number: str, age: timedelta, **kw: Any) -> Interaction:
    at = NOW - age
    interaction = Interaction(campaign_id=campaign.id, customer_number=number, created_at=at, queued_at=at,
                              last_message_at=at, last_customer_message_at=at, **kw)
    db.session.add(interaction)
    db.session.commit()
    return interaction


def run_housekeeping() -> None:
    """Every periodic task of the inbound worker module that needs no gateway (what the clock runs)."""
    for name, task in TASKS.items():
        if task.fn.__module__ == "workers.inbound" and name != "dinstar-poll":
            task.fn()


def test_past_the_threshold_a_customer_counts_as_abandoned_and_stays_waiting(world: dict[str, Any], db: Any,
                                                                              client: Any) -> None:
    campaign = world["campaign"]
    old = waiting(db, campaign, "+59899000001", timedelta(seconds=601))
    fresh = waiting(db, campaign, "+59899000002", timedelta(seconds=300))
    run_housekeeping()
    db.session.expire_all()
    assert (old.status, old.closed_at) == (InteractionStatus.WAITING, None)
    assert fresh.status == InteractionStatus.WAITING
    [figures] = stats.campaign_stats([campaign.id], now=NOW)
    assert (figures.waiting, figures.abandoned) == (2, 1)
    rows = {r.id: r for r in stats.waiting_rows([campaign.id])}
    assert rows[old.id].abandoned and not rows[fresh.id].abandoned
    login(client, "sup")
    html = client.get("/monitor/waiting").get_data(as_text=True)
    assert f'id="waiting-{old.id}" class="wrow late abandoned"' in html  # past the service level too
    assert f'id="waiting-{fresh.id}" class="wrow late"' in html


def test_waiting_rows_past_the_service_level_threshold_are_highlighted(world: dict[str, Any], db: Any,
                                                                      client: Any) -> None:
    """Issue 12.5: only the abandon threshold marked a row; the service-level one marks it first."""
    campaign = world["campaign"]
    campaign.sl_threshold_seconds = 120
    db.session.commit()
    rows = {age: waiting(db, campaign, f"+5989900000{n}", timedelta(seconds=age))
            for n, age in enumerate((30, 200, 700))}
    login(client, "sup")
    html = client.get("/monitor/waiting").get_data(as_text=True)
    for age, classes in ((30, "wrow"), (200, "wrow late"), (700, "wrow late abandoned")):
        assert f'id="waiting-{rows[age].id}" class="{classes}"' in html, age
    # The page flips a row live when its threshold passes (app.js): each row carries the moment.
    fresh = rows[30]
    assert f'data-late-at="{clock.epoch(fresh.created_at + timedelta(seconds=120))}"' in html


def test_the_rule_is_off_by_default_and_closes_after_n_hours_with_a_message(world: dict[str, Any],
                                                                            db: Any) -> None:
    campaign = world["campaign"]
    long_wait = waiting(db, campaign, "+59899000001", timedelta(hours=5))
    assert interactions.close_long_waiting(NOW) == 0
    campaign.auto_close_hours = 4
    campaign.auto_close_message = "Cerramos por demora, escribinos de nuevo."
    short_wait = waiting(db, campaign, "+59899000002", timedelta(hours=3))
    # Queued long ago but the customer wrote again an hour ago: the wait counts from the last message.
    wrote_again = waiting(db, campaign, "+59899000003", timedelta(hours=6))
    wrote_again.last_message_at = NOW - timedelta(hours=1)
    db.session.commit()
    assert interactions.close_long_waiting(NOW) == 1
    db.session.commit()
    db.session.expire_all()
    assert (long_wait.status, long_wait.disposition) == (InteractionStatus.CLOSED, interactions.AUTO_CLOSED)
    assert short_wait.status == wrote_again.status == InteractionStatus.WAITING
    [bot] = db.session.scalars(sa.select(Message).where(Message.interaction_id == long_wait.id,
                                                        Message.sender_kind == SenderKind.BOT)).all()
    assert bot.body == "Cerramos por demora, escribinos de nuevo."


def test_a_whatsapp_customer_whose_window_closed_is_shown_as_such(world: dict[str, Any], db: Any, make: Any,
                                                                   client: Any) -> None:
    campaign = world["campaign"]
    late = waiting(db, campaign, "+59899000001", timedelta(hours=25), channel="whatsapp")
    recent = waiting(db, campaign, "+59899000002", timedelta(hours=2), channel="whatsapp")
    rows = {r.id: r for r in stats.waiting_rows([campaign.id])}
    assert rows[late.id].window_closed and not rows[recent.id].window_closed
    login(client, "sup")
    html = client.get("/monitor/waiting").get_data(as_text=True)
    assert html.count("window-closed") == 1
