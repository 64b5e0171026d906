"""Provider fakes: real HTTP servers on loopback speaking each gateway's wire format.

Use them as context managers (``with FakeTwilio() as fake: ...``), through the
fixtures below (in a test module: ``from tests.fakes import fake_twilio  # noqa: F401``),
or as their own process: ``python -m tests.fakes.twilio --port 8901`` prints its
URL and serves until killed; ``GET /_fake/sent`` lists what it accepted and
``POST /_fake/mode`` ({"mode": "500", "n": 2}) switches failures from afar.

Submodules are imported lazily so ``python -m tests.fakes.<gateway>`` runs cleanly.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .dinstar import FakeDinstar
    from .generic_http import FakeAggregator
    from .twilio import FakeTwilio
    from .whatsapp_cloud import FakeWhatsAppCloud

_LAZY = {"FakeTwilio": "twilio", "FakeDinstar": "dinstar", "FakeAggregator": "generic_http",
         "FakeWhatsAppCloud": "whatsapp_cloud", "FakeServer": "server", "Recorded": "server", "Reply": "server"}

__all__ = [*_LAZY, "fake_aggregator", "fake_dinstar", "fake_twilio", "fake_whatsapp"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(name)


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    from .twilio import FakeTwilio
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def fake_dinstar() -> Iterator[FakeDinstar]:
    from .dinstar import FakeDinstar
    with FakeDinstar() as fake:
        yield fake


@pytest.fixture
def fake_aggregator() -> Iterator[FakeAggregator]:
    from .generic_http import FakeAggregator
    with FakeAggregator() as fake:
        yield fake


@pytest.fixture
def fake_whatsapp() -> Iterator[FakeWhatsAppCloud]:
    from .whatsapp_cloud import FakeWhatsAppCloud
    with FakeWhatsAppCloud() as fake:
        yield fake
