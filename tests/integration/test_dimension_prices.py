"""Prices per dimension through what a user does, on SQLite and PostgreSQL: import events, run the
invoices, read the lines (`invoices show --json`, the export); and a property: both stores split a
meter's events per (filter, group) alike, and as the domain does (docs/billing.md, "Prices per dimension")."""

from __future__ import annotations

import csv
import itertools
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from ratecard.billing.run import charged_meters, generate_invoices
from ratecard.domain.dimensions import split_usage, split_weighted
from ratecard.domain.instants import to_micros
from ratecard.golive.legacy import Mapping, read_legacy
from ratecard.golive.reconcile import reconcile
from ratecard.ingest.importer import import_file
from ratecard.store import Store
from ratecard.store.catalogs import save_version
from ratecard.store.invoices import change_status, list_invoices
from ratecard.store.usage import Window, aggregate_usage, few_windows_usage

from ..e2e.harness import Cli
from .scenario import NOW, catalog_document, current, workspace
from .test_store_agreement import EVENT, FIRST_EVENT, MISSING, STEP, _json

D = Decimal
CATALOG = """
meters:
  - {code: llm_tokens, aggregation: sum, field: tokens}
  - {code: calls, aggregation: count}
plans:
  - code: ai
    currency: EUR
    charges:
      - code: llm
        meter: llm_tokens
        model: per_unit
        unit_amount: "0.000002"
        filters:
          - {code: gpt4o, match: {model: [gpt-4o]}, unit_amount: "0.00001"}
          - {code: mini, match: {model: [gpt-4o-mini]}, unit_amount: "0.0000006"}
      - code: api
        meter: calls
        model: graduated
        tiers: [{up_to: 1000, unit_amount: "0"}, {up_to: null, unit_amount: "0.001"}]
        group_by: [project_id]
customers: [{reference: acme, currency: EUR}]
subscriptions: [{reference: acme-ai, customer: acme, plan: ai, start: 2026-01-01}]
"""


def _events() -> list[dict[str, Any]]:
    tokens = [("gpt-4o", 120_000), ("gpt-4o-mini", 2_000_000), ("claude-3", 500_000)]
    events = [{"id": f"t{index}", "customer": "acme", "meter": "llm_tokens",
               "timestamp": f"2026-01-{10 + index}T10:00:00Z", "properties": {"model": model, "tokens": count}}
              for index, (model, count) in enumerate(tokens)]
    calls = [("a", 1500), ("b", 800)]
    events += [{"id": f"c-{project}-{index}", "customer": "acme", "meter": "calls",
                "timestamp": f"2026-01-{2 + index % 20:02d}T{index % 24:02d}:00:00Z",
                "properties": {"project_id": project}}
               for project, count in calls for index in range(count)]
    return events


def _billed(db_url: str, tmp_path: Path) -> Store:
    store, version = workspace(db_url, CATALOG)
    _, catalog = current(store)
    path = tmp_path / "events.jsonl"
    path.write_text("".join(_json(event) + "\n" for event in _events()), encoding="utf-8")
    report = import_file(store, catalog, path, NOW)
    assert not report.rejections, report.rejections
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    return store


def test_each_filter_and_each_group_is_a_line_of_its_own(db_url: str, tmp_path: Path) -> None:
    store = _billed(db_url, tmp_path)
    try:
        january = next(invoice for invoice in list_invoices(store) if invoice.issue_date == "2026-02-01")
        shown = Cli(tmp_path)("invoices", "show", january.display_number, "--json", db=db_url)
        assert shown.code == 0, shown
        lines = [(line["code"], line["filter"], line["group"], line["quantity"], line["amount"])
                 for line in shown.json()["lines"]]
        # 120,000 × 0.00001 + 2,000,000 × 0.0000006 + 500,000 × 0.000002 = 1.20 + 1.20 + 1.00 = 3.40;
        # calls per project, 1,000 free each: a 500 × 0.001 = 0.50, b 0 (not 1,300 × 0.001 = 1.30)
        assert lines == [("llm", "gpt4o", None, "120000", "1.20"), ("llm", "mini", None, "2000000", "1.20"),
                         ("llm", None, None, "500000", "1.00"),
                         ("api", None, {"project_id": "a"}, "1500", "0.50"),
                         ("api", None, {"project_id": "b"}, "800", "0.00")]
        assert shown.json()["subtotal"] == "3.90"
        table = Cli(tmp_path)("invoices", "show", january.display_number, db=db_url)
        assert "llm (gpt4o)" in table.out and "api (project_id a)" in table.out, table
        exported = Cli(tmp_path)("invoices", "export", "--out", str(tmp_path / "out.json"), db=db_url)
        assert exported.code == 0, exported
        assert '"filter": "gpt4o"' in (tmp_path / "out.json").read_text()
        as_csv = Cli(tmp_path)("invoices", "export", "--format", "csv", "--out", str(tmp_path / "out.csv"), db=db_url)
        assert as_csv.code == 0, as_csv
        rows = list(csv.DictReader((tmp_path / "out.csv").read_text().splitlines()))
        assert [(row["code"], row["filter"], row["group"]) for row in rows if row["code"] in ("llm", "api")] == [
            ("llm", "gpt4o", ""), ("llm", "mini", ""), ("llm", "", ""), ("api", "", '{"project_id":"a"}'),
            ("api", "", '{"project_id":"b"}')]
        pdf = Cli(tmp_path)("invoices", "pdf", january.display_number, "--out", str(tmp_path / "jan.pdf"), db=db_url)
        assert pdf.code == 0, pdf
        text = " ".join(page.extract_text() for page in PdfReader(tmp_path / "jan.pdf").pages)
        assert "llm (gpt4o)" in text and "api (project_id b)" in text
        # the upcoming invoice prices the period so far the same way, and shows each meter's own total
        upcoming = Cli(tmp_path)("invoices", "preview", "acme", "--at", "2026-01-31T00:00:00Z", "--json", db=db_url)
        assert upcoming.code == 0, upcoming
        subscription = upcoming.json()["subscriptions"][0]
        assert {row["meter"]: row["quantity"] for row in subscription["usage"]} == {"calls": "2300",
                                                                                   "llm_tokens": "2620000"}
        assert [(line["filter"], line["group"], line["amount"]) for line in subscription["invoices"][0]["lines"]
                if line["kind"] == "usage"] == [("gpt4o", None, "1.20"), ("mini", None, "1.20"), (None, None, "1.00"),
                                                (None, {"project_id": "a"}, "0.50"), (None, {"project_id": "b"}, "0.00")]
        # nothing changed: a second run rewrites no draft (the lines with the same code stay apart)
        version, catalog = current(store)
        again = generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
        assert (again.created, again.updated) == (0, 0)
    finally:
        store.dispose()


SEATS = """
meters:
  - {code: seats, aggregation: weighted_sum, field: delta}
plans:
  - code: team
    currency: EUR
    charges:
      - {code: seats, meter: seats, model: per_unit, unit_amount: "1", group_by: [region]}
customers: [{reference: acme, currency: EUR}]
subscriptions: [{reference: acme-team, customer: acme, plan: team, start: 2026-01-01}]
"""


def test_a_weighted_sum_level_carries_over_per_group(db_url: str, tmp_path: Path) -> None:
    store, version = workspace(db_url, SEATS)
    try:
        _, catalog = current(store)
        events = [{"id": "s1", "customer": "acme", "meter": "seats", "timestamp": "2026-01-01T00:00:00Z",
                   "properties": {"region": "eu", "delta": 28}},
                  {"id": "s2", "customer": "acme", "meter": "seats", "timestamp": "2026-02-08T00:00:00Z",
                   "properties": {"region": "eu", "delta": -28}},
                  {"id": "s3", "customer": "acme", "meter": "seats", "timestamp": "2026-02-15T00:00:00Z",
                   "properties": {"region": "us", "delta": 56}}]
        path = tmp_path / "seats.jsonl"
        path.write_text("".join(_json(event) + "\n" for event in events), encoding="utf-8")
        assert not import_file(store, catalog, path, NOW).rejections
        generate_invoices(store, catalog, version, date(2026, 3, 1), NOW)
        february = next(invoice for invoice in list_invoices(store) if invoice.issue_date == "2026-03-01")
        # eu: January's 28 seats for 7 of February's 28 days = 7; us: 56 seats for 14 of 28 days = 28
        assert [(line.group_values, line.quantity, line.amount) for line in february.lines] == [
            ('{"region":"eu"}', D(7), D("7.00")), ('{"region":"us"}', D(28), D("28.00"))]
    finally:
        store.dispose()


def _legacy(store: Store, path: Path, change: dict[tuple[str, str | None], str]) -> Path:
    """The legacy system's CSV export billing what ratecard bills, but for the amounts in `change`
    by (charge, filter); each line names its filter and group."""
    rows = []
    for invoice in list_invoices(store):
        for line in invoice.lines:
            amount = change.get((line.code, line.filter_code), f"{line.amount:f}")
            rows.append({"customer": invoice.customer, "code": line.code, "filter": line.filter_code or "",
                         "group": line.group_values or "", "service_start": line.service_start,
                         "service_end": line.service_end, "quantity": f"{line.quantity:f}", "amount": amount})
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_reconcile_matches_on_charge_filter_and_group_and_names_a_filter_at_the_default_price(
        db_url: str, tmp_path: Path) -> None:
    store = _billed(db_url, tmp_path)
    try:
        _, catalog = current(store)
        same = reconcile(store, catalog, read_legacy(_legacy(store, tmp_path / "same.csv", {}), Mapping({})))
        assert same.differences == [] and same.matched == same.ratecard_lines
        # the legacy system priced gpt-4o's 120,000 tokens at the default 0.000002: 0.24, not 1.20
        legacy = read_legacy(_legacy(store, tmp_path / "default.csv", {("llm", "gpt4o"): "0.24"}), Mapping({}))
        found = reconcile(store, catalog, legacy).as_dict()["differences"]
        assert [(d["code"], d["filter"], d["field"], d["ratecard"], d["legacy"], d["cause"]) for d in found] == [
            ("llm", "gpt4o", "amount", "1.20", "0.24", "filter_default_price")]
    finally:
        store.dispose()


def test_a_late_event_corrects_the_line_of_its_filter_and_group_after_the_filters_changed(db_url: str,
                                                                                         tmp_path: Path) -> None:
    store = _billed(db_url, tmp_path)
    try:
        january = next(invoice for invoice in list_invoices(store) if invoice.issue_date == "2026-02-01")
        change_status(store, january.id, "final", 1, "RC")
        # then the filters change (the final invoice stays priced by its own version's filters)
        version, _ = current(store)
        save_version(store, catalog_document(CATALOG.replace("match: {model: [gpt-4o-mini]}",
                                                             "match: {model: [gpt-4o-mini, o3-mini]}")), version)
        _, catalog = current(store)
        late = tmp_path / "late.jsonl"
        late.write_text("".join(_json(event) + "\n" for event in [
            {"id": "late-1", "customer": "acme", "meter": "llm_tokens", "timestamp": "2026-01-20T10:00:00Z",
             "properties": {"model": "gpt-4o-mini", "tokens": 1_000_000}},
            {"id": "late-2", "customer": "acme", "meter": "calls", "timestamp": "2026-01-20T10:00:00Z",
             "properties": {"project_id": "b"}}]), encoding="utf-8")
        assert not import_file(store, catalog, late, NOW).rejections
        version, catalog = current(store)
        generate_invoices(store, catalog, version, date(2026, 3, 1), NOW)
        adjustments = [(line.code, line.filter_code, line.group_values, line.amount)
                       for invoice in list_invoices(store) for line in invoice.lines if line.kind == "adjustment"]
        # 1,000,000 more mini tokens × 0.0000006 = 0.60 on the mini line alone; project b's 801st call is free
        assert adjustments == [("llm", "mini", None, D("0.60"))]
    finally:
        store.dispose()


# ---------------------------------------------------------------- both stores split alike

SPLIT_METERS = """
  - {code: events, aggregation: count, source: s}
  - {code: users, aggregation: unique_count, field: u, source: s}
  - {code: total, aggregation: sum, field: v, source: s}
  - {code: top, aggregation: max, field: v, source: s}
  - {code: last, aggregation: latest, field: v, source: s}
  - {code: mean, aggregation: average, field: v, source: s}
  - {code: level, aggregation: weighted_sum, field: v, source: s}
"""
SPLIT_CODES = ("events", "users", "total", "top", "last", "mean", "level")
IMPORT_ONLY = "\n  - {code: events, aggregation: count, source: s}\n"
FILTERS = ("        filters:\n"
           "          - {code: one, match: {region: [1, eu]}, unit_amount: '1'}\n"
           "          - {code: both, match: {region: [1.5, 'true', eu], tier: [gold]}, unit_amount: '2'}\n"
           "        group_by: [tier, u]\n")


def _split_catalog(meters: str, customers: list[str]) -> str:
    charges = "".join(f"      - code: {code}\n        meter: {code}\n        model: per_unit\n"
                      f"        unit_amount: '0.5'\n" + FILTERS for code in SPLIT_CODES if f"code: {code}," in meters)
    return ("meters:" + meters + "plans:\n  - code: p\n    currency: EUR\n    charges:\n" + charges
            + "customers:\n" + "".join(f"  - {{reference: '{name}', currency: EUR}}\n" for name in customers)
            + "subscriptions:\n" + "".join(f"  - {{reference: '{name}-p', customer: '{name}', plan: p, "
                                           "start: 2025-12-01}\n" for name in customers))


@pytest.fixture
def stores(store_urls: dict[str, str]):
    opened = {name: workspace(url, _split_catalog(IMPORT_ONLY, ["seed"]))[0] for name, url in store_urls.items()}
    yield opened
    for store in opened.values():
        store.dispose()


EXAMPLES = itertools.count()
WINDOW = (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 20, tzinfo=UTC))


def _split(store: Store, folder: Path, customers: list[str], events: list[dict[str, Any]]) -> dict:
    version, _ = current(store)
    version, _ = save_version(store, catalog_document(_split_catalog(IMPORT_ONLY, customers)), version)
    _, catalog = current(store)
    path = folder / f"{uuid.uuid4().hex}.jsonl"
    path.write_text("".join(_json({"id": e["id"], "customer": e["customer"], "meter": "s",
                                   "timestamp": e["at"].isoformat(), "properties": e["properties"]}) + "\n"
                            for e in events), encoding="utf-8")
    assert not import_file(store, catalog, path, NOW).rejections
    save_version(store, catalog_document(_split_catalog(SPLIT_METERS, customers)), version)
    _, catalog = current(store)
    meters = charged_meters(catalog, catalog.subscriptions.values())
    windows = [Window(index, customer, to_micros(WINDOW[0]), to_micros(WINDOW[1]))
               for index, customer in enumerate(customers)]
    many = aggregate_usage(store, windows, meters)
    assert few_windows_usage(store, windows, meters) == many
    return {(key, code.split("\x1f")[0]): usage for (key, code), usage in many.items()}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(EVENT, min_size=1, max_size=20, unique_by=lambda e: e["id"]))
def test_both_stores_split_random_events_as_the_domain_does(stores: dict[str, Store], tmp_path: Path,
                                                             drawn: list[dict[str, Any]]) -> None:
    tag = f"d{next(EXAMPLES)}"
    customers = [f"{tag}-a", f"{tag}-b"]
    events = []
    for item in drawn:
        properties = {key: item[key] for key in ("v", "u", "region", "tier") if item[key] is not MISSING}
        events.append({"id": f"{tag}-{item['id']}", "customer": f"{tag}-{item['customer']}",
                       "at": FIRST_EVENT + item["step"] * STEP, "properties": properties})
    split = {name: _split(store, tmp_path, customers, events) for name, store in stores.items()}
    assert split["sqlite"] == split["postgresql"]
    _, catalog = current(stores["sqlite"])
    charges = {charge.meter: charge for charge in catalog.subscriptions[f"{customers[0]}-p"].plan.charges}
    for index, customer in enumerate(customers):
        inside = sorted((e for e in events if e["customer"] == customer and WINDOW[0] <= e["at"] < WINDOW[1]),
                        key=lambda e: (e["at"], e["id"]))
        # events before the subscription's start (the window's) are no one's: not in the level either
        before = sorted((e for e in events if e["customer"] == customer and WINDOW[0] <= e["at"] < WINDOW[1]),
                        key=lambda e: (e["at"], e["id"]))
        for code in SPLIT_CODES:
            meter, charge = catalog.meters[code], charges[code]
            if code == "level":
                expected = split_weighted(meter.field, charge.filters, charge.group_by,
                                          [(e["at"], e["properties"]) for e in before], *WINDOW)
            else:
                expected = split_usage(meter.aggregation, meter.field, charge.filters, charge.group_by,
                                       [(e["at"], e["properties"]) for e in inside])
            found = split["sqlite"].get((index, code))
            assert (found.parts if found else ()) == expected.parts, (customer, code)
            if code in ("events", "total"):  # the parts add up to the meter
                assert sum((usage.quantity for _, usage in expected.parts), D(0)) == expected.quantity
