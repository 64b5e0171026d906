"""Conversa: the SMS and WhatsApp module of a contact center."""
from __future__ import annotations

import logging
from typing import Any

import redis
import sqlalchemy as sa
from flask import Flask, jsonify, redirect, request, url_for
from flask_login import current_user

from .extensions import babel, csrf, db, login, migrate, sock

BLUEPRINTS = ("auth", "admin", "campaigns", "dialers", "inbox", "supervisor", "webhooks", "live", "api", "media",
              "reports")


def create_app(test_config: Any = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(test_config or "config.Config")
    if isinstance(test_config, dict):
        app.config.from_object("config.Config")
        app.config.update(test_config)
    logging.basicConfig(level=app.config.get("LOG_LEVEL", logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from . import i18n

    i18n.compile_catalogs()
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(str(p) for p in i18n.catalog_dirs()) or "translations"

    db.init_app(app)
    _sqlite_readers_never_wait(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()), render_as_batch=True, compare_type=True)
    login.init_app(app)
    login.login_view = "auth.login"
    login.login_message = None
    csrf.init_app(app)
    sock.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)

    from . import compression

    compression.init_app(app)  # first: its after_request runs after every other one
    _init_redis(app)
    from . import after_commit
    from .live import events  # noqa: F401 - registers the live events' sender

    after_commit.install()
    _register_blueprints(app)
    _register_static_versions(app)
    _register_template_helpers(app)
    _register_health(app)
    from . import metrics

    metrics.init_app(app)

    from . import cli

    cli.register(app)
    return app


def _sqlite_readers_never_wait(app: Flask) -> None:
    """A SQLite file database in WAL mode: a long write (a bulk load's one transaction, in a worker) would
    otherwise lock every page's reads out until it commits (`make run`, the tests on SQLite)."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        return

    def wal(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    with app.app_context():
        sa.event.listen(db.engine, "connect", wal)


def _migrations_dir() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def _init_redis(app: Flask) -> None:
    url = app.config["REDIS_URL"]
    # Short timeouts: when Redis is down, pages (and jobs, and the worker's clock) answer at once instead of
    # hanging. RQ's blocking dequeue has a client of its own (workers/__main__.py rq_connection).
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=1, health_check_interval=30,
                                  retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1))
    app.extensions["conversa_redis"] = client
    from . import queues

    app.extensions["conversa_queues"] = queues.build(app, client)

    from .live.hub import Hub

    def pubsub_client() -> redis.Redis:
        # No read timeout: the subscription blocks until an event comes.
        return redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=15)

    app.extensions["conversa_hub"] = Hub(pubsub_client)


def _register_blueprints(app: Flask) -> None:
    import importlib

    for name in BLUEPRINTS:
        module = importlib.import_module(f".{name}", __name__)
        app.register_blueprint(module.bp)


STATIC_MAX_AGE = 365 * 24 * 3600


def _register_static_versions(app: Flask) -> None:
    """Every static URL carries a hash of its file (`?v=`): the browser keeps it a year without asking
    again (agents on slow links load pages without a round trip per asset), and a changed file has a
    new URL. The hash is recomputed when the file's size or modification time changes."""
    import hashlib
    from pathlib import Path

    folder = Path(app.static_folder or "static").resolve()
    versions: dict[str, tuple[int, int, str]] = {}

    def version(name: str) -> str | None:
        path = (folder / name).resolve()
        try:
            stat = path.stat() if path.is_relative_to(folder) else None
        except OSError:
            stat = None
        if stat is None:
            return None
        known = versions.get(name)
        if known is None or known[:2] != (stat.st_mtime_ns, stat.st_size):
            known = versions[name] = (stat.st_mtime_ns, stat.st_size,
                                      hashlib.sha256(path.read_bytes()).hexdigest()[:12])
        return known[2]

    @app.url_defaults
    def static_version(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and "v" not in values and "filename" in values:
            current = version(values["filename"])
            if current:
                values["v"] = current

    @app.after_request
    def static_cache(response: Any) -> Any:
        """A URL with the file's current version is kept a year; any other one is revalidated (ETag)."""
        if request.endpoint == "static" and response.status_code == 200 and request.view_args and \
                request.args.get("v") == version(request.view_args.get("filename", "")):
            response.headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE}, immutable"
        return response


def _register_template_helpers(app: Flask) -> None:
    from . import templating

    templating.init_app(app)


def _register_health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> Any:
        """Database and Redis, each answered or not; 503 when either is down."""
        state: dict[str, str] = {}
        try:
            db.session.execute(sa.text("SELECT 1"))
            state["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            state["database"] = f"error: {type(exc).__name__}"
            db.session.rollback()
        try:
            app.extensions["conversa_redis"].ping()
            state["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            state["redis"] = f"error: {type(exc).__name__}"
        healthy = all(v == "ok" for v in state.values())
        return jsonify(status="ok" if healthy else "degraded", **state), 200 if healthy else 503

    @app.get("/")
    def index() -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login"))
        if current_user.is_agent:
            return redirect(url_for("inbox.index"))
        if current_user.is_supervisor:
            return redirect(url_for("supervisor.monitor"))
        return redirect(url_for("campaigns.index"))

    @app.after_request
    def security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
