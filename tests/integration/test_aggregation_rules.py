"""The aggregation rules, by hand-computed examples, through what a user does: import an events
file, run the invoices, read the quantities on the invoice lines. Each runs on SQLite and on
PostgreSQL and must give the same answer on both (docs/billing.md, Aggregations)."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest

from ratecard.billing.run import generate_invoices
from ratecard.catalog import MeterSpec
from ratecard.domain.instants import to_micros
from ratecard.ingest.importer import import_file
from ratecard.store import Store
from ratecard.store import usage as usage_module
from ratecard.store.catalogs import save_version
from ratecard.store.invoices import list_invoices
from ratecard.store.usage import Window, aggregate_usage

from .scenario import NOW, catalog_document, current, workspace

D = Decimal
UNTIL = date(2026, 2, 1)

METERS = """
  - {code: events, aggregation: count, source: s}
  - {code: users, aggregation: unique_count, field: u, source: s}
  - {code: total, aggregation: sum, field: v, source: s}
  - {code: top, aggregation: max, field: v, source: s}
  - {code: low, aggregation: min, field: v, source: s}
  - {code: last, aggregation: latest, field: v, source: s}
  - {code: mean, aggregation: average, field: v, source: s}
  - {code: level, aggregation: weighted_sum, field: v, source: s}
  - {code: region_one, aggregation: count, source: s, filters: {region: [1]}}
  - {code: region_text_one, aggregation: count, source: s, filters: {region: ["1"]}}
  - {code: region_true, aggregation: count, source: s, filters: {region: [true]}}
  - {code: region_decimal, aggregation: sum, field: v, source: s, filters: {region: [1.5, eu]}}
"""
CODES = ("events", "users", "total", "top", "low", "last", "mean", "level", "region_one", "region_text_one",
         "region_true", "region_decimal")


def _catalog(customers: Iterable[str], meters: str = METERS) -> str:
    names = list(customers)
    charges = "\n".join(f"      - {{code: {code}, meter: {code}, model: per_unit, unit_amount: '1'}}"
                        for code in CODES if f"code: {code}," in meters)
    return (
        "meters:" + meters
        + "plans:\n  - code: p\n    currency: EUR\n    charges:\n" + charges + "\n"
        + "customers:\n" + "".join(f"  - {{reference: {name}, currency: EUR}}\n" for name in names)
        + "subscriptions:\n"
        + "".join(f"  - {{reference: {name}-p, customer: {name}, plan: p, start: 2026-01-01}}\n" for name in names)
    )


def _json(value: Any) -> str:
    """JSON text that keeps every number as written: integers of any size, decimals as Decimal."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _event(customer: str, event_id: str, day: int, **properties: Any) -> dict[str, Any]:
    return {"id": event_id, "customer": customer, "meter": "s", "timestamp": f"2026-01-{day:02d}T10:00:00Z",
            "properties": properties}


def _write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(_json(event) + "\n" for event in events), encoding="utf-8")
    return path


def _import(store: Store, folder: Path, events: list[dict[str, Any]]) -> None:
    _, catalog = current(store)
    report = import_file(store, catalog, _write_jsonl(folder / f"{uuid.uuid4().hex}.jsonl", events), NOW)
    assert not report.rejections, report.rejections


def _quantities(store: Store) -> dict[str, dict[str, Decimal]]:
    """{customer: {charge code: quantity}} of the invoices an invoice run makes."""
    version, catalog = current(store)
    generate_invoices(store, catalog, version, UNTIL, NOW)
    result: dict[str, dict[str, Decimal]] = {}
    for invoice in list_invoices(store):
        result.setdefault(invoice.customer, {}).update({line.code: line.quantity for line in invoice.lines})
    return result


def _run(db_url: str, folder: Path, cases: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Decimal]]:
    store, _ = workspace(db_url, _catalog(cases))
    try:
        _import(store, folder, [event for events in cases.values() for event in events])
        return _quantities(store)
    finally:
        store.dispose()


UNIQUE_CASES = {
    # null is no value: "a", "a", null, "b" are 2 users
    "nulls": [_event("nulls", "n1", 2, u="a"), _event("nulls", "n2", 3, u="a"), _event("nulls", "n3", 4, u=None),
              _event("nulls", "n4", 5, u="b"), _event("nulls", "n5", 6)],
    # true is not 1; 1 and 1.0 and 1e0 are one number
    "bools": [_event("bools", "b1", 2, u=1), _event("bools", "b2", 3, u=True), _event("bools", "b3", 4, u=D("1.0")),
              _event("bools", "b4", 5, u=D("1e0"))],
    # the text "1" is not the number 1; "true" is not true
    "texts": [_event("texts", "t1", 2, u="1"), _event("texts", "t2", 3, u=1), _event("texts", "t3", 4, u="true"),
              _event("texts", "t4", 5, u=True), _event("texts", "t5", 6, u=False), _event("texts", "t6", 7, u=0)],
    # 1e2 and 100 are one number; integers past 2^63 and 2^64 keep every digit
    "numbers": [_event("numbers", "x1", 2, u=D("1e2")), _event("numbers", "x2", 3, u=100),
                _event("numbers", "x3", 4, u=2**63), _event("numbers", "x4", 5, u=2**63 + 1),
                _event("numbers", "x5", 6, u=2**64 + 1), _event("numbers", "x6", 7, u=D("18446744073709551617.0")),
                _event("numbers", "x7", 8, u=D("0.1")), _event("numbers", "x8", 9, u=D("0.1000000000000000001"))],
    # objects and arrays: the same JSON value whatever the key order, numbers by value
    "nested": [_event("nested", "o1", 2, u={"a": 1, "b": [1, 2]}),
               _event("nested", "o2", 3, u={"b": [D("1.0"), 2], "a": 1}),
               _event("nested", "o3", 4, u=[1, 2]), _event("nested", "o4", 5, u=[2, 1]),
               _event("nested", "o5", 6, u='{"a":1,"b":[1,2]}'), _event("nested", "o6", 7, u={}),
               _event("nested", "o7", 8, u=[])],
}


def test_unique_count_skips_null_and_tells_types_apart(db_url: str, tmp_path: Path) -> None:
    quantities = _run(db_url, tmp_path, UNIQUE_CASES)
    assert quantities["nulls"]["users"] == 2
    assert quantities["nulls"]["events"] == 5  # count counts events, whatever their fields
    assert quantities["bools"]["users"] == 2
    assert quantities["texts"]["users"] == 6
    assert quantities["numbers"]["users"] == 6
    assert quantities["nested"]["users"] == 6


LONG_ID = "é" * 129 + "2"  # 130 characters, 260 bytes
LATEST_CASES = {
    "accents": [_event("accents", "évt-1", 2, v=500), _event("accents", "évt-2", 2, v=1500),
                _event("accents", "evt-3", 2, v=7)],
    "long": [_event("long", LONG_ID, 3, v=1500), _event("long", "é" * 129 + "1", 3, v=20),
             _event("long", "é" * 256, 1, v=99)],
    # ids of the greatest length, two and four bytes a character
    "longest": [_event("longest", "é" * 256, 3, v=42), _event("longest", "é" * 255 + "z", 3, v=1),
                _event("longest", "😀" * 256, 3, v=77), _event("longest", "😀" * 255 + "é", 3, v=8)],
    # code point order: "ä" (U+00E4) after "z", "😀" (U+1F600) after "\uffef"; "a" before "a\x01"
    "order": [_event("order", "z-1", 4, v=1), _event("order", "ä-2", 4, v=2)],
    "astral": [_event("astral", "\uffef", 4, v=1), _event("astral", "😀", 4, v=3)],
    "prefix": [_event("prefix", "a\x01", 4, v=5), _event("prefix", "a", 4, v=6), _event("prefix", "a ", 4, v=4)],
    # the same timestamp, the greatest id wins; a later timestamp wins whatever its id
    "later": [_event("later", "later-b", 4, v=1), _event("later", "later-a", 5, v=2)],
}


def test_latest_breaks_ties_by_the_greatest_id_in_any_script(db_url: str, tmp_path: Path) -> None:
    quantities = _run(db_url, tmp_path, LATEST_CASES)
    assert quantities["accents"]["last"] == 1500  # "évt-2" > "évt-1" > "evt-3": é (U+00E9) comes after e
    assert quantities["long"]["last"] == 1500
    assert quantities["longest"]["last"] == 77
    assert quantities["order"]["last"] == 2
    assert quantities["astral"]["last"] == 3
    assert quantities["prefix"]["last"] == 4  # "a\x01" > "a" and "a " > "a\x01"
    assert quantities["later"]["last"] == 2


def test_latest_of_two_accented_ids_reads_the_whole_value(db_url: str, tmp_path: Path) -> None:
    cases = {"acme": [_event("acme", "évt-1", 2, v=500), _event("acme", "évt-2", 2, v=1500)]}
    assert _run(db_url, tmp_path, cases)["acme"]["last"] == 1500


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = ["id", "customer", "meter", "timestamp", "region", "v"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(column, "") for column in columns])
    return path


def test_filters_compare_the_text_form_on_jsonl_and_csv(db_url: str, tmp_path: Path) -> None:
    jsonl = [
        _event("json", "j1", 2, region=1), _event("json", "j2", 3, region="1"), _event("json", "j3", 4, region=D("1.0")),
        _event("json", "j4", 5, region=True), _event("json", "j5", 6, region="1.0"),
        _event("json", "j6", 7, region=D("1e0")),
        _event("json", "j7", 8, region="true"), _event("json", "j8", 9, region=1, v=3),
        _event("json", "j9", 10, region=D("1.50"), v=10), _event("json", "j10", 11, region="eu", v=D("0.5")),
        _event("json", "j11", 12, region=D("15E-1"), v=100), _event("json", "j12", 13, region="1.50", v=1000),
        _event("json", "j13", 14, region=[1], v=10000), _event("json", "j14", 15, region={"a": 1}),
        _event("json", "j15", 16, region=None), _event("json", "j16", 17, region=D("1.5000000000000000001"), v=7),
    ]
    csv_rows = [
        {"id": "c1", "customer": "csv", "meter": "s", "timestamp": "2026-01-02T10:00:00Z", "region": "1"},
        {"id": "c2", "customer": "csv", "meter": "s", "timestamp": "2026-01-03T10:00:00Z", "region": "1", "v": "2"},
        {"id": "c3", "customer": "csv", "meter": "s", "timestamp": "2026-01-04T10:00:00Z", "region": "true"},
        {"id": "c4", "customer": "csv", "meter": "s", "timestamp": "2026-01-05T10:00:00Z", "region": "1.5", "v": "4"},
        {"id": "c5", "customer": "csv", "meter": "s", "timestamp": "2026-01-06T10:00:00Z", "region": "eu", "v": "8"},
        {"id": "c6", "customer": "csv", "meter": "s", "timestamp": "2026-01-07T10:00:00Z", "region": "01"},
    ]
    store, _ = workspace(db_url, _catalog(["json", "csv"]))
    try:
        _import(store, tmp_path, jsonl)
        _, catalog = current(store)
        report = import_file(store, catalog, _write_csv(tmp_path / "events.csv", csv_rows), NOW)
        assert not report.rejections, report.rejections
        quantities = _quantities(store)
    finally:
        store.dispose()
    # 1 matches 1, "1", 1.0, 1e0 (text form "1"); not "1.0", true or "true"
    assert quantities["json"]["region_one"] == 5
    assert quantities["json"]["region_text_one"] == 5
    assert quantities["json"]["region_true"] == 2  # true and "true"
    assert quantities["json"]["region_decimal"] == D("110.5")  # 1.50, 15E-1 and "eu"; not "1.50"
    assert quantities["csv"]["region_one"] == 2
    assert quantities["csv"]["region_text_one"] == 2
    assert quantities["csv"]["region_true"] == 1
    assert quantities["csv"]["region_decimal"] == 12


BIG = 9223372036854775807  # 2^63 - 1


TINY = D("1.234567890123456789012345678901234567E-19")  # 37 digits at the smallest magnitude
HUGE = D("99999999999999999999")  # 20 digits, the largest integer below 1e20
NUMBER_CASES = {
    "overflow": [_event("overflow", "o1", 2, v=BIG), _event("overflow", "o2", 3, v=1)],
    "past64": [_event("past64", "p1", 2, v=2**64 + 1), _event("past64", "p2", 3, v=2**64),
               _event("past64", "p3", 4, v=-(2**63) - 1)],
    "extremes": [_event("extremes", "x1", 2, v=HUGE), _event("extremes", "x2", 3, v=TINY),
                 _event("extremes", "x3", 4, v=-HUGE)],
    "near": [_event("near", "n1", 2, v=D("2.0000000000000000001")), _event("near", "n2", 3, v=2)],
}


def test_integers_past_64_bits_and_extreme_decimals_in_every_aggregation(db_url: str, tmp_path: Path) -> None:
    quantities = _run(db_url, tmp_path, NUMBER_CASES)
    overflow = quantities["overflow"]
    assert (overflow["total"], overflow["top"], overflow["low"], overflow["last"]) == (BIG + 1, BIG, 1, 1)
    assert overflow["mean"] == D(BIG + 1) / 2
    # level: BIG from Jan 2 10:00, BIG + 1 from Jan 3 10:00 to Feb 1, over the 31 days of January
    with localcontext() as context:
        context.prec = 60
        area = D(BIG) * (29 * 86400 + 14 * 3600) + (28 * 86400 + 14 * 3600)
        assert overflow["level"] == (area / (31 * 86400)).quantize(D("1e-12"))
    past = quantities["past64"]
    assert past["total"] == 2**65 - 2**63
    assert (past["top"], past["low"], past["last"]) == (2**64 + 1, -(2**63) - 1, -(2**63) - 1)
    extremes = quantities["extremes"]
    assert extremes["total"] == TINY
    assert (extremes["top"], extremes["low"], extremes["last"]) == (HUGE, -HUGE, -HUGE)
    assert extremes["mean"] == D(0)  # TINY / 3 rounds to 12 places
    near = quantities["near"]
    assert (near["top"], near["low"], near["total"]) == (D("2.0000000000000000001"), 2, D("4.0000000000000000001"))


def test_a_boolean_or_text_in_a_numeric_field_is_skipped(db_url: str, tmp_path: Path) -> None:
    """Events stored while the field was not numeric (only a unique_count read it), then a
    catalog with numeric meters on it: true is not 1 and "5" is not 5 for those meters."""
    first = """
  - {code: events, aggregation: count, source: s}
  - {code: users, aggregation: unique_count, field: v, source: s}
"""
    events = [_event("acme", "a1", 2, v=True), _event("acme", "a2", 3, v=False), _event("acme", "a3", 4, v="5"),
              _event("acme", "a4", 5, v=3), _event("acme", "a5", 6, v=None), _event("acme", "a6", 7, v=[1]),
              _event("acme", "a7", 8, v={"n": 1}), _event("acme", "a8", 9, v=True)]
    store, _ = workspace(db_url, _catalog(["acme"], first))
    try:
        _import(store, tmp_path, events)
        version, _ = current(store)
        save_version(store, catalog_document(_catalog(["acme"])), version)
        quantities = _quantities(store)["acme"]
    finally:
        store.dispose()
    assert (quantities["total"], quantities["top"], quantities["low"], quantities["last"]) == (3, 3, 3, 3)
    assert quantities["mean"] == 3
    # level 3 from Jan 5 10:00 on: 26 days 14 hours of 31 days
    assert quantities["level"] == (D(3) * (26 * 86400 + 14 * 3600) / (31 * 86400)).quantize(D("1e-12"))
    assert quantities["events"] == 8


def test_aggregate_usage_counts_only_the_values_a_meter_takes(db_url: str, tmp_path: Path) -> None:
    """The roll-up's event count per meter is the number of values it took (none for null)."""
    events = [_event("acme", "a1", 2, u="a", v=1), _event("acme", "a2", 3, u=None, v=2),
              _event("acme", "a3", 4, u=True, v=3)]
    store, _ = workspace(db_url, _catalog(["acme"]))
    try:
        _import(store, tmp_path, events)
        _, catalog = current(store)
        window = Window(0, "acme", to_micros(datetime(2026, 1, 1, tzinfo=UTC)),
                        to_micros(datetime(2026, 2, 1, tzinfo=UTC)))
        meters: list[MeterSpec] = [catalog.meters["users"], catalog.meters["mean"]]
        usage = aggregate_usage(store, [window], meters)
    finally:
        store.dispose()
    assert (usage[(0, "users")].quantity, usage[(0, "users")].events) == (2, 2)
    assert (usage[(0, "mean")].quantity, usage[(0, "mean")].events) == (2, 3)


def test_the_whole_table_scan_agrees_with_the_joined_windows(db_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Large invoice runs roll up by customer over a shared span (and SQLite reads the table in
    order): the same values give the same usage as the few-windows path."""
    cases = {**UNIQUE_CASES, **LATEST_CASES, **NUMBER_CASES}
    store, _ = workspace(db_url, _catalog(cases))
    try:
        _import(store, tmp_path, [event for events in cases.values() for event in events])
        _, catalog = current(store)
        start, end = to_micros(datetime(2026, 1, 1, tzinfo=UTC)), to_micros(datetime(2026, 2, 1, tzinfo=UTC))
        windows = [Window(index, customer, start, end) for index, customer in enumerate(cases)]
        meters = list(catalog.meters.values())
        joined = aggregate_usage(store, windows, meters)
        monkeypatch.setattr(usage_module, "SCAN_FROM_WINDOWS", 1)
        spans = aggregate_usage(store, windows, meters)
    finally:
        store.dispose()
    assert spans == joined
    assert joined[(list(cases).index("bools"), "users")].quantity == 2
