# The two README commands: `make demo` and `make test`. Both work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DEMO_DB ?= sqlite:///$(CURDIR)/demo.db

.PHONY: demo test lint bench install dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

install: $(STAMP)

dev: $(DEV_STAMP)

demo: $(STAMP)
	rm -f demo.db demo.db-wal demo.db-shm
	$(BIN)/python examples/generate_events.py --catalog examples/catalog.yaml --out examples/events.jsonl \
		--month 2026-10 --with-problems
	$(BIN)/ratecard demo --examples examples --db $(DEMO_DB)
	@# the go-live toolkit on the demo: a legacy export with known differences, every cause named
	$(BIN)/python examples/make_legacy.py --db $(DEMO_DB) --out examples/legacy.csv
	$(BIN)/ratecard reconcile examples/legacy.csv --db $(DEMO_DB) --out demo-reconcile.html; test $$? -le 1

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench examples

bench: $(DEV_STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) demo.db* demo-reconcile.html examples/legacy.csv .pytest_cache .hypothesis
