# The two README commands: `make demo` and `make test`. Both work from a fresh clone.
# Every library comes from uv.lock (exact versions and hashes): a fresh clone installs what the
# last green CI run installed. `make upgrade` is the only thing that moves the lock.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DEMO_DB ?= sqlite:///$(CURDIR)/demo.db
# the demo's clock, pinned like the README tour's (2026-12-02T09:00:00Z) and before it: events the
# demo stores were received before the tour computes and finalizes invoices, on any day it is run
DEMO_NOW ?= 2026-12-01T12:00:00Z
# the suite on every core (the tests are independent: a temporary folder and a PostgreSQL schema each)
PYTEST_WORKERS ?= auto

.PHONY: demo test lint bench install dev upgrade clean

# the virtual environment holds uv itself; uv then installs exactly what the lock says into it
$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)

# --inexact: keep uv (and the dev tools, once installed) when syncing the runtime set
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --inexact --quiet
	touch $@

$(DEV_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --inexact --extra dev --quiet
	touch $@ $(STAMP)

install: $(STAMP)

dev: $(DEV_STAMP)

# Refresh the lock on purpose (newest versions the ranges in pyproject.toml allow), then install it.
upgrade: | $(UV)
	$(UV) lock --upgrade
	$(UV) sync --locked --inexact --extra dev
	touch $(DEV_STAMP) $(STAMP)

demo: $(STAMP)
	rm -f demo.db demo.db-wal demo.db-shm
	$(BIN)/python examples/generate_events.py --catalog examples/catalog.yaml --out examples/events.jsonl \
		--month 2026-10 --with-problems
	RATECARD_NOW=$(DEMO_NOW) $(BIN)/ratecard demo --examples examples --db $(DEMO_DB)
	@# the go-live toolkit on the demo: a legacy export with known differences, every cause named
	$(BIN)/python examples/make_legacy.py --db $(DEMO_DB) --out examples/legacy.csv
	RATECARD_NOW=$(DEMO_NOW) $(BIN)/ratecard reconcile examples/legacy.csv --db $(DEMO_DB) --out demo-reconcile.html; \
		test $$? -le 1
	@# last: how to look at all this in the console (the demo user was made by `ratecard demo`)
	@echo
	@echo 'Open the console on the demo data:'
	@echo '  $(BIN)/ratecard serve --db $(DEMO_DB)'
	@echo '  then http://127.0.0.1:8000/console/ and sign in as demo@example.com, password demo-only-local-password'
	@echo '  (a fixed demo password, fine only because demo.db stays on this machine; set your own with'
	@echo '  $(BIN)/ratecard users reset demo@example.com --db $(DEMO_DB))'

# Bytecode is cached even where the environment says PYTHONDONTWRITEBYTECODE: the suite starts a
# few hundred Python processes (workers, `ratecard` in the README tour, servers), and without the
# cache each one compiles SQLAlchemy, pydantic, Typer… from source again (measured: a `ratecard`
# command 1.8 -> 0.8 s of CPU). __pycache__ folders are ignored by git.
# --dist worksteal: a worker that runs out of tests takes half of the other's remaining queue, so
# a long test (the README tour, the fuzzers, the million-row import) never leaves one core idle
# at the end while the other still has a queue behind it.
test: $(DEV_STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal --durations=25

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/lint-imports

bench: $(DEV_STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) demo.db* demo-reconcile.html examples/legacy.csv .pytest_cache .hypothesis \
		drafts.csv rejected.jsonl report.html report.json run.json
