"""Property: SQLite and PostgreSQL bill the same events identically, and as the pure domain does.

Random events (every JSON type in the meters' fields and filter keys, null and missing values,
booleans, integers past 2^64, decimals across the whole number bound, strings that read as
numbers, ids in any script, equal timestamps) are imported into one store of each kind, the
catalog then gets meters of every aggregation (with and without filters), and one invoice run
on each store must export the same invoices, with the quantities the domain functions compute
from the same events (domain.aggregation, domain.json_values)."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratecard.billing.export import invoices_json
from ratecard.billing.run import generate_invoices
from ratecard.catalog import MeterSpec
from ratecard.domain.aggregation import Sample, aggregate, exact_sum
from ratecard.domain.json_values import is_number, text_form
from ratecard.ingest.importer import import_file
from ratecard.store import Store
from ratecard.store.catalogs import save_version
from ratecard.store.invoices import list_invoices

from .scenario import NOW, catalog_document, current, workspace

SUBSCRIPTION_START = datetime(2025, 12, 1, tzinfo=UTC)
PERIODS = [(SUBSCRIPTION_START, datetime(2026, 1, 1, tzinfo=UTC)),
           (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))]
FIRST_EVENT = datetime(2025, 11, 28, tzinfo=UTC)  # a few events before the subscription: not billed
STEP = timedelta(hours=8)  # a coarse clock: equal timestamps happen
STEPS = (datetime(2026, 2, 3, tzinfo=UTC) - FIRST_EVENT) // STEP

METERS = """
  - {code: events, aggregation: count, source: s}
  - {code: users, aggregation: unique_count, field: u, source: s}
  - {code: total, aggregation: sum, field: v, source: s}
  - {code: top, aggregation: max, field: v, source: s}
  - {code: low, aggregation: min, field: v, source: s}
  - {code: last, aggregation: latest, field: v, source: s}
  - {code: mean, aggregation: average, field: v, source: s}
  - {code: level, aggregation: weighted_sum, field: v, source: s}
  - {code: f_events, aggregation: count, source: s, filters: {region: [true, 0]}}
  - {code: f_users, aggregation: unique_count, field: u, source: s, filters: {region: [1.5, eu]}}
  - {code: f_total, aggregation: sum, field: v, source: s, filters: {region: [1, eu]}}
  - {code: f_top, aggregation: max, field: v, source: s, filters: {region: ["1", "1.0"]}}
  - {code: f_last, aggregation: latest, field: v, source: s, filters: {region: [1, "é"], tier: [gold]}}
  - {code: f_mean, aggregation: average, field: v, source: s, filters: {region: [0, "true"]}}
  - {code: f_level, aggregation: weighted_sum, field: v, source: s, filters: {region: [1]}}
"""
CODES = [line.split("code: ")[1].split(",")[0] for line in METERS.strip().splitlines()]
# while the events are imported only a count reads the stream: every value is stored as sent
IMPORT_METERS = "\n  - {code: events, aggregation: count, source: s}\n"


def _catalog(customers: list[str], meters: str) -> str:
    codes = [code for code in CODES if f"code: {code}," in meters]
    charges = "".join(f"      - {{code: {code}, meter: {code}, model: per_unit, unit_amount: '0.5'}}\n"
                      for code in codes)
    return (
        "meters:" + meters + "plans:\n  - code: p\n    currency: EUR\n    charges:\n" + charges
        + "customers:\n" + "".join(f"  - {{reference: '{name}', currency: EUR}}\n" for name in customers)
        + "subscriptions:\n" + "".join(f"  - {{reference: '{name}-p', customer: '{name}', plan: p, "
                                       f"start: {SUBSCRIPTION_START.date()}}}\n" for name in customers)
    )


@st.composite
def _decimals(draw: st.DrawFn) -> Decimal:
    """Any decimal inside the number bound: up to 38 digits, the leading one at 10^-19 to 10^19."""
    digits = draw(st.integers(min_value=1, max_value=38))
    coefficient = draw(st.integers(min_value=10 ** (digits - 1), max_value=10**digits - 1))
    adjusted = draw(st.integers(min_value=-19, max_value=19))
    trailing = draw(st.integers(min_value=0, max_value=min(2, 38 - digits)))  # 1.50, 2.000: zeros as written
    sign = draw(st.integers(min_value=0, max_value=1))
    return Decimal((sign, tuple(map(int, str(coefficient))) + (0,) * trailing, adjusted - digits + 1 - trailing))


INTEGERS = st.one_of(
    st.integers(min_value=-3, max_value=3),
    st.integers(min_value=-(10**20) + 1, max_value=10**20 - 1),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 2**64 + 1, 10**20 - 1]),
)
DECIMALS = st.one_of(_decimals(), st.sampled_from([Decimal(t) for t in ("1.0", "1.5", "1.50", "15E-1", "1E+2",
                                                                       "-0.0", "0E-7", "2.0000000000000000001")]))
TEXTS = st.one_of(st.sampled_from(["1", "1.0", "eu", "true", "é", "", "{}", "[1]", "5", "gold"]),
                  st.text(alphabet="aé😀1 ", max_size=3))
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, DECIMALS, TEXTS)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["a", "b", "é"]), inner, max_size=3), max_leaves=4)
MISSING = object()
NUMERIC = st.one_of(INTEGERS, DECIMALS, DECIMALS, st.just(MISSING), SCALARS)
REGIONS = st.one_of(st.sampled_from([1, 0, "1", "eu", "é", True, False, "true", Decimal("1.5"), Decimal("1.50"),
                                     Decimal("1.0"), Decimal("15E-1"), MISSING, None]), VALUES)
IDS = st.one_of(st.text(alphabet="aAzé\u00e4\u4e00😀-_ \x01", min_size=1, max_size=6),
                st.builds(lambda char, count: char * count, st.sampled_from("zé😀"), st.integers(200, 245)))
EVENT = st.fixed_dictionaries({
    "id": IDS, "customer": st.sampled_from(["a", "b"]), "step": st.integers(min_value=0, max_value=STEPS),
    "v": NUMERIC, "u": st.one_of(VALUES, st.just(MISSING)), "region": REGIONS,
    "tier": st.sampled_from(["gold", "silver", MISSING]),
})


def _json(value: Any) -> str:
    """JSON text keeping every number as written (integers of any size, decimals as Decimal)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _passes(meter: MeterSpec, properties: dict[str, Any]) -> bool:
    return all(properties.get(key) is not None and text_form(properties[key]) in {text_form(v) for v in values}
               for key, values in meter.filters.items())


def _expected(meter: MeterSpec, events: list[dict[str, Any]], customer: str, start: datetime, end: datetime):
    """The domain's usage of one meter in one period, from the events as written."""
    billed = [e for e in events if e["customer"] == customer and e["at"] >= SUBSCRIPTION_START
              and _passes(meter, e["properties"])]
    if meter.aggregation != "count":
        wanted = (lambda value: value is not None) if meter.aggregation == "unique_count" else is_number
        billed = [e for e in billed if wanted(e["properties"].get(meter.field))]
    inside = sorted((e for e in billed if start <= e["at"] < end), key=lambda e: (e["at"], e["id"]))
    numeric = meter.aggregation not in ("count", "unique_count")

    def value(event: dict[str, Any]) -> Any:
        raw = event["properties"].get(meter.field)
        return Decimal(raw) if numeric else raw

    prior = exact_sum(value(e) for e in billed if e["at"] < start) if numeric else Decimal(0)
    return aggregate(meter.aggregation, [Sample(e["at"], value(e)) for e in inside], start, end, prior).quantity


def _bill(store: Store, folder: Path, customers: list[str], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Import under a catalog that only counts, then bill under one with every meter: the
    exported invoices of these customers."""
    version, _ = current(store)
    version, _ = save_version(store, catalog_document(_catalog(customers, IMPORT_METERS)), version)
    _, catalog = current(store)
    lines = [{"id": e["id"], "customer": e["customer"], "meter": "s", "timestamp": e["at"].isoformat(),
              "properties": e["properties"]} for e in events]
    path = folder / f"{uuid.uuid4().hex}.jsonl"
    path.write_text("".join(_json(line) + "\n" for line in lines), encoding="utf-8")
    report = import_file(store, catalog, path, NOW)
    assert not report.rejections, report.rejections
    save_version(store, catalog_document(_catalog(customers, METERS)), version)
    version, catalog = current(store)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    documents = invoices_json([i for i in list_invoices(store) if i.customer in customers])
    for document in documents:  # the store's own row ids differ between stores
        del document["id"], document["number"]
    return sorted(documents, key=lambda d: (d["customer"], d["issue_date"]))


@pytest.fixture
def stores(store_urls: dict[str, str]):
    opened = {name: workspace(url, _catalog(["seed"], IMPORT_METERS))[0] for name, url in store_urls.items()}
    yield opened
    for store in opened.values():
        store.dispose()


EXAMPLES = itertools.count()


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(EVENT, min_size=1, max_size=20, unique_by=lambda e: e["id"]))
def test_both_stores_bill_random_events_as_the_domain_does(stores: dict[str, Store], tmp_path: Path,
                                                            drawn: list[dict[str, Any]]) -> None:
    tag = f"x{next(EXAMPLES)}"  # each example bills customers of its own, in the same two stores
    customers = [f"{tag}-a", f"{tag}-b"]
    events = []
    for item in drawn:
        properties = {key: item[key] for key in ("v", "u", "region", "tier") if item[key] is not MISSING}
        events.append({"id": f"{tag}-{item['id']}", "customer": f"{tag}-{item['customer']}",
                       "at": FIRST_EVENT + item["step"] * STEP, "properties": properties})
    exported = {name: _bill(store, tmp_path, customers, events) for name, store in stores.items()}
    for on_sqlite, on_postgres in zip(exported["sqlite"], exported["postgresql"], strict=True):
        where = (on_sqlite["customer"], on_sqlite["issue_date"])
        for line, other in zip(on_sqlite["lines"], on_postgres["lines"], strict=True):
            assert line == other, where
        assert on_sqlite == on_postgres, where
    _, catalog = current(stores["sqlite"])
    invoices = {(d["customer"], d["lines"][0]["service_start"]): d for d in exported["sqlite"]}
    for customer in customers:
        for start, end in PERIODS:
            lines = {line["code"]: line for line in invoices[(customer, str(start.date()))]["lines"]}
            for code in CODES:
                expected = _expected(catalog.meters[code], events, customer, start, end)
                assert Decimal(lines[code]["quantity"]) == expected, (customer, start, code)
