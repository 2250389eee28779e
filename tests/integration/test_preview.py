"""The upcoming invoice (docs/billing.md, "Upcoming invoice"): usage in [period start, at), priced
like the invoice run, nothing written. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ratecard.cli import app, main
from ratecard.ingest.importer import import_file
from ratecard.services import invoices as invoice_service
from ratecard.services.catalog import current_catalog
from ratecard.services.errors import InvalidInput, NoCatalog
from ratecard.services.preview import UnknownCustomer, preview_invoices
from ratecard.store import Store
from ratecard.store.events import count_by_status
from ratecard.store.invoices import list_invoices

from .scenario import catalog_document, workspace, write_jsonl

D = Decimal
NOW = datetime(2026, 11, 26, tzinfo=UTC)
AT = datetime(2026, 11, 20, tzinfo=UTC)

# base 10.00 in advance, calls at 0.01 each in arrears, a 15.00 minimum; 10% tax; monthly from Oct 1 (UTC)
CATALOG = """
billing_entity: {name: Preview BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: starter
    currency: EUR
    minimum: "15.00"
    charges:
      - {code: base, model: flat, amount: "10.00", timing: advance}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.01"}
customers:
  - {reference: acme, name: Acme, country: NL, currency: EUR, tax_rate: "10", timezone: UTC}
  - {reference: idle, name: Idle, country: NL, currency: EUR, tax_rate: "10", timezone: UTC}
subscriptions:
  - {reference: acme-starter, customer: acme, plan: starter, start: 2026-10-01, billing_anchor: 1}
  - {reference: idle-starter, customer: idle, plan: starter, start: 2026-12-01, billing_anchor: 1}
"""


def _calls(prefix: str, count: int, first: datetime, step: timedelta) -> list[dict]:
    return [{"id": f"{prefix}-{i}", "customer": "acme", "meter": "api_calls",
             "timestamp": (first + i * step).isoformat().replace("+00:00", "Z")} for i in range(count)]


# 50 calls in October (the previous period), 120 in November before AT, 1 exactly at AT and 29 after it
EVENTS = (_calls("oct", 50, datetime(2026, 10, 2, tzinfo=UTC), timedelta(hours=1))
          + _calls("before", 120, datetime(2026, 11, 1, tzinfo=UTC), timedelta(hours=3))
          + _calls("at", 1, AT, timedelta(0))
          + _calls("after", 29, AT + timedelta(hours=1), timedelta(hours=2)))


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Store:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current_catalog(store)
    report = import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", EVENTS), NOW)
    assert report.stored == 200 and not report.rejected
    yield store
    store.dispose()


def _invoice(preview: dict, subscription: str = "acme-starter") -> dict:
    (found,) = [s for s in preview["subscriptions"] if s["subscription"] == subscription]
    (invoice,) = found["invoices"]
    return invoice


def _amounts(invoice: dict) -> list[tuple[str, str, str, str, str]]:
    return [(line["code"], line["service_start"], line["service_end"], line["quantity"], line["amount"])
            for line in invoice["lines"]]


def test_hand_computed_preview_counts_only_events_before_at(store: Store) -> None:
    preview = preview_invoices(store, "acme", AT, NOW).as_dict()
    assert preview["customer"] == "acme" and preview["at"] == "2026-11-20T00:00:00Z"
    (subscription,) = preview["subscriptions"]
    assert (subscription["period_start"], subscription["period_end"]) == ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    # the 120 November calls before AT; not October's 50, not the one at AT (exclusive), not the 29 after
    assert subscription["usage"] == [{"meter": "api_calls", "quantity": "120", "events": 120}]
    invoice = _invoice(preview)
    assert (invoice["status"], invoice["number"], invoice["id"], invoice["issue_date"]) == (
        "preview", None, None, "2026-12-01")
    # calls 120 x 0.01 = 1.20; November spent 10.00 (its advance base) + 1.20 = 11.20 < 15.00: minimum 3.80;
    # December's base 10.00 in advance
    assert _amounts(invoice) == [
        ("base", "2026-12-01", "2027-01-01", "1", "10.00"),
        ("calls", "2026-11-01", "2026-12-01", "120", "1.20"),
        ("minimum", "2026-11-01", "2026-12-01", "1", "3.80"),
    ]
    # 15.00 + 10% = 1.50
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("15.00", "1.50", "16.50")


def test_preview_equals_the_invoice_the_run_cuts_when_no_more_events_arrive(store: Store) -> None:
    # after the last event: all 150 November calls count
    preview = preview_invoices(store, "acme", NOW, NOW).as_dict()
    invoice = _invoice(preview)
    # calls 150 x 0.01 = 1.50; spent 11.50 < 15.00: minimum 3.50; base 10.00 for December
    assert _amounts(invoice) == [
        ("base", "2026-12-01", "2027-01-01", "1", "10.00"),
        ("calls", "2026-11-01", "2026-12-01", "150", "1.50"),
        ("minimum", "2026-11-01", "2026-12-01", "1", "3.50"),
    ]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("15.00", "1.50", "16.50")

    later = datetime(2026, 12, 2, tzinfo=UTC)
    invoice_service.generate(store, datetime(2026, 12, 1, tzinfo=UTC), later)
    (generated,) = [i for i in invoice_service.invoices_json(list_invoices(store))
                    if (i["subscription"], i["issue_date"]) == ("acme-starter", "2026-12-01")]
    assert generated["status"] == "draft"
    same = {key: value for key, value in generated.items() if key not in ("id", "number", "status")}
    assert {key: value for key, value in invoice.items() if key not in ("id", "number", "status")} == same


def test_nothing_is_written(store: Store) -> None:
    invoice_service.generate(store, datetime(2026, 11, 1, tzinfo=UTC), NOW)
    before = [(i.updated_at, invoice_service.invoices_json([i])) for i in list_invoices(store)]
    events = count_by_status(store, "live")
    assert len(before) == 2 and sum(events.values()) == 200  # the Oct 1 and Nov 1 cuts; every event
    preview_invoices(store, "acme", AT, NOW)
    preview_invoices(store, "acme", None, NOW)
    assert [(i.updated_at, invoice_service.invoices_json([i])) for i in list_invoices(store)] == before
    assert count_by_status(store, "live") == events


def test_unknown_customer_and_no_active_subscription(store: Store) -> None:
    with pytest.raises(UnknownCustomer):
        preview_invoices(store, "ghost", AT, NOW)
    with pytest.raises(NoCatalog):  # the sandbox has a catalog of its own, none here
        preview_invoices(store, "acme", AT, NOW, "sandbox")
    # idle's subscription starts on Dec 1: nothing is upcoming in November
    assert preview_invoices(store, "idle", AT, NOW).as_dict() == {"customer": "idle", "at": "2026-11-20T00:00:00Z",
                                                                 "subscriptions": []}


def test_at_is_bounded_by_the_invoice_run_horizon(store: Store) -> None:
    with pytest.raises(InvalidInput) as refused:
        preview_invoices(store, "acme", NOW + timedelta(days=400), NOW)
    assert refused.value.field == "at"
    # within the horizon: December's period, no usage yet, its own minimum
    ahead = preview_invoices(store, "acme", datetime(2026, 12, 10, tzinfo=UTC), NOW).as_dict()
    invoice = _invoice(ahead)
    assert ahead["subscriptions"][0]["usage"] == [{"meter": "api_calls", "quantity": "0", "events": 0}]
    assert _amounts(invoice) == [
        ("base", "2027-01-01", "2027-02-01", "1", "10.00"),
        ("calls", "2026-12-01", "2027-01-01", "0", "0.00"),
        ("minimum", "2026-12-01", "2027-01-01", "1", "5.00"),
    ]


def test_a_catalog_given_replaces_the_stored_one(store: Store) -> None:
    cheaper = CATALOG.replace('unit_amount: "0.01"', 'unit_amount: "0.001"')
    from ratecard.catalog import build_catalog

    catalog = build_catalog(catalog_document(cheaper))
    preview = preview_invoices(store, "acme", AT, NOW, catalog=catalog, catalog_version=99).as_dict()
    invoice = _invoice(preview)
    assert invoice["catalog_version"] == 99
    # 120 x 0.001 = 0.12; minimum 15.00 - 10.00 - 0.12 = 4.88
    assert [(line["code"], line["amount"]) for line in invoice["lines"]] == [
        ("base", "10.00"), ("calls", "0.12"), ("minimum", "4.88")]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seconds=st.integers(min_value=0, max_value=30 * 86400 - 1))
def test_usage_so_far_is_the_events_before_at(store: Store, seconds: int) -> None:
    at = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    preview = preview_invoices(store, "acme", at, NOW).as_dict()
    november = datetime(2026, 11, 1, tzinfo=UTC)
    before = sum(1 for event in EVENTS if november <= datetime.fromisoformat(event["timestamp"]) < at)
    (subscription,) = preview["subscriptions"]
    assert subscription["usage"] == [{"meter": "api_calls", "quantity": str(before), "events": before}]
    lines = {line["code"]: D(line["amount"]) for line in _invoice(preview)["lines"]}
    calls = (D(before) * D("0.01")).quantize(D("0.01"))
    assert lines["calls"] == calls
    # the minimum tops November up to 15.00 (its 10.00 base counts), never below zero
    assert lines.get("minimum", D(0)) == max(D("15.00") - D("10.00") - calls, D(0))


# ---------------------------------------------------------------- CLI (in-process)

runner = CliRunner()


def _cli(db_url: str, *args: str):
    return runner.invoke(app, ["invoices", "preview", *args, "--db", db_url], env={"RATECARD_NOW": "2026-11-26T00:00:00Z"})


def test_cli_json_is_the_service_document(store: Store, db_url: str) -> None:
    result = _cli(db_url, "acme", "--at", "2026-11-20T01:00:00+01:00", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == preview_invoices(store, "acme", AT, NOW).as_dict()


def test_cli_table_unknown_customer_and_idle_customer(store: Store, db_url: str) -> None:
    table = _cli(db_url, "acme", "--at", "2026-11-20T00:00:00Z")
    assert table.exit_code == 0, table.output
    for text in ("api_calls", "120", "minimum", "3.80", "16.50"):
        assert text in table.stdout
    unknown = _cli(db_url, "ghost")
    assert unknown.exit_code == 1
    assert "ghost" in unknown.stderr and unknown.stdout == ""
    idle = _cli(db_url, "idle", "--json")
    assert idle.exit_code == 0 and json.loads(idle.stdout)["subscriptions"] == []


def test_cli_refuses_an_at_without_offset(store: Store, db_url: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RATECARD_NOW", "2026-11-26T00:00:00Z")
    for bad in ("2026-11-20", "2026-11-20T00:00:00", "20261120T000000Z"):
        assert main(["invoices", "preview", "acme", "--at", bad, "--db", db_url]) == 2
        assert "--at" in capsys.readouterr().err
