"""tests/migrated.py hands a PostgreSQL test schema that its test left in shape to the next test
(its rows emptied, the migrations' rows and every sequence set back): nothing one test wrote may
reach the next. Each case does what a test could do to its schema, ends it as the db_url fixture
does, and looks at what the next `at_head` gives: exactly what Alembic builds in an empty schema
(shape, every table's rows, every sequence's position), whether the schema came back from the pool
(the same PostgreSQL namespace under a new name) or, reshaped, was dropped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from ratecard.billing.run import generate_invoices
from ratecard.ingest.importer import import_file
from ratecard.store import open_store
from ratecard.store.keys import create_key
from ratecard.store.partitions import Month, create_month

from .. import migrated
from ..conftest import _postgres_schema, _require_postgres
from .scenario import EVENTS, NOW, current, workspace, write_jsonl


def _split(url: str) -> tuple[str, str]:
    base, _, schema = url.partition("?options=-csearch_path%3D")
    return base, schema


def _contents(url: str) -> dict:
    """The shape of the schema at `url` (its name written @), every table's rows and every
    sequence's position, and the namespace's oid (which a rename keeps)."""
    base, schema = _split(url)
    engine = create_engine(base)
    try:
        with engine.connect() as connection:
            found = {"shape": migrated.at_head_schema_shape(connection, schema)}
            names = connection.execute(text(
                "SELECT relname, relkind FROM pg_class WHERE relnamespace = CAST(:s AS regnamespace) "
                "AND relkind IN ('r', 'S') ORDER BY relname"), {"s": f'"{schema}"'}).all()
            for name, kind in names:
                query = (f'SELECT string_agg(t::text, E\'\\n\' ORDER BY t::text) FROM "{schema}"."{name}" AS t'
                         if kind == "r" else f'SELECT last_value, is_called FROM "{schema}"."{name}"')
                found[name] = tuple(connection.execute(text(query)).one())
            oid = connection.execute(text("SELECT CAST(:s AS regnamespace)::oid"), {"s": f'"{schema}"'}).scalar()
            return {"namespace": oid, "contents": found}
    finally:
        engine.dispose()


def _billed(url: str, folder: Path) -> None:
    """Rows in most tables, sequences moved: a catalog, events, invoices, API keys."""
    store, _ = workspace(url)
    _, catalog = current(store)
    assert import_file(store, catalog, write_jsonl(folder / "e.jsonl", EVENTS), NOW).stored == 6
    version, catalog = current(store)
    assert generate_invoices(store, catalog, version, NOW.date(), NOW).created > 0
    create_key(store, "live", 0, "used")
    store.dispose()


def _sql(*statements: str) -> Callable[[str, Path], None]:
    def run(url: str, folder: Path) -> None:
        _billed(url, folder)
        base, schema = _split(url)
        engine = create_engine(base)
        try:
            with engine.begin() as connection:
                connection.execute(text(f'SET LOCAL search_path = "{schema}"'))
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            engine.dispose()
    return run


def _partition_made_by_the_store(url: str, folder: Path) -> None:
    _billed(url, folder)
    store = open_store(url)
    assert create_month(store, Month(2026, 1)) is not None  # the events of January move into it
    store.dispose()


# (what the test does, whether its schema can still be handed on)
CASES = {
    "rows and sequences": (_billed, True),
    "the migrations' own rows changed": (_sql("UPDATE alembic_version SET version_num = 'x'"), True),
    "rows emptied by a truncate of its own": (_sql("TRUNCATE invoice_lines CASCADE"), True),
    "a partition made by a command": (_partition_made_by_the_store, False),
    "a function of its own": (_sql("CREATE FUNCTION leftover() RETURNS int LANGUAGE sql AS 'SELECT 1'"), False),
    "a column default changed": (_sql("ALTER TABLE invoices ALTER COLUMN status SET DEFAULT 'x'"), False),
}


@pytest.fixture(scope="module")
def migrated_by_alembic(postgres_reason: str | None) -> dict:
    """What a fresh schema is: an empty one that Alembic migrated, never a copy."""
    _require_postgres(postgres_reason)
    with _postgres_schema() as url:
        open_store(url).dispose()
        return _contents(url)["contents"]


@pytest.mark.parametrize("case", CASES)
def test_nothing_a_test_wrote_reaches_the_next_test(case: str, migrated_by_alembic: dict, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    write, recyclable = CASES[case]
    with _postgres_schema() as used:
        base, _ = _split(used)
        monkeypatch.setattr(migrated, "POOL_SIZE", len(migrated._pool.get(base, [])) + 1)  # room for this one
        migrated.at_head(used)
        assert _contents(used)["contents"] == migrated_by_alembic
        write(used, tmp_path)
        after_test = _contents(used)
        assert after_test["contents"] != migrated_by_alembic
    with _postgres_schema() as following:
        migrated.at_head(following)
        handed_on = _contents(following)
    assert (handed_on["namespace"] == after_test["namespace"]) == recyclable, "recycled or not, against the case"
    assert handed_on["contents"] == migrated_by_alembic


def test_a_write_left_behind_by_a_test_never_reaches_the_next_test(migrated_by_alembic: dict, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A store its test left open writes once more while the schema is being reset (its ingestion
    figures, flushed by a timer): between the look at which tables hold rows and the reset. The
    write is kept out until the reset has committed (here it gives up first), when no schema has
    that name any more; the next test starts from exactly what Alembic builds."""
    late: list[str] = []

    def held_and_written_then_a_late_write(connection, template, schema, seeded_too):
        found = held_and_written(connection, template, schema, seeded_too)
        writer = create_engine(base, isolation_level="AUTOCOMMIT")
        try:
            with writer.connect() as other:
                other.execute(text("SET lock_timeout = '300ms'"))
                other.execute(text(f'INSERT INTO "{schema}".ingestion_counters (environment, minute, metric, '
                                   "reason, count) VALUES ('live', 0, 'accepted', '', 8)"))
            late.append("written")
        except DBAPIError:
            late.append("kept out")
        finally:
            writer.dispose()
        return found

    held_and_written = migrated._held_and_written
    with _postgres_schema() as used:
        base, _ = _split(used)
        monkeypatch.setattr(migrated, "POOL_SIZE", len(migrated._pool.get(base, [])) + 1)  # room for this one
        monkeypatch.setattr(migrated, "_held_and_written", held_and_written_then_a_late_write)
        migrated.at_head(used)
        _billed(used, tmp_path)
    monkeypatch.setattr(migrated, "_held_and_written", held_and_written)
    assert late == ["kept out"]
    with _postgres_schema() as following:
        migrated.at_head(following)
        handed_on = _contents(following)
    assert handed_on["contents"] == migrated_by_alembic
