"""The Alembic migrations build exactly the schema the code declares, on both stores."""

from __future__ import annotations

from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ratecard.store import open_store
from ratecard.store.db import MIGRATIONS
from ratecard.store.schema import metadata


def test_migrations_match_the_declared_schema(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
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
