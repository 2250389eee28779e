"""A roll-up dropped by another process while this one still holds the list of ready roll-ups it
read less than a second ago (the entitlements refresh reads with `registry_age`): the usage it
answers is still the raw events' usage, never the nothing left in the dropped roll-up's rows.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from ratecard.billing.preview import usage_so_far
from ratecard.ingest.importer import import_file
from ratecard.services.rollups import rebuild_rollups
from ratecard.store import open_store
from ratecard.store import rollups as registry

from .scenario import CATALOG, EVENTS, NOW, current, workspace, write_jsonl

AT = datetime(2026, 1, 31, 12, tzinfo=UTC)


def quantities(store, catalog, age: float) -> dict[str, list[tuple[str, str]]]:
    measured = usage_so_far(store, catalog, "acme", AT, "live", age)
    return {reference: sorted((usage.meter, str(usage.quantity)) for usage in items)
            for reference, items in measured.items()}


def test_a_roll_up_dropped_elsewhere_is_read_from_the_raw_events(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", EVENTS), NOW)
    raw = quantities(store, catalog, 0.0)  # no roll-up yet: the raw events
    assert any(quantity != "0" for items in raw.values() for _, quantity in items)
    rebuild_rollups(store, "live", NOW)
    assert quantities(store, catalog, 1.0) == raw  # read from the roll-ups, the list now kept
    with store.engine.connect() as connection:
        keys = sorted(registry.ready_keys(connection, "live"))
    assert keys
    other = open_store(db_url)  # another process: its drop does not tell this one
    try:
        with other.engine.begin() as connection:
            for key in keys:
                params = {"env": "live", "key": key}
                for table in ("usage_rollups", "rollup_values"):
                    connection.execute(text(f"DELETE FROM {table} WHERE environment = :env AND meter_key = :key"),
                                       params)
                connection.execute(text("DELETE FROM rollup_meters WHERE environment = :env AND key = :key"), params)
    finally:
        other.dispose()
    assert quantities(store, catalog, 1.0) == raw
    assert quantities(store, catalog, 0.0) == raw
