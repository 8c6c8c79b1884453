# The two commands a newcomer needs: `make run` and `make test`. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## Set up, migrate, load the criteria and the demo, then serve on http://$(HOST):$(PORT)/docs
run: install
	$(BIN)/cdht migrate
	$(BIN)/cdht seed
	$(BIN)/cdht demo
	$(BIN)/cdht serve --host $(HOST) --port $(PORT)

## Set up and run the suite (SQLite by default; CDHT_TEST_DATABASE_URL=postgresql://... for PostgreSQL)
test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
