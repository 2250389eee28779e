"""The set-based fold sums a batch two ways on SQLite: SQLite's own integers for the small integers
of a batch of at most SMALL_INTEGER_ROWS events, ratecard's exact sum for every number of a larger
one. Both give the rows the Python fold writes, digit for digit, whatever the spelling of the
numbers (test_rollups_set_based.py holds the first way; this one the second, without writing
90,000 events)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ratecard.services.rollups import check_rollups, rebuild_rollups
from ratecard.store import rollups as rollup_writes

from .scenario import NOW, workspace
from .test_rollups import CATALOG
from .test_rollups_set_based import _load
from .test_split_property import _fresh


def test_a_batch_summed_without_sqlite_integers_equals_the_python_fold(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollup_writes, "SMALL_INTEGER_ROWS", 0)  # every batch is "large"
    stored = {}
    for fold, set_based_from in (("python", 10**9), ("sql", 1)):
        monkeypatch.setattr(rollup_writes, "SET_BASED_FROM", set_based_from)
        folder = tmp_path / fold
        folder.mkdir()
        store, _ = workspace(_fresh(db_url, str(folder), fold), CATALOG)
        try:
            rebuild_rollups(store, "live", NOW)
            stored[fold] = _load(store, folder, "file")
            assert check_rollups(store, "live")["ok"]
        finally:
            store.dispose()
    assert stored["sql"] == stored["python"]
    assert any(row[1] != "None" and "." in row[1] for row in stored["sql"][0].values())
