"""The Alembic migrations build exactly the schema the code declares, on both stores."""

from __future__ import annotations

from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from ratecard.store import open_store
from ratecard.store.catalogs import save_version
from ratecard.store.db import MIGRATIONS
from ratecard.store.partitions import is_partitioning_table
from ratecard.store.schema import metadata

from ..migrated import at_head
from .scenario import CATALOG, catalog_document


def test_migrations_match_the_declared_schema(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.connect() as connection:
        # the month partitions of events and its id table exist on PostgreSQL only (store/partitions.py)
        context = MigrationContext.configure(connection, opts={
            "compare_type": False,
            "include_name": lambda name, kind, _parent: kind != "table" or not is_partitioning_table(name)})
        differences = compare_metadata(context, metadata)
    store.dispose()
    assert differences == []


def test_opening_twice_migrates_once(db_url: str) -> None:
    open_store(db_url).dispose()
    store = open_store(db_url)
    with store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == _head()
    store.dispose()


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_the_quick_head_check_agrees_with_alembic() -> None:
    from ratecard.store.db import head_revision

    assert head_revision() == _head()


def test_drafts_are_numbered_per_environment_on_upgrade(db_url: str) -> None:
    """A database at 0010 whose invoices of two environments interleave (and whose ids have a gap, a
    removed draft) gets draft numbers 1, 2, 3... per environment in creation order; new drafts follow."""
    from alembic import command
    from sqlalchemy import text

    from ratecard.store.invoices import InvoiceRecord, get_invoice, save_drafts

    store = open_store(db_url, migrate=False)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0010")
        for n, environment in enumerate(("live", "sandbox", "live", "live", "live", "sandbox"), start=1):
            connection.execute(text(
                "INSERT INTO invoices (environment, customer, subscription, status, currency, timezone, "
                "boundary_ts, issue_date, subtotal, tax, total, tax_rate, catalog_version, created_at, updated_at) "
                "VALUES (:e, 'c', :s, 'draft', 'EUR', 'UTC', 0, '2026-01-01', 0, 0, 0, 0, 1, 0, 0)"),
                {"e": environment, "s": f"s{n}"})
        connection.execute(text("DELETE FROM invoices WHERE id = 4"))
        command.upgrade(config, "head")
    with store.engine.connect() as connection:
        numbered = connection.execute(text("SELECT id, environment, draft_number FROM invoices ORDER BY id")).all()
    assert [tuple(row) for row in numbered] == [
        (1, "live", 1), (2, "sandbox", 1), (3, "live", 2), (5, "live", 3), (6, "sandbox", 2)]
    assert get_invoice(store, "DRAFT-3", "live").id == 5
    assert get_invoice(store, "DRAFT-2", "sandbox").id == 6

    new = InvoiceRecord(id=None, number=None, customer="c", subscription="s-new", status="draft", currency="EUR",
                        timezone="UTC", boundary_ts=0, issue_date="2026-01-01", subtotal=Decimal(0),
                        tax=Decimal(0), total=Decimal(0), tax_rate=Decimal(0), catalog_version=1)
    save_drafts(store, "sandbox", [new], 0)
    save_drafts(store, "live", [new], 0)
    assert get_invoice(store, "DRAFT-3", "sandbox").subscription == "s-new"
    assert get_invoice(store, "DRAFT-4", "live").subscription == "s-new"
    store.dispose()


def _readable(index: dict) -> dict:
    """A partial index's condition as its SQL text (the inspector gives a clause object)."""
    options = {name: str(value) for name, value in index.get("dialect_options", {}).items()}
    return {**index, "dialect_options": options}


def _shape(url: str) -> dict:
    """Everything the inspector sees of a database: tables, columns, keys, indexes, constraints."""
    from sqlalchemy import inspect

    engine = create_engine(url)
    try:
        found = inspect(engine)
        shape = {}
        for table in found.get_table_names():
            shape[table] = (
                [(c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in found.get_columns(table)],
                found.get_pk_constraint(table)["constrained_columns"],
                sorted(str(sorted(fk.items())) for fk in found.get_foreign_keys(table)),
                sorted(str(sorted(_readable(index).items())) for index in found.get_indexes(table)),
                sorted(str(sorted(unique.items())) for unique in found.get_unique_constraints(table)),
                sorted(str(sorted(check.items())) for check in found.get_check_constraints(table)),
            )
        with engine.connect() as connection:
            shape["alembic_version rows"] = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        return shape
    finally:
        engine.dispose()


def test_the_tests_copy_of_a_migrated_database_is_what_migrating_builds(db_url: str, tmp_path) -> None:  # noqa: ANN001
    """tests/migrated.py gives most tests a copy of a migrated template instead of a migration of
    their own: the copy must be the same database, and it must take writes (sequences included)."""
    if db_url.startswith("sqlite"):
        migrated_url = f"sqlite:///{tmp_path / 'migrated.db'}"
    else:
        migrated_url = db_url + "_migrated"  # a schema of its own, dropped with the test's
        base, schema = migrated_url.split("?options=-csearch_path%3D")
        engine = create_engine(base, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    open_store(migrated_url).dispose()
    at_head(db_url)
    assert _shape(db_url) == _shape(migrated_url)
    copied = open_store(db_url)  # already at head: nothing to migrate
    changed = CATALOG.replace("meters:\n", "meters:\n  - {code: extra, aggregation: count}\n")
    assert save_version(copied, catalog_document(), 0) == (1, True)
    assert save_version(copied, catalog_document(changed), 1) == (2, True)
    copied.dispose()
    at_head(db_url)  # a database in use is left alone
    assert _shape(db_url) == _shape(migrated_url)


def _rows_and_sequences(url: str) -> dict:
    """Every table's row count and every sequence's position in the schema of `url`."""
    base, schema = url.split("?options=-csearch_path%3D")
    engine = create_engine(base)
    try:
        with engine.connect() as connection:
            names = connection.execute(text(
                "SELECT relname, relkind FROM pg_class WHERE relnamespace = CAST(:s AS regnamespace) "
                "AND relkind IN ('r', 'S') ORDER BY relname"), {"s": f'"{schema}"'}).all()
            found = {}
            for name, kind in names:
                query = "SELECT count(*) FROM" if kind == "r" else "SELECT last_value, is_called FROM"
                found[name] = tuple(connection.execute(text(f'{query} "{schema}"."{name}"')).one())
            return found
    finally:
        engine.dispose()


def test_a_recycled_postgresql_copy_is_a_fresh_copy_again(postgres_reason) -> None:  # noqa: ANN001
    """tests/migrated.py recycles a PostgreSQL test schema its test did not reshape: what the next
    test gets must be a fresh copy (same shape, no row and no sequence step of the last test)."""
    from ratecard.store.keys import create_key

    from ..conftest import _postgres_schema, _require_postgres
    from ..migrated import _pool

    _require_postgres(postgres_reason)
    with _postgres_schema() as fresh:
        at_head(fresh)
        base = fresh.split("?", 1)[0]
        expected_shape, expected_rows = _shape(fresh), _rows_and_sequences(fresh)
    assert expected_rows["alembic_version"] == (1,)
    with _postgres_schema() as used:
        store = open_store(at_head(used))
        pooled_before = len(_pool.get(base, []))
        assert save_version(store, catalog_document(), 0) == (1, True)
        changed = CATALOG.replace("meters:\n", "meters:\n  - {code: extra, aggregation: count}\n")
        assert save_version(store, catalog_document(changed), 1) == (2, True)
        create_key(store, "live", 0, "used")
        store.dispose()
        assert _rows_and_sequences(used) != expected_rows
    assert len(_pool.get(base, [])) == pooled_before + 1, "a schema its test did not reshape was not recycled"
    with _postgres_schema() as reused:
        at_head(reused)
        assert _shape(reused) == expected_shape
        assert _rows_and_sequences(reused) == expected_rows
        store = open_store(reused)
        assert save_version(store, catalog_document(), 0) == (1, True)  # numbering starts again
        store.dispose()
