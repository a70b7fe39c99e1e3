# Local development and CI entry points. `make run` and `make test` work on a fresh machine
# with only Python 3.11: the virtualenv and dependencies are created on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format migrate clean api-fuzz contract drills

$(STAMP): requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Serves the API and the admin with demo data on the SQLite default (DATABASE_URL overrides it),
# with a job worker beside the server on PostgreSQL (scripts/run.sh).
run: install
	BIN=$(BIN) HOST=$(HOST) PORT=$(PORT) bash scripts/run.sh

# The suite on DATABASE_URL (PostgreSQL in CI), after the hot reads', sign-in's and jobs' tests
# on SQLite, the local demo's database, where those reads take their ORM path and jobs run
# without a queue; one coverage report.
SQLITE_TESTS := tests/test_current_session.py tests/test_accounts.py tests/test_seed_demo.py \
	tests/test_jobs_on_sqlite.py
test: install
	DATABASE_URL=sqlite:///$(CURDIR)/test-artifacts/sqlite.db REQUIRE_POSTGRES= \
		$(BIN)/python -m pytest -q --cov --cov-report= $(SQLITE_TESTS)
	$(BIN)/python -m pytest --cov --cov-append --cov-report=term-missing:skip-covered

# mypy with DJANGO_DEBUG=1: the django-stubs plugin loads the settings, which want a secret
# key otherwise.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DJANGO_DEBUG=1 $(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Schemathesis against the live app (gunicorn + PostgreSQL), from its own OpenAPI schema.
api-fuzz: install
	BIN=$(BIN) bash scripts/api_fuzz.sh

# A Python client (openapi-python-client) and TypeScript types (openapi-typescript) generated
# from the live app's schema, the journey driven with the client (scripts/contract_test.sh).
contract: install
	BIN=$(BIN) bash scripts/contract_test.sh

# Stops and restarts the local PostgreSQL and gunicorn under load; see scripts/fault_drills.py.
drills: install
	$(BIN)/python scripts/fault_drills.py db-outage
	$(BIN)/python scripts/fault_drills.py restarts
	$(BIN)/python scripts/fault_drills.py redis-outage

# Romanian catalog (README, "Languages"): `make messages` extracts every marked string into
# locale/ro/LC_MESSAGES/django.po; translate the new entries there, then `make compile-messages`
# writes the .mo the app reads (committed, so a fresh machine needs no gettext to run).
# tests/test_translations.py fails on an entry left untranslated or fuzzy, or a stale .mo.
MESSAGES_ARGS := --locale ro --no-obsolete --add-location file --ignore '.venv/*' \
	--ignore 'tests/*' --ignore 'bench/*' --ignore 'scripts/*' --ignore 'staticfiles/*' \
	--ignore 'test-artifacts/*'
.PHONY: messages compile-messages
messages: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemessages $(MESSAGES_ARGS)

compile-messages: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py compilemessages --locale ro --ignore '.venv/*'

migrate: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --noinput

# GET parking_sessions/current against a bare-WSGI floor at 1M sessions (bench/README.md).
# BENCH_ARGS passes options, e.g. BENCH_ARGS="--app-ref HEAD --reuse-db".
.PHONY: bench bench-quick bench-instructions wrk valgrind
bench: install wrk
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: install wrk
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

wrk:
	@command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)

# Instructions per GET current under Valgrind, the project and BENCH_ARGS's variants side by
# side (bench/README.md), e.g. BENCH_ARGS="--variant before=<ref>".
bench-instructions: install valgrind
	$(BIN)/python -m bench.instructions $(BENCH_ARGS)

valgrind:
	@command -v valgrind >/dev/null || apt-get install -y valgrind || (apt-get update && apt-get install -y valgrind)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache staticfiles
