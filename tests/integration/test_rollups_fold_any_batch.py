"""The set-based fold sums a batch two ways on SQLite: SQLite's own integers for the small integers
of a batch of at most SMALL_INTEGER_ROWS events, ratecard's exact sum for every number of a larger
one. Both give the rows the Python fold writes, digit for digit, whatever the spelling of the
numbers (test_rollups_set_based.py holds the first way; this one the second, without writing
90,000 events)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ratecard.ingest.importer import import_file
from ratecard.store import Store
from ratecard.store import rollups as rollup_writes

from .scenario import NOW, current
from .test_rollups_set_based import _lines, _load, _stored, folded_both_ways


def test_a_batch_summed_without_sqlite_integers_equals_the_python_fold(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollup_writes, "SMALL_INTEGER_ROWS", 0)  # every batch is "large"
    stored = folded_both_ways(db_url, tmp_path, monkeypatch, lambda store, folder: _load(store, folder, "file"))
    assert stored["sql"] == stored["python"]
    assert any(row[1] != "None" and "." in row[1] for row in stored["sql"][0].values())


# integers only, so that an hour's totals are integer text on both sides of a merge: acme's (the
# even lines) short enough for SQLite to add itself, globex's past 15 characters and 64 bits
INTEGERS = ["1", "7", "-3", "12345", "42", "999999999999999", "0", "-99999999999999", "-0", "99999999999999999999"]


def _integer_lines(prefix: str, count: int) -> list[str]:
    return [f'{{"id":"{prefix}{index}","customer":"{("acme", "globex")[index % 2]}","meter":"s",'
            f'"timestamp":"2026-03-01T{index % 3:02d}:{index % 60:02d}:00Z",'
            f'"properties":{{"v":{INTEGERS[index % len(INTEGERS)]},"u":"a"}}}}' for index in range(count)]


def test_new_events_folded_into_the_hours_rows_already_there_equal_the_python_fold(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of new events only, each into the hours the batches before filled: the fold adds to
    the rows there (integers beside integers, decimals beside integers), digit for digit as the
    Python fold does."""
    def batch_after_batch(store: Store, folder: Path) -> list[dict]:
        _, catalog = current(store)
        after = []
        batches = [_integer_lines("i", 300), _integer_lines("j", 300), _lines("k", 300), _integer_lines("l", 77)]
        for number, lines in enumerate(batches):
            path = folder / f"{number}.jsonl"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            import_file(store, catalog, path, NOW)
            after.append(_stored(store))
        return after

    stored = folded_both_ways(db_url, tmp_path, monkeypatch, batch_after_batch)
    assert stored["sql"] == stored["python"]
    totals = {row[1] for row in stored["sql"][1].values()}
    assert any(len(total) > 15 and "." not in total for total in totals)  # past SQLite's own addition
    assert any(len(total) <= 15 and total.lstrip("-").isdigit() and total != "0" for total in totals)
