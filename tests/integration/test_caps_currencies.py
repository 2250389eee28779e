"""Caps and prices per currency through the CLI, on SQLite and PostgreSQL: the lines and totals a
user sees in the export, and reconciliation naming a cap applied on one side only."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from ratecard.cli import app

from .scenario import write_jsonl

D = Decimal
runner = CliRunner()
ENV = {"RATECARD_NOW": "2026-11-26T00:00:00Z"}

CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
  - {code: api_calls, aggregation: count}
plans:
  - code: capped
    currency: EUR
    maximum: {amount: "600.00", charges: [tokens, calls]}
    charges:
      - {code: tokens, meter: tokens, model: per_unit, unit_amount: "1", maximum: "500.00"}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.50"}
  - code: intl
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "50.00"}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.50"}
    currencies:
      USD: {charges: {base: {amount: "55.00"}, calls: {unit_amount: "0.55"}}}
      JPY: {charges: {base: {amount: "7500"}, calls: {unit_amount: "0.3"}}}
customers:
  - {reference: acme, name: Acme, currency: EUR, tax_rate: "21"}
  - {reference: beta, name: Beta, currency: EUR}
  - {reference: gamma, name: Gamma, currency: EUR}
  - {reference: euro, name: Euro GmbH, currency: EUR}
  - {reference: yankee, name: Yankee Inc, currency: USD}
  - {reference: nippon, name: Nippon KK, currency: JPY}
subscriptions:
  - {reference: acme-capped, customer: acme, plan: capped, start: 2026-01-15, billing_anchor: 1}
  - {reference: beta-capped, customer: beta, plan: capped, start: 2026-01-01}
  - {reference: gamma-capped, customer: gamma, plan: capped, start: 2026-01-15, billing_anchor: 1}
  - {reference: euro-intl, customer: euro, plan: intl, start: 2026-01-01}
  - {reference: yankee-intl, customer: yankee, plan: intl, start: 2026-01-01}
  - {reference: nippon-intl, customer: nippon, plan: intl, start: 2026-01-01}
"""


def _cli(db_url: str, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--db", db_url], env=ENV)
    assert result.exit_code == code, result.output
    return result.output


def _setup(db_url: str, tmp_path: Path) -> list[dict]:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    _cli(db_url, "catalog", "apply", str(tmp_path / "catalog.yaml"))
    events = [{"id": "acme-tokens", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
               "properties": {"tokens": 400}},
              # beta, January: 900 tokens (capped at 500), 300 calls (150.00): the plan caps both at 600
              {"id": "beta-tokens", "customer": "beta", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
               "properties": {"tokens": 900}},
              {"id": "gamma-tokens", "customer": "gamma", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
               "properties": {"tokens": 700}}]
    events += [{"id": f"beta-call-{n}", "customer": "beta", "meter": "api_calls",
                "timestamp": "2026-01-21T10:00:00Z"} for n in range(300)]
    events += [{"id": f"{customer}-call-{n}", "customer": customer, "meter": "api_calls",
                "timestamp": "2026-01-10T10:00:00Z"} for customer in ("euro", "yankee", "nippon") for n in range(101)]
    _cli(db_url, "events", "import", str(write_jsonl(tmp_path / "events.jsonl", events)))
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-02-01", "--json"))
    assert report["failures"] == []
    out = tmp_path / "invoices.json"
    _cli(db_url, "invoices", "export", "--format", "json", "--out", str(out))
    return json.loads(out.read_text())


def _closing(invoices: list[dict], customer: str) -> dict:
    return next(item for item in invoices if item["customer"] == customer and item["issue_date"] == "2026-02-01")


def _lines(invoice: dict, start: str = "2026-01") -> list[tuple[str, str, Decimal]]:
    return [(line["code"], line["kind"], D(line["amount"])) for line in invoice["lines"]
            if line["service_start"].startswith(start)]


def test_caps_on_the_invoice(db_url: str, tmp_path: Path) -> None:
    invoices = _setup(db_url, tmp_path)
    acme = _closing(invoices, "acme")
    # the worked example: 17 of 31 days, cap 500.00 × 17/31 = 274.19; 400.00 of tokens -> -125.81
    assert _lines(acme) == [("tokens", "usage", D("400.00")), ("calls", "usage", D("0")),
                            ("maximum:tokens", "maximum", D("-125.81"))]
    cap = next(line for line in acme["lines"] if line["kind"] == "maximum")
    assert cap["description"] == "Maximum 500.00 EUR per period on tokens (prorated 17/31 days: 274.19 EUR)"
    assert (cap["service_start"], cap["service_end"]) == ("2026-01-15", "2026-02-01")
    assert (D(acme["subtotal"]), D(acme["tax"]), D(acme["total"])) == (D("274.19"), D("57.58"), D("331.77"))
    beta = _closing(invoices, "beta")
    # tokens 900 -> 500 by their own cap; + calls 150.00 = 650.00 -> the plan's 600.00 takes -50.00
    assert _lines(beta) == [("tokens", "usage", D("900.00")), ("calls", "usage", D("150.00")),
                            ("maximum:tokens", "maximum", D("-400.00")), ("maximum", "maximum", D("-50.00"))]
    assert D(beta["total"]) == D("600.00")


def test_each_customer_is_invoiced_in_its_currency(db_url: str, tmp_path: Path) -> None:
    invoices = _setup(db_url, tmp_path)
    expected = {"euro": ("EUR", D("50.50"), D("50.00")), "yankee": ("USD", D("55.55"), D("55.00")),
                # 101 × 0.3 = 30.3 JPY -> 30: yen have no minor unit
                "nippon": ("JPY", D("30"), D("7500"))}
    for customer, (currency, calls, base) in expected.items():
        invoice = _closing(invoices, customer)
        assert invoice["currency"] == currency
        assert _lines(invoice) == [("calls", "usage", calls)]
        assert _lines(invoice, "2026-02") == [("base", "advance", base)]
        assert D(invoice["total"]) == calls + base
        assert invoice["total"] == f"{calls + base:f}"  # written with the currency's digits
        first = next(item for item in invoices if item["customer"] == customer and item["issue_date"] == "2026-01-01")
        assert (first["currency"], D(first["total"])) == (currency, base)


def test_reconcile_names_a_cap_applied_on_one_side_only(db_url: str, tmp_path: Path) -> None:
    invoices = _setup(db_url, tmp_path)
    rows = [{"customer": item["customer"], "code": line["code"], "service_start": line["service_start"],
             "service_end": line["service_end"], "quantity": line["quantity"], "amount": line["amount"]}
            for item in invoices for line in item["lines"]]
    # acme: the legacy system netted the cap into the tokens line (400.00 -> 274.19), no cap line
    tokens = next(row for row in rows if row["customer"] == "acme" and row["code"] == "tokens")
    tokens["amount"] = "274.19"
    # beta: the legacy system applied no plan cap
    rows = [row for row in rows if not (row["customer"] in ("acme", "beta") and row["code"] == "maximum")
            and not (row["customer"] == "acme" and row["code"] == "maximum:tokens")]
    # gamma: the legacy system capped 700.00 of tokens at the full 500.00 in a 17-day period, in the line
    gamma = next(row for row in rows if row["customer"] == "gamma" and row["code"] == "tokens")
    gamma["amount"] = "500.00"
    rows = [row for row in rows if not (row["customer"] == "gamma" and row["code"] == "maximum:tokens")]
    # euro: the legacy system capped a charge ratecard does not cap
    rows.append({"customer": "euro", "code": "maximum:calls", "service_start": "2026-01-01",
                 "service_end": "2026-02-01", "quantity": "1", "amount": "-0.50"})
    legacy = tmp_path / "legacy.csv"
    with legacy.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = json.loads(_cli(db_url, "reconcile", str(legacy), "--json", code=1))
    found = {(d["customer"], d["code"], d["field"]): d for d in report["differences"]}
    assert set(found) == {("acme", "tokens", "amount"), ("acme", "maximum:tokens", "line"),
                          ("beta", "maximum", "line"), ("euro", "maximum:calls", "line"),
                          ("gamma", "tokens", "amount"), ("gamma", "maximum:tokens", "line")}
    assert {key: d["cause"] for key, d in found.items()} == dict.fromkeys(found, "cap")
    assert found[("acme", "tokens", "amount")]["cap"] == "maximum:tokens"
    assert found[("acme", "maximum:tokens", "line")]["legacy_netted_into"] == "tokens"
    # the figures stay figures (a program reads "legacy" as a number or null); the cap's story is beside them
    assert (found[("acme", "tokens", "amount")]["legacy"], found[("acme", "tokens", "amount")]["legacy_cap"]) == (
        "274.19", "netted the cap into the charge")
    assert (found[("beta", "maximum", "line")]["legacy"], found[("beta", "maximum", "line")]["legacy_cap"]) == (
        None, "no cap line")
    assert (found[("euro", "maximum:calls", "line")]["ratecard"],
            found[("euro", "maximum:calls", "line")]["ratecard_cap"]) == (None, "no cap line")
    assert (found[("gamma", "tokens", "amount")]["legacy"], found[("gamma", "tokens", "amount")]["legacy_cap"]) == (
        "500.00", "capped at the maximum without proration")
    assert report["summary"]["by_cause"]["cap"]["count"] == 6


def test_a_backdated_cap_override_corrects_the_final_invoice(db_url: str, tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    assert json.loads(_cli(db_url, "invoices", "finalize", "--due", "--json"))
    # beta's tokens capped at 300.00 from its start: an override is a term of the subscription, it reaches back
    changed = CATALOG.replace("{reference: beta-capped, customer: beta, plan: capped, start: 2026-01-01}",
                              "{reference: beta-capped, customer: beta, plan: capped, start: 2026-01-01, "
                              "overrides: {tokens: {maximum: '300.00'}}}")
    (tmp_path / "catalog.yaml").write_text(changed)
    _cli(db_url, "catalog", "apply", str(tmp_path / "catalog.yaml"))
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-03-01", "--json"))
    assert report["failures"] == []
    out = tmp_path / "after.json"
    _cli(db_url, "invoices", "export", "--format", "json", "--out", str(out))
    beta = sorted((item for item in json.loads(out.read_text()) if item["customer"] == "beta"),
                  key=lambda item: item["issue_date"])
    january = next(item for item in beta if item["issue_date"] == "2026-02-01")
    assert january["status"] == "final" and D(january["total"]) == D("600.00")  # never edited
    # January now: tokens 900 -> 300 (-600.00 instead of -400.00); 300 + calls 150 = 450 is under the
    # plan's 600: no plan cap (instead of -50.00). The next invoice corrects both lines.
    corrections = sorted((line["code"], D(line["amount"]), line["service_start"])
                         for item in beta for line in item["lines"] if line["kind"] == "adjustment")
    assert corrections == [("maximum", D("50.00"), "2026-01-01"), ("maximum:tokens", D("-200.00"), "2026-01-01")]
