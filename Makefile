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

test: $(STAMP) browser-deps lint
	$(MAKE) test-sqlite
	@if [ -n "$$TEST_DATABASE_URL" ]; then $(MAKE) test-postgres; \
	 else echo "TEST_DATABASE_URL not set: PostgreSQL run skipped (.ci/run sets it)"; fi

test-sqlite: $(STAMP)
	env -u TEST_DATABASE_URL $(PY) -m pytest -q

test-postgres: $(STAMP)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(PG_TEST_URL)} $(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check webapp workers tests config.py wsgi.py

bench: $(STAMP)
	$(PY) -m tests.bench

clean:
	rm -rf $(VENV) instance/*.db instance/redis.*
