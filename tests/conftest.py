"""Fixtures: a real database (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set) and a real
Redis server private to this test session, so parallel runs never share state; the app, its clients, the
`make` factory, the app over HTTP and Chromium. The gateway fakes' fixtures come from tests/fakes/plugin.py;
helpers (no fixtures) from tests.helpers."""
from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import TestConfig  # noqa: E402
from tests.helpers import CHROMIUM, CHROMIUM_ARGS, Factory, IsolatedClient, start_redis  # noqa: E402

pytest_plugins = ["tests.fakes.plugin"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that drives Chromium is `browser` and `slow` even if its module forgot to say so, so
    `pytest -m "not slow"` never starts a browser."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            for mark in ("browser", "slow"):
                if item.get_closest_marker(mark) is None:
                    item.add_marker(mark)


# -- services ----------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(10)


def _pg_database(base_url: str) -> tuple[str, str]:
    name = f"conversa_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    return name, url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'conversa.db'}"
        return
    # One database per session, so parallel runs never step on each other.
    name, url = _pg_database(base)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def app(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from flask_migrate import upgrade

    from webapp import create_app

    class Cfg(TestConfig):
        SQLALCHEMY_DATABASE_URI = database_url
        REDIS_URL = redis_url
        MEDIA_STORE_URL = str(tmp_path_factory.mktemp("media"))  # never the checkout's instance/

    application = create_app(Cfg)
    application.test_client_class = IsolatedClient
    with application.app_context():
        upgrade()  # the schema comes from the migrations, as in production
    yield application
    with application.app_context():
        from webapp.extensions import db

        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with empty tables and an empty Redis."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        from webapp.extensions import db

        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                                     + " RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(sa.text(f'DELETE FROM "{table}"'))
        application.extensions["conversa_redis"].flushdb()


@pytest.fixture
def ctx(app: Any) -> Iterator[Any]:
    with app.app_context():
        yield app


@pytest.fixture
def db(ctx: Any) -> Any:
    from webapp.extensions import db as database

    return database


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def make(ctx: Any) -> Factory:
    return Factory(ctx)


@pytest.fixture
def ping_renderer() -> Iterator[Any]:
    """A renderer of our own for a test-only kind on `user:<id>` ("test.ping", data n), through the
    real registry: '<div id="ping" hx-swap-oob="true">{n} for {username}</div>'."""
    from webapp.live import registry

    @registry.renderer("user", "test.ping")
    def render(event: dict[str, Any], user: Any) -> str:
        return f'<div id="ping" hx-swap-oob="true">{event["data"]["n"]} for {user.username}</div>'

    yield render
    registry.RENDERERS.pop(("user", "test.ping"), None)


# -- servers and browsers ------------------------------------------------
@pytest.fixture(scope="session")
def live_server(app: Any) -> Iterator[str]:
    """The app served over real HTTP (threads, websockets) on loopback; yields its base URL."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (its own browser download cannot work here)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser-deps` installs Debian's chromium")
    with playwright_api.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def new_page(browser: Any, live_server: str) -> Iterator[Any]:
    """Factory of pages, each in its own browser context (its own cookies): new_page() -> page."""
    contexts = []

    def make_page(locale: str = "es-UY") -> Any:
        context = browser.new_context(base_url=live_server, locale=locale)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make_page
    for context in contexts:
        context.close()
