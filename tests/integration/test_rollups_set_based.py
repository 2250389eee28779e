"""The roll-ups a batch folds in SQL (one INSERT … SELECT … GROUP BY per batch: counts, sums and
averages without filters) hold exactly the rows the Python fold writes, number for number and
digit for digit (1.50 stays 1.50, 1e2 is 100, -0.0 is 0.0), on both stores, whichever way the
batch arrives: a file import, or rows inserted in one transaction (the group commit's path)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ratecard.ingest.importer import import_file
from ratecard.ingest.validate import EventValidator
from ratecard.services.events import decode_event
from ratecard.services.rollups import check_rollups, rebuild_rollups
from ratecard.store import Store
from ratecard.store import rollups as rollup_writes
from ratecard.store.events import insert_returning

from .scenario import NOW, current, workspace
from .test_rollups import CATALOG
from .test_split_property import _fresh

# each value as written in the file: every spelling of a number the fold must read as Python does
VALUES = ["5", '"2.50"', "1.50", "1e2", "-0.0", "99999999999999999999", "1E-7", "0e5", "-3", "2.5E+1",
          "0.1", "0.20", "null", "0", "-0", "99999999999999", "100000000000000", "-99999999999999",
          "9223372036854775807", "-9223372036854775808", "12", "1e14", "1E+14", "-1e14", '"100000000000000"',
          "true", "false", "100000000000000.0", "99999999999999.5", "18446744073709551616", "-0.0e0", "7"]
CUSTOMERS = ["acme", "globex", "nobody"]  # nobody: unknown, never matched
SUBSCRIPTIONS = [None, "acme-q", None]  # acme-q takes only events naming it


def _lines(prefix: str, count: int) -> list[str]:
    lines = []
    for index in range(count):
        customer = CUSTOMERS[index % 3]
        value = VALUES[index % len(VALUES)]
        named = SUBSCRIPTIONS[index % 3] if customer == "acme" and index % 2 else None
        subscription = f',"subscription":"{named}"' if named else ""
        field = "" if index % 7 == 0 else f'"v":{value},'  # no field: counted, not summed
        lines.append(f'{{"id":"{prefix}{index}","customer":"{customer}","meter":"s",'
                     f'"timestamp":"2026-03-01T{index % 5:02d}:{index % 60:02d}:00Z",'
                     f'"properties":{{{field}"u":"{"ab"[index % 2]}"}}{subscription}}}')
    return lines


def _stored(store: Store) -> dict[str, Any]:
    """Every roll-up row, its numbers as text (so that 1.50 and 1.5 differ)."""
    with store.engine.connect() as connection:
        entries = rollup_writes.registered(connection, "live")
        rows = {}
        for entry in entries:
            for key, partial in rollup_writes.stored_rows(connection, "live", entry.key).items():
                rows[key] = (partial.events, *(str(number) for number in (partial.total, partial.low, partial.high,
                                                                         partial.moment)),
                             partial.latest and (partial.latest[0], partial.latest[1], str(partial.latest[2])),
                             sorted(partial.values))
    return rows


def _load(store: Store, folder: Path, way: str) -> list[dict[str, Any]]:
    """Two batches (the second: 400 duplicates, 50 new), and the roll-up rows after each."""
    _, catalog = current(store)
    after = []
    for name, lines in (("a", _lines("e", 400)), ("b", _lines("e", 450))):
        if way == "file":
            path = folder / f"{name}.jsonl"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            import_file(store, catalog, path, NOW)
        else:
            validator = EventValidator(catalog, NOW)
            rows = [validator.check_row(decode_event(i, line.encode()), "live", 0) for i, line in enumerate(lines)]
            with store.engine.begin() as connection:
                insert_returning(connection, [row for row in rows if isinstance(row, tuple)])
        after.append(_stored(store))
    return after


def folded_both_ways(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     load: Callable[[Store, Path], Any]) -> dict[str, Any]:
    """What `load(store, folder)` returns with every roll-up folded in Python and with every one
    folded by the set-based statement, each on a fresh database whose roll-ups were built empty
    (every insert then maintains them) and check equal to the raw events after the load."""
    stored = {}
    for fold, set_based_from in (("python", 10**9), ("sql", 1)):
        monkeypatch.setattr(rollup_writes, "SET_BASED_FROM", set_based_from)
        folder = tmp_path / fold
        folder.mkdir()
        store, _ = workspace(_fresh(db_url, str(folder), fold), CATALOG)
        try:
            rebuild_rollups(store, "live", NOW)
            stored[fold] = load(store, folder)
            assert check_rollups(store, "live")["ok"]
        finally:
            store.dispose()
    return stored


@pytest.mark.parametrize("way", ["file", "transaction"])
def test_rollups_folded_in_sql_equal_the_python_fold(db_url: str, tmp_path: Path, way: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    stored = folded_both_ways(db_url, tmp_path, monkeypatch, lambda store, folder: _load(store, folder, way))
    assert stored["sql"] == stored["python"]
    sums = [row for key, row in stored["sql"][0].items() if row[1] != "None"]
    assert sums and any("." in row[1] for row in sums)  # the fold kept decimals, not only integers


def test_the_set_based_fold_is_taken_only_by_plain_counts_sums_and_averages(db_url: str) -> None:
    store, _ = workspace(db_url, CATALOG)
    try:
        rebuild_rollups(store, "live", NOW)
        with store.engine.connect() as connection:
            rules = {entry.rule.aggregation + ("+filters" if entry.rule.filters else "")
                     + ("+split" if entry.rule.split else ""): rollup_writes.folded_in_sql(entry.rule)
                     for entry in rollup_writes.registered(connection, "live")}
    finally:
        store.dispose()
    assert rules["count"] and rules["sum"] and rules["average"]
    assert not any(rules[kind] for kind in ("max", "min", "latest", "unique_count", "weighted_sum", "sum+filters"))
    assert not any(taken for kind, taken in rules.items() if kind.endswith("+split"))


MIXED = """
meters:
  - {code: m_sum, aggregation: sum, field: v, source: s}
  - {code: m_max, aggregation: max, field: v, source: s}
plans:
  - code: p
    currency: EUR
    charges:
      - {code: c_sum, meter: m_sum, model: per_unit, unit_amount: "1"}
      - {code: c_max, meter: m_max, model: per_unit, unit_amount: "1"}
customers:
  - {reference: acme, currency: EUR}
subscriptions:
  - {reference: acme-p, customer: acme, plan: p, start: 2026-01-01}
"""


def test_a_large_and_a_small_batch_of_the_same_hour_at_once_both_land(db_url: str, monkeypatch: Any) -> None:
    """A batch large enough for the set-based fold and a one-event batch for the same customer and
    hour, with roll-ups the database folds (sum) and one it does not (max): while the large one
    holds its transaction open after its roll-up writes, the small one writes too. Both commit
    (no deadlock: every writer takes the roll-up rows in one order, in one pass) and the roll-ups
    equal the raw events."""
    import threading
    import time

    store, _ = workspace(db_url, MIXED)
    try:
        rebuild_rollups(store, "live", NOW)
        _, catalog = current(store)

        def rows(prefix: str, count: int) -> list[Any]:
            validator = EventValidator(catalog, NOW)
            return [validator.check_row(decode_event(i, (
                f'{{"id":"{prefix}{i}","customer":"acme","meter":"s","timestamp":"2026-03-01T01:00:00Z",'
                f'"properties":{{"v":{i}}}}}').encode()), "live", 0) for i in range(count)]

        with store.engine.begin() as connection:  # the hour's rows exist: both batches update them
            insert_returning(connection, rows("seed", 1))
        written = threading.Event()

        def then_wait(step: Any) -> Any:
            def step_then_wait(*args: Any, **kwargs: Any) -> None:
                step(*args, **kwargs)
                if threading.current_thread().name == "large" and not written.is_set():
                    written.set()
                    time.sleep(2)  # the small batch's transaction runs meanwhile
            return step_then_wait

        # the pause comes after the first roll-up rows the large batch locked: those the database
        # folds, when it folds some, else all of them
        monkeypatch.setattr(rollup_writes, "_fold_in_sql", then_wait(rollup_writes._fold_in_sql))
        monkeypatch.setattr(rollup_writes, "absorb", then_wait(rollup_writes.absorb))
        errors: dict[str, str] = {}

        def write(name: str, count: int) -> None:
            if name == "small":
                written.wait(timeout=30)
            try:
                with store.engine.begin() as connection:
                    insert_returning(connection, rows(name, count))
            except Exception as exc:  # noqa: BLE001 - reported below, whatever it is
                errors[name] = repr(exc)[:300]

        threads = [threading.Thread(target=write, args=(name, count), name=name)
                   for name, count in (("large", rollup_writes.SET_BASED_FROM + 50), ("small", 1))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == {} and written.is_set()
        assert check_rollups(store, "live")["ok"]
    finally:
        store.dispose()


@pytest.mark.slow
def test_an_hour_of_many_large_integers_in_one_batch_sums_exactly(tmp_path: Path) -> None:
    """SQLite sums small integers itself in the set-based fold, with 64-bit integers: 92,300
    integers just below 10^14 in one hour and one batch add up past 2^63 - 1, and the sum is
    still exact, as the events give it (a batch that large is folded by ratecard's exact sum)."""
    count, value = 92_300, 99_999_999_999_999
    lines = [f'{{"id":"big{index}","customer":"globex","meter":"s","timestamp":"2026-03-01T04:{index % 60:02d}:00Z",'
             f'"properties":{{"v":{value}}}}}' for index in range(count)]
    store, _ = workspace(f"sqlite:///{tmp_path / 'big.db'}", CATALOG)
    try:
        rebuild_rollups(store, "live", NOW)
        _, catalog = current(store)
        validator = EventValidator(catalog, NOW)
        rows = [validator.check_row(decode_event(i, line.encode()), "live", 0) for i, line in enumerate(lines)]
        assert all(isinstance(row, tuple) and row[7] == "matched" for row in rows)
        with store.engine.begin() as connection:
            insert_returning(connection, rows)
        sums = {row[1] for row in _stored(store).values() if row[0] == count and row[1] != "None"}
        assert check_rollups(store, "live")["ok"]
    finally:
        store.dispose()
    assert sums == {str(count * value)}
