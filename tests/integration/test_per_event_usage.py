"""The roll-up of a sum meter a charge prices event by event: the same quantity and count as the single
pass, each event's value in the period's order (timestamp, then arrival, then id bytes), the same in
the invoice run's and the upcoming invoice's roll-ups, on both stores."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratecard.catalog import Catalog, MeterSpec
from ratecard.domain.instants import to_micros
from ratecard.ingest.importer import import_file
from ratecard.store import Store
from ratecard.store.usage import Window, aggregate_usage, few_windows_usage

from .scenario import NOW, current, workspace, write_jsonl

CATALOG = """
meters:
  - {code: pay, aggregation: sum, field: v, source: s}
  - {code: pay_gpt, aggregation: sum, field: v, source: s, filters: {model: [gpt-4o]}}
  - {code: calls, aggregation: count}
plans:
  - code: p
    currency: EUR
    charges:
      - {code: c, meter: pay, model: percentage, rate: "2", per_transaction_max_amount: "5"}
      - {code: g, meter: pay_gpt, model: percentage, rate: "1", free_units_per_events: 2}
      - {code: k, meter: calls, model: per_unit, unit_amount: "1"}
customers:
  - {reference: acme, currency: EUR}
  - {reference: globex, currency: EUR}
subscriptions:
  - {reference: acme-p, customer: acme, plan: p, start: 2026-01-01}
  - {reference: globex-p, customer: globex, plan: p, start: 2026-01-01}
"""
START = datetime(2026, 3, 1, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)  # the second import arrives after the first


def _value(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return str(rng.randrange(-100, 10**5))
    if kind == 1:
        return f"{rng.randrange(-10**5, 10**6) / 100:.2f}"  # a double in SQLite
    return str(rng.randrange(2**32, 10**19))  # beyond the integers SQLite's SUM adds


def _events() -> list[list[dict]]:
    """Two imports; many events share a timestamp (to the hour), some across the two imports."""
    rng = random.Random(11)
    batches: list[list[dict]] = [[], []]
    for index in range(160):
        moment = START + timedelta(hours=rng.randrange(0, 31 * 24, 24) + rng.choice([0, 0, 1]))
        customer = rng.choice(["acme", "globex"])
        batch = rng.randrange(2)
        # ids whose byte order is not their arrival order: "B.." (second import) sorts before "a.."
        event_id = f"{'aB'[batch]}{rng.choice('zZ')}{index}"
        if index % 7 == 0:
            batches[batch].append({"id": event_id, "customer": customer, "meter": "calls",
                                   "timestamp": moment.isoformat()})
            continue
        batches[batch].append({"id": event_id, "customer": customer, "meter": "s", "timestamp": moment.isoformat(),
                               "properties": {"v": _value(rng), "model": rng.choice(["gpt-4o", "mini"])}})
    return batches


@pytest.fixture
def loaded(db_url: str, tmp_path: Path) -> Iterator[tuple[Store, Catalog, list[tuple]]]:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    stored: list[tuple] = []
    for number, (batch, now) in enumerate(zip(_events(), (NOW, LATER), strict=True)):
        report = import_file(store, catalog, write_jsonl(tmp_path / f"events{number}.jsonl", batch), now)
        assert report.stored == len(batch) and not report.rejected
        stored += [(to_micros(datetime.fromisoformat(event["timestamp"])), number, event["id"].encode(), event)
                   for event in batch if event["meter"] == "s"]
    yield store, catalog, sorted(stored, key=lambda row: row[:3])
    store.dispose()


def _expected(stored: list[tuple], window: Window, meter: MeterSpec) -> tuple[Decimal, ...]:
    """Each event's value the window takes, by hand: in order of timestamp, import, id bytes."""
    return tuple(Decimal(event["properties"]["v"]) for ts, _, _, event in stored
                 if event["customer"] == window.customer and window.start_us <= ts < window.end_us
                 and (meter.code == "pay" or event["properties"]["model"] == "gpt-4o"))


WINDOW = st.tuples(st.sampled_from(["acme", "globex", "nobody"]), st.integers(min_value=-2 * 86400, max_value=32 * 86400),
                   st.integers(min_value=0, max_value=20 * 86400))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(WINDOW, min_size=1, max_size=4))
def test_each_event_value_in_order_with_the_single_pass_totals(loaded: tuple[Store, Catalog, list[tuple]],
                                                               drawn: list) -> None:
    store, catalog, stored = loaded
    windows = [Window(key, customer, to_micros(START) + offset * 10**6, to_micros(START) + (offset + length) * 10**6)
               for key, (customer, offset, length) in enumerate(drawn)]
    meters = list(catalog.meters.values())
    assert [meter.code for meter in meters if meter.per_event] == ["pay", "pay_gpt"]
    usage = aggregate_usage(store, windows, meters)
    assert few_windows_usage(store, windows, meters) == usage
    single_pass = aggregate_usage(store, windows, [replace(meter, per_event=False) for meter in meters])
    assert {key: (item.quantity, item.events) for key, item in usage.items()} == {
        key: (item.quantity, item.events) for key, item in single_pass.items()}
    for window in windows:
        for meter in meters:
            found = usage.get((window.key, meter.code))
            if meter.per_event:
                expected = _expected(stored, window, meter)
                assert (found.values if found is not None else ()) == expected
            else:
                assert found is None or found.values is None
