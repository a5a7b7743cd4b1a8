# The two Quickstart commands: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PORT ?= 8000
# `make demo` reads ./.env when there is one (copy .env.example); the environment wins.
WITH_ENV := set -a; [ ! -f .env ] || . ./.env; set +a;

.PHONY: demo reset-demo test lint typecheck pytest schema install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Install, migrate, load the demo data and serve on SQLite: GraphiQL at http://127.0.0.1:$(PORT)/graphql
demo: $(STAMP)
	$(WITH_ENV) $(BIN)/carebill migrate && $(BIN)/carebill seed-demo && \
	  $(BIN)/carebill serve --host 127.0.0.1 --port $(PORT)

## Start the demo over: delete the embedded SQLite database, then migrate and seed it again
reset-demo: $(STAMP)
	rm -f carebill.db carebill.db-wal carebill.db-shm
	$(WITH_ENV) $(BIN)/carebill migrate && $(BIN)/carebill seed-demo

## The whole suite: lint, types, and every test on SQLite and PostgreSQL (with Redis)
test: $(STAMP) lint typecheck
	./scripts/ensure-services.sh
	./scripts/ensure-js.sh
	$(BIN)/pytest -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy .

## Regenerate schema.graphql after changing the API
schema: $(STAMP)
	$(BIN)/carebill export-schema > schema.graphql

clean:
	rm -rf $(VENV) build carebill.egg-info carebill.db carebill.db-wal carebill.db-shm
