"""The gateway fakes as pytest fixtures, loaded for every test by `pytest_plugins` in tests/conftest.py:
a test names `fake_twilio`, `fake_dinstar`, `fake_aggregator` or `fake_whatsapp` and gets a running fake."""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .dinstar import FakeDinstar
    from .generic_http import FakeAggregator
    from .twilio import FakeTwilio
    from .whatsapp_cloud import FakeWhatsAppCloud


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
