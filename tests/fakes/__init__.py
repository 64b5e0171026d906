"""Provider fakes: real HTTP servers on loopback speaking each gateway's wire format.

Use them as context managers or through the fixtures below (import the ones
a test module needs: ``from tests.fakes import fake_twilio  # noqa: F401``),
or run one as its own process: ``python -m tests.fakes.twilio --port 8901``.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from .dinstar import FakeDinstar
from .generic_http import FakeAggregator
from .server import FakeServer, Recorded, Reply
from .twilio import FakeTwilio
from .whatsapp_cloud import FakeWhatsAppCloud

__all__ = ["FakeAggregator", "FakeDinstar", "FakeServer", "FakeTwilio", "FakeWhatsAppCloud", "Recorded", "Reply",
           "fake_aggregator", "fake_dinstar", "fake_twilio", "fake_whatsapp"]


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def fake_dinstar() -> Iterator[FakeDinstar]:
    with FakeDinstar() as fake:
        yield fake


@pytest.fixture
def fake_aggregator() -> Iterator[FakeAggregator]:
    with FakeAggregator() as fake:
        yield fake


@pytest.fixture
def fake_whatsapp() -> Iterator[FakeWhatsAppCloud]:
    with FakeWhatsAppCloud() as fake:
        yield fake
