"""Everything a test or benchmark needs besides fixtures, under one name: ``from tests.helpers import login, wait_until``.

- web: the test client, the `make` factory's class, signing in through the real form, CSRF tokens, running jobs
- browser: Chromium's launch options, signing in from a page, waiting for htmx to settle, htmx errors
- processes: free ports, a private redis-server, gunicorn web processes, `python -m workers` processes
- dialer: spool rows, runs of the engine, what reached a gateway fake, live events published
- waiting: `wait_until`, the one way to wait for something observable
- samples: small real media files and moto's S3 server (``from tests.helpers import samples``)
- whatsapp: a centre with one WhatsApp (or SMS) conversation on a gateway fake (``from tests.helpers.whatsapp import center``)

Fixtures live in tests/conftest.py; the gateway fakes' fixtures in tests/fakes/plugin.py.
"""
from __future__ import annotations

from tests.helpers import samples
from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, browser_login, htmx_errors, settled
from tests.helpers.dialer import (
    SENDER,
    drain_until_done,
    listen_live,
    live_events,
    numbers,
    queue,
    queue_bulk,
    rows,
    run,
    sends_per_destination,
    spool_states,
    twilio_provider,
)
from tests.helpers.processes import (
    FAST_ENGINE,
    REDIS_ERRORS,
    ROOT,
    free_port,
    kill_hard,
    process_env,
    redis_binary,
    redis_errors,
    start_redis,
    start_worker,
    stop_processes,
    stop_worker,
    stream_post,
    wait_healthy,
    web_processes,
)
from tests.helpers.waiting import wait_until
from tests.helpers.web import PASSWORD, Factory, IsolatedClient, csrf_token, login, run_jobs, run_jobs_until

__all__ = [
    "CHROMIUM", "CHROMIUM_ARGS", "FAST_ENGINE", "PASSWORD", "REDIS_ERRORS", "ROOT", "SENDER", "Factory",
    "IsolatedClient", "browser_login", "csrf_token", "drain_until_done", "free_port", "htmx_errors", "kill_hard",
    "listen_live", "live_events", "login", "numbers", "process_env", "queue", "queue_bulk", "redis_binary",
    "redis_errors", "rows", "run", "run_jobs", "run_jobs_until", "samples", "sends_per_destination", "settled", "spool_states",
    "start_redis", "start_worker", "stop_processes", "stop_worker", "stream_post", "twilio_provider",
    "wait_healthy", "wait_until", "web_processes",
]
