"""`subscriptions import` against another catalog writer: a version stored while the import reads
its file is kept, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ratecard.services import subscription_changes as changes
from ratecard.services import subscriptions as imports
from ratecard.store.catalogs import load_version

from .scenario import CATALOG, workspace

NOW = datetime(2026, 2, 10, 12, tzinfo=UTC)
EXPORT = """id,Customer ID,Customer Name,Plan,Start Date (UTC),Current Period End (UTC),Currency
sub_new,cus_new,New GmbH,pro,2026-01-01 00:00,2026-03-01 00:00,EUR
"""


def test_a_catalog_change_made_while_an_import_runs_is_not_overwritten(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = workspace(db_url, CATALOG)
    try:
        path = tmp_path / "subs.csv"
        path.write_text(EXPORT)
        planned = imports.plan_import
        calls = []

        def plan_while_another_writer_cancels(*args, **kwargs):
            result = planned(*args, **kwargs)
            if not calls:  # another process stores a version after the import read the catalog
                changes.cancel_subscription(store, NOW, reference="acme-pro", at="2026-03-01")
            calls.append(1)
            return result

        monkeypatch.setattr(imports, "plan_import", plan_while_another_writer_cancels)
        done = imports.import_subscriptions(store, path, NOW, mapping="stripe-subscriptions")

        version, document = load_version(store)
        assert done["catalog_version"] == version == 3
        by_reference = {s.reference: s for s in document.subscriptions}
        assert "sub_new" in by_reference  # the import is stored
        assert by_reference["acme-pro"].end is not None  # and so is the cancellation made meanwhile
    finally:
        store.dispose()
