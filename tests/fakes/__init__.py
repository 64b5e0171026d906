"""Provider fakes: real HTTP servers on loopback speaking each gateway's wire format.

Use them as context managers (``with FakeTwilio() as fake: ...``), as fixtures (``fake_twilio``,
``fake_dinstar``, ``fake_aggregator``, ``fake_whatsapp``, from tests.fakes.plugin, which tests/conftest.py
loads for every test), or as their own process: ``python -m tests.fakes.twilio --port 8901`` prints its
URL and serves until killed; ``GET /_fake/sent`` lists what it accepted and
``POST /_fake/mode`` ({"mode": "500", "n": 2}) switches failures from afar.

Submodules are imported lazily so ``python -m tests.fakes.<gateway>`` runs cleanly.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"FakeTwilio": "twilio", "FakeDinstar": "dinstar", "FakeAggregator": "generic_http",
         "FakeWhatsAppCloud": "whatsapp_cloud", "FakeServer": "server", "Recorded": "server", "Reply": "server"}

__all__ = [*_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(name)
