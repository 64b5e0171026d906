"""Fixtures: a real database (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set) and a real
Redis server private to this test session, so parallel runs never share state."""
from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import TestConfig  # noqa: E402
from tests.services import start_redis  # noqa: E402


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


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as in production: a test that holds an app
    context (for its own queries) must not share `g`, the login cache or the DB session with it."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            return super().open(*args, **kwargs)


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


# -- factories -----------------------------------------------------------------
PASSWORD = "secret-pass-1"


class Factory:
    """Builds valid objects with sensible defaults; each call commits."""

    def __init__(self, app: Any):
        self.app = app
        self.n = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    def _save(self, obj: Any) -> Any:
        from webapp.extensions import db

        db.session.add(obj)
        db.session.commit()
        return obj

    def group(self, name: str | None = None) -> Any:
        from webapp.models import SecurityGroup

        return self._save(SecurityGroup(name=name or f"group{self._next()}"))

    def user(self, username: str | None = None, role: str = "agent", groups: list[Any] | None = None,
             voice: bool = True, **kw: Any) -> Any:
        from webapp.extensions import db
        from webapp.models import User, VoiceCampaign

        user = User(username=username or f"{role}{self._next()}", role=role, password_hash="!", **kw)
        user.set_password(PASSWORD)
        db.session.add(user)  # before the groups: autoflush must not meet a user outside the session
        for group in groups or []:
            user.security_groups.append(group)
        if voice and role == "agent":
            vc = db.session.scalar(sa.select(VoiceCampaign).where(VoiceCampaign.name == "voz"))
            vc = vc or VoiceCampaign(name="voz")
            vc.members.append(user)
            db.session.add(vc)
        return self._save(user)

    def provider(self, type: str = "sandbox", name: str | None = None, credentials: dict[str, str] | None = None,
                 **kw: Any) -> Any:
        from webapp.models import Provider

        provider = Provider(name=name or f"{type}{self._next()}", type=type, options=kw.pop("options", {}), **kw)
        provider.credentials = credentials or {}
        return self._save(provider)

    def campaign(self, group: Any, provider: Any | None = None, name: str | None = None, **kw: Any) -> Any:
        from webapp.models import Campaign

        provider = provider or self.provider()
        return self._save(Campaign(name=name or f"campaign{self._next()}", security_group_id=group.id,
                                   provider_id=provider.id, did=kw.pop("did", f"+5982900{self.n:04d}"), **kw))

    def dialer(self, group: Any, provider: Any | None = None, name: str | None = None, **kw: Any) -> Any:
        from webapp.models import Dialer

        provider = provider or self.provider()
        kw.setdefault("enabled", True)
        return self._save(Dialer(name=name or f"dialer{self._next()}", security_group_id=group.id,
                                 provider_id=provider.id, **kw))

    def member(self, campaign: Any, user: Any, position: int = 0, penalty: int = 0) -> Any:
        from webapp.models import Membership

        return self._save(Membership(campaign_id=campaign.id, user_id=user.id, position=position,
                                     penalty=penalty))


@pytest.fixture
def make(ctx: Any) -> Factory:
    return Factory(ctx)


def login(client: Any, username: str, password: str = PASSWORD) -> Any:
    """Sign in through the real form (CSRF included)."""
    page = client.get("/login")
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data)
    assert token, "login form has no CSRF token"
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token.group(1).decode()})
    assert response.status_code == 302, f"sign-in as {username} failed: {response.status_code}"
    return response


def csrf_token(client: Any, path: str = "/login") -> str:
    """A valid CSRF token for this client's session, read from a page that renders one."""
    page = client.get(path)
    match = re.search(rb'name="csrf-token" content="([^"]+)"', page.data) or re.search(
        rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data)
    assert match, f"no CSRF token on {path}"
    return match.group(1).decode()


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


# -- processes, servers and browsers ------------------------------------------------
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


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]


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


def settled(page: Any) -> None:
    """htmx wires new content after its settle delay: a click before that would submit natively."""
    try:
        page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
    except Exception:
        print("DEBUG", page.evaluate("() => Array.from(document.querySelectorAll('.htmx-request, .htmx-swapping, .htmx-settling')).map(e => e.outerHTML.slice(0, 300))"))
        raise
    page.wait_for_timeout(50)


def htmx_errors(page: Any) -> list[str]:
    """The htmx errors the page logs from now on (an out-of-band target missing, a failed swap...)."""
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and "htmx" in m.text and errors.append(m.text))
    return errors


def browser_login(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def process_env(app: Any) -> dict[str, str]:
    """Environment for a worker or web process of this test session (same database and Redis)."""
    env = dict(os.environ)
    env.update(DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=app.config["REDIS_URL"],
               RQ_QUEUE=app.config["RQ_QUEUE"], SECRET_KEY=app.config["SECRET_KEY"],
               SANDBOX_CUSTOMERS="0", PYTHONPATH=str(ROOT), FLASK_APP="wsgi:app",
               PUBLIC_BASE_URL=app.config.get("PUBLIC_BASE_URL") or "", MEDIA_STORE_URL=app.config["MEDIA_STORE_URL"])
    return env


def run_jobs(app: Any) -> int:
    """Run every queued RQ job now, in this process (a real RQ worker in burst mode)."""
    from rq import SimpleWorker

    queue = app.extensions["conversa_queue"]
    before = queue.count
    SimpleWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")
    return before
