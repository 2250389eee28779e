"""Numbers people see are counted per environment: sandbox's work never shifts live's, nor the reverse."""

from __future__ import annotations

from ratecard.store import open_store
from ratecard.store.catalogs import load_version, save_version
from tests.integration.scenario import CATALOG, catalog_document
from tests.migrated import at_head

CHANGED = CATALOG.replace("meters:\n", "meters:\n  - {code: extra, aggregation: count}\n")


def test_catalog_versions_count_per_environment(db_url):
    store = open_store(at_head(db_url))
    assert save_version(store, catalog_document(), 1) == (1, True)
    assert save_version(store, catalog_document(CHANGED), 2) == (2, True)

    assert save_version(store, catalog_document(), 3, environment="sandbox") == (1, True)
    assert save_version(store, catalog_document(), 4, environment="sandbox") == (1, False)
    assert save_version(store, catalog_document(CHANGED), 5, environment="sandbox") == (2, True)
    assert save_version(store, catalog_document(), 6) == (3, True)

    live, sandbox = load_version(store), load_version(store, environment="sandbox")
    assert live is not None and live[0] == 3 and sandbox is not None and sandbox[0] == 2
    first = load_version(store, environment="sandbox", version=1)
    assert first is not None and first[1] == catalog_document()


def test_the_migration_renumbers_existing_versions_per_environment(db_url):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from ratecard.store.db import MIGRATIONS

    store = open_store(db_url, migrate=False)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0008")
        # the old global numbering: live 1, sandbox 2, live 3; one sandbox invoice names version 2
        for environment in ("live", "sandbox", "live"):
            connection.execute(text("INSERT INTO catalog_versions (environment, created_at, digest, document) "
                                    "VALUES (:e, 0, 'd', '{}')"), {"e": environment})
        connection.execute(text(
            "INSERT INTO invoices (environment, customer, subscription, status, currency, timezone, boundary_ts, "
            "issue_date, subtotal, tax, total, tax_rate, catalog_version, created_at, updated_at) VALUES "
            "(:e, 'c', :s, 'draft', 'EUR', 'UTC', 0, '2026-01-01', 0, 0, 0, 0, :v, 0, 0)"),
            [{"e": "sandbox", "s": "s1", "v": 2}, {"e": "live", "s": "s2", "v": 3}])
        command.upgrade(config, "head")
    with store.engine.connect() as connection:
        versions = connection.execute(text("SELECT environment, version FROM catalog_versions ORDER BY id")).all()
        named = connection.execute(text("SELECT environment, catalog_version FROM invoices ORDER BY id")).all()
    store.dispose()
    assert [tuple(row) for row in versions] == [("live", 1), ("sandbox", 1), ("live", 2)]
    assert [tuple(row) for row in named] == [("sandbox", 1), ("live", 2)]
