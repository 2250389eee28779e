"""Property: the SQL roll-up of every aggregation equals the pure domain function, on both stores."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratecard.domain.aggregation import Sample, aggregate
from ratecard.domain.instants import to_micros
from ratecard.ingest.importer import import_file
from ratecard.store import usage as usage_module
from ratecard.store.usage import Usage, Window, aggregate_usage

from .scenario import EVERY_AGGREGATION, NOW, current, workspace, write_jsonl
from .test_split_property import _fresh

CATALOG = """
meters:
""" + EVERY_AGGREGATION + """plans:
  - {code: p, currency: EUR, charges: [{code: c, meter: m_sum, model: per_unit, unit_amount: "1"}]}
customers:
  - {reference: acme, currency: EUR}
subscriptions:
  - {reference: acme-p, customer: acme, plan: p, start: 2026-01-01}
"""
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
VALUE = st.one_of(st.integers(min_value=-10**6, max_value=10**6),
                  st.decimals(min_value=-1000, max_value=1000, places=4, allow_nan=False, allow_infinity=False))
UNIQUE = st.one_of(st.sampled_from(["a", "b", "A", "007", "7", "1"]), st.integers(min_value=0, max_value=8))
EVENT = st.tuples(st.integers(min_value=-5 * 86400, max_value=35 * 86400), VALUE, UNIQUE)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(EVENT, min_size=0, max_size=30))
def test_sql_rollup_equals_domain_aggregation(db_url: str, drawn: list) -> None:
    events = []
    for index, (offset, value, unique) in enumerate(drawn):
        moment = START + timedelta(seconds=offset // 600 * 600)  # coarse: equal timestamps happen
        events.append({"id": f"e{index:03d}", "customer": "acme", "meter": "s",
                       "timestamp": moment.isoformat(), "properties": {"v": str(value), "u": unique}})
    with tempfile.TemporaryDirectory() as folder:
        store, _ = workspace(_fresh(db_url, folder, "u"), CATALOG)
        _, catalog = current(store)
        import_file(store, catalog, write_jsonl(Path(folder) / f"{uuid.uuid4().hex}.jsonl", events), NOW)
        window = Window(0, "acme", to_micros(START), to_micros(END))
        usage = aggregate_usage(store, [window], list(catalog.meters.values()))
        # the same through the whole-table scan that large invoice runs use on SQLite
        original = usage_module.SCAN_FROM_WINDOWS
        usage_module.SCAN_FROM_WINDOWS = 0
        try:
            scanned = aggregate_usage(store, [window], list(catalog.meters.values()))
        finally:
            usage_module.SCAN_FROM_WINDOWS = original
        store.dispose()
    assert scanned == usage
    # the domain sees events in id order, so "the later one given" among equal timestamps is the greatest id
    ordered = sorted(events, key=lambda e: e["id"])
    inside = [e for e in ordered if START <= datetime.fromisoformat(e["timestamp"]) < END]
    before = [e for e in ordered if datetime.fromisoformat(e["timestamp"]) < START]
    for meter in catalog.meters.values():
        field = "u" if meter.aggregation == "unique_count" else "v"
        samples = [Sample(datetime.fromisoformat(e["timestamp"]),
                          e["properties"][field] if field == "u" else Decimal(e["properties"][field]))
                   for e in inside]
        prior = sum((Decimal(e["properties"]["v"]) for e in before), Decimal(0))
        expected = aggregate(meter.aggregation, samples, START, END, prior)
        got = usage.get((0, meter.code))
        if got is None:  # no rows: the store reports nothing, the run treats it as zero
            assert expected.events == 0 and expected.quantity == 0, meter.code
            continue
        assert (got.quantity, got.events) == (expected.quantity, expected.events), meter.code


ROUTED = CATALOG + """  - {reference: acme-q, customer: acme, plan: p, start: 2026-01-01, requires_reference: true}
"""


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(st.tuples(EVENT, st.sampled_from([None, "acme-p", "acme-q"])), min_size=1, max_size=20))
def test_a_preview_window_takes_the_events_an_invoice_run_window_takes(db_url: str, drawn: list) -> None:
    # two subscriptions of one customer on one meter: events naming acme-q are acme-q's, the rest
    # acme-p's. The preview's few-windows path must split them as the invoice run does (it once
    # gave both subscriptions every event: the upcoming invoice, entitlements and usage limits
    # counted them twice)
    events = []
    for index, ((offset, value, unique), named) in enumerate(drawn):
        moment = START + timedelta(seconds=offset // 600 * 600)
        events.append({"id": f"e{index:03d}", "customer": "acme", "meter": "s", "timestamp": moment.isoformat(),
                       "properties": {"v": str(value), "u": unique}, **({"subscription": named} if named else {})})
    windows = [Window(0, "acme", to_micros(START), to_micros(END), "acme-p", True),
               Window(1, "acme", to_micros(START), to_micros(END), "acme-q", False),
               Window(2, "acme", to_micros(START), to_micros(END))]
    with tempfile.TemporaryDirectory() as folder:
        store, _ = workspace(_fresh(db_url, folder, "r"), ROUTED)
        _, catalog = current(store)
        import_file(store, catalog, write_jsonl(Path(folder) / f"{uuid.uuid4().hex}.jsonl", events), NOW)
        meters = [m for m in catalog.meters.values() if m.aggregation != "weighted_sum"]
        run = aggregate_usage(store, windows, meters)
        preview = usage_module.few_windows_usage(store, windows, meters)
        store.dispose()
    zero = Usage.zero()
    for key in {*run, *preview}:
        assert (preview.get(key, zero).quantity, preview.get(key, zero).events) == \
            (run.get(key, zero).quantity, run.get(key, zero).events), key
