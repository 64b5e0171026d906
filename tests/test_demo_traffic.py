"""`make run`'s demo traffic (issue 12 point 7): the demo dialer sends a few messages a second, so a newcomer
sees its counters move for the first minutes; the simulated customers keep writing now and then."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from webapp.models import Campaign, Dialer, Interaction, Message, SpoolMessage, SpoolState, utcnow


def test_the_demo_dialer_sends_a_few_per_second_for_minutes(db: Any) -> None:
    from webapp.cli import seed_demo
    from webapp.services import demo

    seed_demo("demo-pass-1")
    demo.queue_demo_messages()
    dialer = db.session.scalar(sa.select(Dialer).where(Dialer.name == "demo"))
    queued = db.session.scalar(sa.select(sa.func.count(SpoolMessage.id)).where(
        SpoolMessage.dialer_id == dialer.id, SpoolMessage.state == SpoolState.TO_PROCESS))
    per_second = 1000 / dialer.interval_ms
    assert 1 <= per_second <= 4  # a few a second: each step of the counters can be followed
    assert queued / per_second >= 180  # ...for the first three minutes at least
    assert dialer.running and dialer.provider.max_per_second >= per_second  # the dialer's pace is the one


class Dice:
    """The simulator's dice, loaded: every roll writes."""

    def random(self) -> float:
        return 0.0

    def choice(self, options: Any) -> Any:
        return options[0]

    def randrange(self, start: int, stop: int) -> int:
        return start


def customer_messages(db: Any, interaction_id: int) -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Message.body).where(
        Message.interaction_id == interaction_id, Message.sender_kind == "customer").order_by(Message.id)))


@pytest.fixture
def quiet_conversation(db: Any) -> Interaction:
    """A demo customer who wrote once, a minute ago, and is still waiting."""
    from webapp.cli import seed_demo
    from webapp.services import demo

    seed_demo("demo-pass-1")
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.name == "demo"))
    assert demo.new_customer(campaign, Dice())
    interaction = db.session.scalar(sa.select(Interaction).where(Interaction.campaign_id == campaign.id))
    interaction.last_message_at = utcnow() - timedelta(seconds=60)
    db.session.commit()
    return interaction


def test_a_waiting_demo_customer_writes_again_now_and_then(db: Any, app: Any, quiet_conversation: Any) -> None:
    from webapp.services import demo

    assert demo.customers_write_again(Dice()) == 1
    db.session.commit()
    assert customer_messages(db, quiet_conversation.id) == [demo.GREETINGS[0], demo.FOLLOW_UPS[0]]
    # it just wrote: the conversation is not quiet any more, so the next pass leaves it alone
    assert demo.customers_write_again(Dice()) == 0
    later = utcnow() + timedelta(seconds=demo.FOLLOW_UP_QUIET + 1)
    assert demo.customers_write_again(Dice(), now=later) == 1  # ...and it writes again later on
    db.session.commit()
    assert len(customer_messages(db, quiet_conversation.id)) == 3


def test_the_workers_customer_pass_brings_the_follow_ups(db: Any, app: Any, quiet_conversation: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp.services import demo
    from workers import inbound

    monkeypatch.setitem(app.config, "SANDBOX_CUSTOMERS", True)
    monkeypatch.setattr(inbound, "_rng", Dice())
    inbound.sandbox_customers()
    assert demo.FOLLOW_UPS[0] in customer_messages(db, quiet_conversation.id)


def test_no_follow_ups_in_closed_conversations(db: Any, quiet_conversation: Any) -> None:
    from webapp.services import demo

    quiet_conversation.status = "closed"
    db.session.commit()
    assert demo.customers_write_again(Dice()) == 0


def test_a_demo_customer_answers_an_agent_in_the_same_conversation(db: Any, quiet_conversation: Any) -> None:
    from webapp.services import demo

    class Answers(Dice):
        def random(self) -> float:
            return 0.9  # past the silent and the opt-out rolls

    assert demo.customer_answers(quiet_conversation.id, "Gracias por esperar", Answers())
    db.session.commit()
    assert len(customer_messages(db, quiet_conversation.id)) == 2
