"""Shared fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL tests get a schema of their own (search_path in the URL) that is dropped after
the test. Without a reachable server they are skipped, unless RATECARD_REQUIRE_POSTGRES=1
(as in CI), where a missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from .click_tree import build_once
from .migrated import release, server
from .stripe_standin import WEBHOOK_SECRET, StripeStandIn

POSTGRES_URL = os.environ.get("RATECARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("RATECARD_REQUIRE_POSTGRES") == "1"

build_once()  # the CLI's Click command tree once per test process, as a `ratecard` process does

# tmp_path's root when the caller chose none: memory, when it has room for a whole run (the tests
# write some 0.5 GB, and pytest keeps the last three runs); else the system's temporary folder
MEMORY_FOLDER = Path("/dev/shm")
MEMORY_FOLDER_ROOM = 4 << 30


def pytest_configure(config: pytest.Config) -> None:
    """Each test's folder (tmp_path: its SQLite databases, event files, the README tour's copy of
    the project) in memory, on /dev/shm, unless --basetemp or PYTEST_DEBUG_TEMPROOT says where.
    SQLite syncs its log to disk at every commit (synchronous=FULL, store/db.py), and on a shared
    disk the SQLite tests waited for those syncs about as long as they computed: 97.6 -> 58.9 s
    for 169 of them, serially, at the same CPU time. What a test sees of a database is the same
    in memory (the kill tests kill ratecard's processes, never the machine). The xdist workers
    get their folders from the controlling process, which decides here."""
    if config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT") or hasattr(config, "workerinput"):
        return
    try:
        room = shutil.disk_usage(MEMORY_FOLDER).free
    except OSError:
        return
    if room >= MEMORY_FOLDER_ROOM and os.access(MEMORY_FOLDER, os.W_OK | os.X_OK):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(MEMORY_FOLDER)


def _postgres_available() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return str(exc).splitlines()[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With several xdist workers (`make test`), the tests marked slow (tens of seconds each) start
    first, dealt out in turn to the head of each worker's share (--dist worksteal gives worker i
    the i-th of n equal runs of the collection at the start, and takes stolen tests off the end of
    a queue): a worker then ends on short tests, never on a long one while the other sits idle.
    Every worker orders the same collection the same way, as xdist requires."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    if workers < 2:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    rest = [item for item in items if not item.get_closest_marker("slow")]
    ordered: list[pytest.Item] = []
    for worker in range(workers):
        share = (len(items) - len(ordered)) // (workers - worker)  # as worksteal counts it
        heads = slow[worker::workers]
        taken = max(0, share - len(heads))
        ordered += heads + rest[:taken]
        rest = rest[taken:]
    items[:] = ordered + rest


@pytest.fixture(scope="session")
def postgres_reason() -> str | None:
    return _postgres_available()


def _require_postgres(reason: str | None) -> None:
    """Skip without a PostgreSQL server; fail instead where CI requires one."""
    if reason is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (RATECARD_REQUIRE_POSTGRES=1) but unreachable: {reason}")
        pytest.skip(f"PostgreSQL unreachable: {reason}")


@contextmanager
def _postgres_schema() -> Iterator[str]:
    """A URL on a new, empty PostgreSQL schema, dropped afterwards with every schema a test derived
    from its name (schema_a…); a copy at head that its test did not reshape goes back to
    tests/migrated.py's pool instead, its rows reset."""
    schema = f"rc_{uuid.uuid4().hex[:12]}"
    engine = server(POSTGRES_URL)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        _figures_written()
        with engine.connect() as connection:
            names = connection.execute(
                text("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, :prefix)"), {"prefix": schema},
            ).scalars().all()
        for name in names:  # a copy at head whose shape the test left alone is recycled, not dropped
            release(engine, POSTGRES_URL.split("?", 1)[0], name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_reason: str | None) -> Iterator[str]:
    """A fresh, empty database URL on each store."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ratecard.db'}"
        _figures_written()
        return
    _require_postgres(postgres_reason)
    with _postgres_schema() as url:
        yield url


def _figures_written() -> None:
    """The ingestion figures a test's stores still hold in memory, written before its database goes:
    a store the test left open would otherwise have them written by the flush timer a second later,
    into a schema dropped or handed to the next test (whose figures they would join), or as a
    warning in whatever the next test reads from stderr."""
    from ratecard.ingest.figures import flush

    flush()


@pytest.fixture
def store_urls(tmp_path: Path, postgres_reason: str | None) -> Iterator[dict[str, str]]:
    """A fresh, empty database URL on each store, both in one test (tests that compare the two):
    {"sqlite": url, "postgresql": url}."""
    _require_postgres(postgres_reason)
    with _postgres_schema() as url:
        yield {"sqlite": f"sqlite:///{tmp_path / 'ratecard.db'}", "postgresql": url}


@pytest.fixture
def stripe_standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeStandIn]:
    """A local stand-in for Stripe's API (tests/stripe_standin.py), with the Stripe customer cus_acme
    whose default payment method is pm_card_visa; the environment points ratecard at it."""
    standin = StripeStandIn().start()
    standin.customers["cus_acme"] = "pm_card_visa"
    monkeypatch.setenv("RATECARD_STRIPE_API_KEY", "sk_test_standin")
    monkeypatch.setenv("RATECARD_STRIPE_API_BASE", standin.url)
    monkeypatch.setenv("RATECARD_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    yield standin
    standin.stop()
