# The two Quickstart commands: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: demo test lint typecheck pytest schema install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Install, migrate, load the demo data and serve on SQLite: GraphiQL at http://127.0.0.1:$(PORT)/graphql
demo: $(STAMP)
	$(BIN)/carebill migrate
	$(BIN)/carebill seed-demo
	$(BIN)/carebill serve --host 127.0.0.1 --port $(PORT)

## The whole suite: lint, types, and every test on SQLite and PostgreSQL (with Redis)
test: $(STAMP) lint typecheck
	./scripts/ensure-services.sh
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
