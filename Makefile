# The two commands a newcomer needs: `make run` and `make test`. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format install clean i18n dashboard

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

## Set up and run the suite (SQLite by default; CDHT_TEST_DATABASE_URL=postgresql://... for PostgreSQL),
## one worker per core, each with a database of its own; PYTEST_ARGS="-n 0" runs it in one process
TEST_WORKERS ?= auto
# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set: without the cache each worker compiles every
# module again, and pytest rewrites the asserts of its plugins' packages at each import (~15 s a worker).
test: install
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Refresh the message catalogue: the msgids of the code into app/locale/cdht.pot, merged into the
## Vietnamese app/locale/vi/LC_MESSAGES/cdht.po (new ones arrive empty: translate them; tests/api/test_i18n.py
## fails while one is missing)
i18n: install
	$(BIN)/pybabel extract -F babel.cfg --project=cdht --add-location=file --sort-by-file --no-wrap \
		-o app/locale/cdht.pot app
	$(BIN)/pybabel update -D cdht -i app/locale/cdht.pot -d app/locale -l vi --no-wrap \
		--no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date

## Rebuild the web dashboard (frontend/ → app/dashboard/static/, committed) from the lockfile; needs Node.js
dashboard:
	cd frontend && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
