# Conversa: `make run` brings the whole product up; `make test` checks it. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export FLASK_APP := wsgi:app

.PHONY: run test test-sqlite test-postgres bench lint install browser-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m webapp.devstack

# Debian's Chromium for the browser tests (Playwright's own download cannot work here).
browser-deps:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

# `make test`: with PostgreSQL (TEST_DATABASE_URL, as .ci/run sets it) the quick tests and the slow tests that
# depend on the database kind (marker per_database) run on SQLite, then everything on PostgreSQL: each slow
# test that does not depend on the database runs once. Without PostgreSQL everything runs on SQLite.
# The quick loop while working: `.venv/bin/pytest -m "not slow"`.
SQLITE_WITH_POSTGRES := not slow or per_database

test: $(STAMP) browser-deps lint
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
	   $(MAKE) test-sqlite MARKS='$(SQLITE_WITH_POSTGRES)' && $(MAKE) test-postgres; \
	 else echo "TEST_DATABASE_URL not set: everything on SQLite, PostgreSQL skipped (.ci/run sets it)"; \
	   $(MAKE) test-sqlite; fi

# Every test on one database kind (MARKS="..." narrows it, as pytest -m does).
test-sqlite: $(STAMP)
	env -u TEST_DATABASE_URL $(PY) -m pytest -q $(if $(MARKS),-m "$(MARKS)")

test-postgres: $(STAMP)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(PG_TEST_URL)} $(PY) -m pytest -q $(if $(MARKS),-m "$(MARKS)")

lint: $(STAMP)
	$(VENV)/bin/ruff check webapp workers tests config.py wsgi.py

bench: $(STAMP)
	$(PY) -m tests.bench

clean:
	rm -rf $(VENV) instance/*.db instance/redis.*
