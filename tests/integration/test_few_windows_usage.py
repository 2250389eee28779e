"""Property: the roll-up for a few windows (the upcoming invoice's) equals the invoice run's roll-up,
for every aggregation, filters and the exact redo of doubles and large integers, on both stores."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratecard.catalog import Catalog
from ratecard.domain.instants import to_micros
from ratecard.ingest.importer import import_file
from ratecard.store import Store
from ratecard.store import usage as usage_module
from ratecard.store.usage import Window, aggregate_usage, few_windows_usage

from .scenario import NOW, current, workspace, write_jsonl

CATALOG = """
meters:
  - {code: m_count, aggregation: count, source: s}
  - {code: m_count_gpt, aggregation: count, source: s, filters: {model: [gpt-4o]}}
  - {code: m_sum, aggregation: sum, field: v, source: s}
  - {code: m_sum_gpt, aggregation: sum, field: v, source: s, filters: {model: [gpt-4o, o3]}}
  - {code: m_max, aggregation: max, field: v, source: s}
  - {code: m_min, aggregation: min, field: v, source: s}
  - {code: m_unique, aggregation: unique_count, field: u, source: s}
  - {code: m_latest, aggregation: latest, field: v, source: s}
  - {code: m_weighted, aggregation: weighted_sum, field: v, source: s}
  - {code: m_average, aggregation: average, field: v, source: s}
  - {code: calls, aggregation: count}
plans:
  # every event stream is charged, so every event is billable (an uncharged one is stored `unpriced`)
  - {code: p, currency: EUR, charges: [{code: c, meter: m_sum, model: per_unit, unit_amount: "1"},
                                       {code: k, meter: calls, model: per_unit, unit_amount: "1"}]}
customers:
  - {reference: acme, currency: EUR}
  - {reference: globex, currency: EUR}
subscriptions:
  - {reference: acme-p, customer: acme, plan: p, start: 2026-01-01}
  - {reference: globex-p, customer: globex, plan: p, start: 2026-01-01}
"""
START = datetime(2026, 3, 1, tzinfo=UTC)


def _value(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return str(rng.randrange(-1000, 10**6))
    if kind == 1:
        return f"{rng.randrange(-10**6, 10**6) / 10**4:.4f}"  # a double in SQLite: redone exactly
    if kind == 2:
        return str(rng.randrange(2**32, 10**19))  # beyond the integers SQLite's SUM adds
    return str(rng.randrange(0, 50))


def _events() -> list[dict]:
    rng = random.Random(7)
    events = []
    for index in range(240):
        moment = START + timedelta(seconds=rng.randrange(0, 31 * 86400) // 600 * 600)
        customer = rng.choice(["acme", "globex"])
        if index % 5 == 0:
            events.append({"id": f"c{index}", "customer": customer, "meter": "calls", "timestamp": moment.isoformat()})
            continue
        events.append({"id": f"s{index}", "customer": customer, "meter": "s", "timestamp": moment.isoformat(),
                       "properties": {"v": _value(rng), "u": rng.choice(["a", "b", "7", 7, 1]),
                                      "model": rng.choice(["gpt-4o", "o3", "mini"])}})
    return events


@pytest.fixture
def loaded(db_url: str, tmp_path: Path) -> tuple[Store, Catalog]:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    report = import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", _events()), NOW)
    assert report.stored == 240 and not report.rejected
    yield store, catalog
    store.dispose()


WINDOW = st.tuples(st.sampled_from(["acme", "globex", "nobody"]), st.integers(min_value=-2 * 86400, max_value=32 * 86400),
                   st.integers(min_value=0, max_value=20 * 86400))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(WINDOW, min_size=1, max_size=4))
def test_few_windows_equal_the_invoice_run_rollup(loaded: tuple[Store, Catalog], drawn: list) -> None:
    store, catalog = loaded
    windows = [Window(key, customer, to_micros(START) + offset * 10**6, to_micros(START) + (offset + length) * 10**6)
               for key, (customer, offset, length) in enumerate(drawn)]
    meters = list(catalog.meters.values())
    expected = aggregate_usage(store, windows, meters)
    assert few_windows_usage(store, windows, meters) == expected
    assert _one_statement_per_meter(store, windows, meters) == expected


def _one_statement_per_meter(store: Store, windows: list[Window], meters: list) -> dict:
    """On SQLite, the nine meters reading stream `s` go through the single pass; this takes them
    one statement each, as a plan with fewer meters per stream does."""
    original = usage_module.MAX_READERS
    usage_module.MAX_READERS = len(meters)
    try:
        return few_windows_usage(store, windows, meters)
    finally:
        usage_module.MAX_READERS = original


def test_the_whole_month_has_every_kind_of_value(loaded: tuple[Store, Catalog]) -> None:
    store, catalog = loaded
    window = Window(3, "acme", to_micros(START), to_micros(START + timedelta(days=31)))
    meters = list(catalog.meters.values())
    usage = few_windows_usage(store, [window], meters)
    assert usage == aggregate_usage(store, [window], meters) == _one_statement_per_meter(store, [window], meters)
    assert {code for _, code in usage} == set(catalog.meters)  # every meter saw events
    assert usage[(3, "m_count_gpt")].events < usage[(3, "m_count")].events
