"""The migrations build the schema from zero, tear it down and build it again, and match the models."""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.helpers import ROOT


@pytest.fixture
def fresh_database_url(tmp_path) -> Iterator[str]:
    """An empty database of the backend under test: a new SQLite file, or a new PostgreSQL database."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"conversa_m_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield base.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def migration_app(fresh_database_url, redis_url):
    from config import TestConfig
    from webapp import create_app

    class Cfg(TestConfig):
        SQLALCHEMY_DATABASE_URI = fresh_database_url
        REDIS_URL = redis_url

    application = create_app(Cfg)
    yield application
    with application.app_context():
        from webapp.extensions import db

        db.engine.dispose()


def _tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade_and_models_match(migration_app):
    """`flask db upgrade` from zero, `downgrade base`, upgrade again; then autogenerate finds nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import downgrade, upgrade

    from webapp.extensions import db

    with migration_app.app_context():
        assert _tables(db.engine) == set()
        upgrade()
        first = _tables(db.engine)
        assert {"users", "campaigns", "dialers", "sms_spool", "audit_log", "memberships"} <= first
        downgrade(revision="base")
        assert _tables(db.engine) == set()
        upgrade()
        assert _tables(db.engine) == first
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "include_object": _include_object(),
                "render_as_batch": True})
            diff = compare_metadata(context, db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        with db.engine.connect() as conn:
            indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("sms_spool")}
        assert "ix_sms_spool_claim" in indexes  # the hand-written expression index exists


def _include_object():
    """The same filter as migrations/env.py: its hand-written expression indexes are not compared."""
    import ast

    source = (ROOT / "migrations" / "env.py").read_text()
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "HAND_WRITTEN_INDEXES" for t in node.targets):
            names = set(ast.literal_eval(node.value))
    assert names, "migrations/env.py no longer names HAND_WRITTEN_INDEXES"

    def include_object(obj, name, type_, reflected, compare_to):
        return not (type_ == "index" and name in names)

    return include_object


def test_providers_that_do_not_sign_get_a_webhook_token(migration_app):
    """0004: a Dinstar (or other unsigned gateway) saved without a token gets one; a set token and a
    Twilio provider stay as they were."""
    from flask_migrate import upgrade

    from webapp.extensions import db

    with migration_app.app_context():
        upgrade(revision="0003_staged_uploads")
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO providers (id, name, type, channel, sender, base_url, max_per_second, enabled, options,"
                " credentials_encrypted, created_at) VALUES "
                "(1, 'gsm', 'dinstar', 'sms', 's', 'http://gw', 1, :t, '{\"country_code\": \"598\"}', '', :now),"
                "(2, 'agg', 'http', 'sms', 's', 'http://ag', 1, :t, '{\"webhook_token\": \"mine\"}', '', :now),"
                "(3, 'tw', 'twilio', 'sms', 's', '', 1, :t, '{}', '', :now)"),
                {"t": True, "now": "2026-01-01 00:00:00"})
        upgrade()
        with db.engine.connect() as conn:
            rows = dict(conn.execute(sa.text("SELECT id, options FROM providers")).all())
    options = {k: v if isinstance(v, dict) else json.loads(v) for k, v in rows.items()}
    assert options[1]["country_code"] == "598" and len(options[1]["webhook_token"]) >= 32
    assert options[2] == {"webhook_token": "mine"}
    assert options[3] == {}
