"""The provider as the dialer engine sees it: one adapter per job with the send settings, how long one
send may take, and the providers' shared rate limits (see the package docstring)."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import current_app

from ...models import Provider
from ...providers import get_adapter
from ...providers.base import ProviderAdapter, SendResult
from ..pacing import GatewayLimit, GatewayLimits

log = logging.getLogger(__name__)


def redis() -> Any:
    return current_app.extensions["conversa_redis"]


def configured_lease() -> float:
    """Seconds a claim lasts without renewal (DIALER_LEASE_SECONDS)."""
    return float(current_app.config["DIALER_LEASE_SECONDS"])


def send_settings() -> dict[str, Any]:
    """The adapter's timeouts and retries for the dialer's sends."""
    config = current_app.config
    timeout = float(config["PROVIDER_TIMEOUT"])
    # A 429 comes straight back (retry_rate_limited=False): the engine slows every worker down at once.
    return {"timeout": timeout, "connect_timeout": min(timeout, 2.0),
            "max_attempts": int(config["DIALER_SEND_ATTEMPTS"]), "backoff": float(config["PROVIDER_BACKOFF"]),
            "max_retry_wait": float(config["DIALER_MAX_RETRY_WAIT"]), "retry_rate_limited": False}


def send_budget() -> float:
    """Longest a single send (the adapter's retries included) can take: requests + waits between them."""
    settings = send_settings()
    n = int(settings["max_attempts"])
    wait = max(settings["max_retry_wait"], settings["backoff"] * 2 ** max(0, n - 2) * 1.2)
    return n * (settings["connect_timeout"] + settings["timeout"]) + (n - 1) * wait + 1.0


def inflight_seconds() -> float:
    """The lease of an in-flight row: the window a live worker may start requests in, plus one send."""
    return configured_lease() + send_budget()


def make_adapter(provider: Provider) -> ProviderAdapter:
    """One adapter (one pooled session) for a job; the sandbox gets the app's Redis so lookup works."""
    return get_adapter(provider.to_config(), redis=redis(), **send_settings())


def can_reconcile(adapter: ProviderAdapter) -> bool:
    """Whether the adapter can look a message up (reconcile), so a group may hold more than one."""
    return type(adapter).lookup is not ProviderAdapter.lookup


def gateway_limits() -> GatewayLimits:
    """The providers' shared rate limits, with the configured backoff (DIALER_RATE_LIMIT_*)."""
    config = current_app.config
    return GatewayLimits(redis(), backoff=float(config["DIALER_RATE_LIMIT_BACKOFF"]),
                         max_backoff=float(config["DIALER_RATE_LIMIT_MAX_WAIT"]),
                         quiet=float(config["DIALER_RATE_LIMIT_QUIET"]))


def provider_limit(provider_id: int) -> GatewayLimit | None:
    """The provider's rate limit while it lasts; None when free (or Redis cannot say: a courtesy)."""
    try:
        return gateway_limits().state(provider_id)
    except Exception as exc:  # noqa: BLE001 - the dashboard still shows everything else
        log.debug("rate limit of provider %s unavailable: %s", provider_id, exc)
        return None


def provider_hold(provider_id: int) -> float:
    """Seconds before any worker may send through this provider again (its rate limit's wait)."""
    return gateway_limits().hold(provider_id)


def retry_delay(result: SendResult, attempts: int, base: float) -> float:
    """How long a message the gateway did not take waits before it may go again."""
    if result.retry_after is not None:
        return max(1.0, result.retry_after)
    return min(300.0, base * 2 ** max(0, attempts - 1))


def sit_out(seconds: float, deadline: float, stop_reason: Callable[[], str]) -> str:
    """Wait out a provider's rate limit with nothing claimed, checking for Stop every second. Returns why to
    stop ("" to go on); "rate_limited" at once when the wait outlasts the job's budget: the clock starts
    another job when the wait is over (workers/dialer.py), so no worker blocks and no lease runs out."""
    end = time.monotonic() + seconds
    if end > deadline:
        return "rate_limited"
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        reason = stop_reason()
        if reason:
            return reason
    return ""
