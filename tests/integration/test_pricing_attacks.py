"""Pricing features meeting each other and hostile input, through what a user does (`catalog
apply`, `events import`, `invoices generate`, the export), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from ratecard.cli import app

from .scenario import write_jsonl

runner = CliRunner()
ENV = {"RATECARD_NOW": "2026-03-01T00:00:00Z"}

TRIAL = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: ai
    currency: EUR
    trial_days: 14
    charges:
      - code: calls
        meter: api_calls
        model: per_unit
        unit_amount: "0.10"
        filters:
          - {code: "=HYPERLINK(\\"http://x\\")", match: {model: [gpt-4o]}, unit_amount: "1.00"}
customers: [{reference: acme, currency: EUR}]
subscriptions: [{reference: acme-ai, customer: acme, plan: ai, start: 2026-01-01}]
"""


def _cli(db_url: str, *args: str) -> str:
    result = runner.invoke(app, [*args, "--db", db_url], env=ENV)
    assert result.exit_code == 0, result.output
    return result.output


def _setup(db_url: str, tmp_path: Path, catalog: str, events: list[dict]) -> None:
    (tmp_path / "catalog.yaml").write_text(catalog)
    _cli(db_url, "catalog", "apply", str(tmp_path / "catalog.yaml"))
    _cli(db_url, "events", "import", str(write_jsonl(tmp_path / "events.jsonl", events)))


def _export(db_url: str, tmp_path: Path, fmt: str = "json") -> str:
    out = tmp_path / f"invoices.{fmt}"
    _cli(db_url, "invoices", "export", "--format", fmt, "--out", str(out))
    return out.read_text()


def test_trial_bills_no_filter_price_and_the_csv_defuses_a_formula_filter_code(db_url: str, tmp_path: Path) -> None:
    # 10 gpt-4o calls (1.00 each) and 5 others (0.10) on Jan 5, inside the trial (until Jan 15); 2
    # gpt-4o calls and 3 others on Jan 20, after it. Feb 1 invoice: the trial's lines at 0.00, then
    # 2 x 1.00 = 2.00 and 3 x 0.10 = 0.30.
    events = [{"id": f"e{day}-{model}-{n}", "customer": "acme", "meter": "api_calls",
               "timestamp": f"2026-01-{day:02d}T10:00:00Z", "properties": {"model": model}}
              for day, model, count in ((5, "gpt-4o", 10), (5, "mini", 5), (20, "gpt-4o", 2), (20, "mini", 3))
              for n in range(count)]
    _setup(db_url, tmp_path, TRIAL, events)
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-02-01", "--json"))
    assert report["failures"] == []
    invoices = json.loads(_export(db_url, tmp_path))
    february = next(item for item in invoices if item["issue_date"] == "2026-02-01")
    usage = sorted((line["quantity"], line["amount"], line["filter"] is not None)
                   for line in february["lines"] if line["kind"] == "usage")
    assert usage == [("10", "0.00", True), ("2", "2.00", True), ("3", "0.30", False), ("5", "0.00", False)]
    assert february["subtotal"] == "2.30"
    rows = list(csv.DictReader(io.StringIO(_export(db_url, tmp_path, "csv"))))
    filters = {row["filter"] for row in rows if row["filter"]}
    assert filters == {"'=HYPERLINK(\"http://x\")"}  # shown as text by a spreadsheet, never run


GROUPS = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: ai
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "10.00", timing: arrears}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.10", group_by: [request_id]}
customers: [{reference: acme, currency: EUR}, {reference: beta, currency: EUR}]
subscriptions:
  - {reference: acme-ai, customer: acme, plan: ai, start: 2026-01-01}
  - {reference: beta-ai, customer: beta, plan: ai, start: 2026-01-01}
"""


def test_a_group_per_event_fails_its_subscription_only(db_url: str, tmp_path: Path) -> None:
    # acme's 10,001 calls each carry their own request_id: 10,001 lines is more than a charge may
    # have, a failure naming acme-ai and the charge; beta's 3 calls are invoiced (10.00 + 0.30).
    events = [{"id": f"a{n}", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-10T10:00:00Z",
               "properties": {"request_id": f"r{n}"}} for n in range(10_001)]
    events += [{"id": f"b{n}", "customer": "beta", "meter": "api_calls", "timestamp": "2026-01-10T10:00:00Z",
                "properties": {"request_id": "same"}} for n in range(3)]
    _setup(db_url, tmp_path, GROUPS, events)
    result = runner.invoke(app, ["invoices", "generate", "--until", "2026-02-01", "--json", "--db", db_url], env=ENV)
    report = json.loads(result.output)
    assert [(item["subscription"], item["charge"]) for item in report["failures"]] == [("acme-ai", "calls")]
    assert "10001 (filter, group) lines" in report["failures"][0]["reason"]
    invoices = json.loads(_export(db_url, tmp_path))
    beta = [item for item in invoices if item["customer"] == "beta" and item["issue_date"] == "2026-02-01"]
    assert [item["subtotal"] for item in beta] == ["10.30"]
    assert not [item for item in invoices if item["customer"] == "acme" and item["issue_date"] == "2026-02-01"]


MIXED = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: a
    currency: EUR
    charges:
      - code: calls
        meter: api_calls
        model: per_unit
        unit_amount: "0.10"
        filters: [{code: gpt, match: {model: [gpt]}, unit_amount: "1.00"}]
  - code: b
    currency: EUR
    charges:
      - code: calls
        meter: api_calls
        model: per_unit
        unit_amount: "0.20"
        filters: [{code: gpt, match: {model: [gpt, gpt-mini]}, unit_amount: "2.00"}]
        group_by: [project]
  - code: capped
    currency: EUR
    charges:
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "1.00", maximum: "50.00"}
    currencies:
      JPY: {charges: {calls: {unit_amount: "150", maximum: "7000"}}}
customers: [{reference: acme, currency: EUR}, {reference: tanaka, currency: JPY}]
subscriptions:
  - reference: acme-ai
    customer: acme
    plan: a
    start: 2026-01-01
    overrides: {calls: {filters: {gpt: {unit_amount: "0.50"}}}}
    changes:
      - {at: 2026-01-16, plan: b, overrides: {calls: {filters: {gpt: {unit_amount: "1.50"}}}}}
  - reference: tanaka-capped
    customer: tanaka
    plan: capped
    start: 2026-01-01
    discounts: [{code: goodwill, amount_off: "1000.5"}]
"""


def _calls(customer: str, day: int, model: str | None, project: str, count: int) -> list[dict]:
    properties = {"project": project, **({"model": model} if model else {})}
    return [{"id": f"{customer}-{day}-{model}-{project}-{n}", "customer": customer, "meter": "api_calls",
             "timestamp": f"2026-01-{day:02d}T10:00:00Z", "properties": properties} for n in range(count)]


def test_filters_groups_and_overrides_across_a_plan_change_and_a_capped_discounted_yen_plan(
        db_url: str, tmp_path: Path) -> None:
    # acme-ai, Jan 1-16 on plan a, its gpt filter overridden to 0.50: 4 gpt calls = 2.00, the 5
    # others (3 gpt-mini, 2 without a model) at 0.10 = 0.50. Jan 16 on, plan b (gpt takes gpt-mini
    # too; per project), gpt overridden to 1.50: p1 4 calls = 6.00, p2 3 calls = 4.50; the default,
    # p2's 2 calls at 0.20 = 0.40. Feb 1: 13.40 EUR.
    # tanaka-capped, JPY: 100 calls x 150 = 15,000, capped at 7,000 (-8,000); 1000.5 JPY off is 1,001
    # (rounded to the yen): 5,999 JPY.
    events = (_calls("acme", 5, "gpt", "p1", 4) + _calls("acme", 5, "gpt-mini", "p1", 3)
              + _calls("acme", 5, None, "p2", 2) + _calls("acme", 20, "gpt", "p1", 4)
              + _calls("acme", 20, "gpt-mini", "p2", 3) + _calls("acme", 20, None, "p2", 2)
              + _calls("tanaka", 10, None, "x", 100))
    _setup(db_url, tmp_path, MIXED, events)
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-02-01", "--json"))
    assert report["failures"] == []
    invoices = json.loads(_export(db_url, tmp_path))
    acme = next(item for item in invoices if item["customer"] == "acme" and item["issue_date"] == "2026-02-01")
    lines = sorted((line["service_start"][:10], line["filter"] or "", json.dumps(line["group"]), line["quantity"],
                    line["amount"]) for line in acme["lines"] if line["quantity"] != "0")
    assert lines == [
        ("2026-01-01", "", "null", "5", "0.50"),
        ("2026-01-01", "gpt", "null", "4", "2.00"),
        ("2026-01-16", "", '{"project": "p2"}', "2", "0.40"),
        ("2026-01-16", "gpt", '{"project": "p1"}', "4", "6.00"),
        ("2026-01-16", "gpt", '{"project": "p2"}', "3", "4.50"),
    ]
    assert acme["subtotal"] == "13.40"
    tanaka = next(item for item in invoices if item["customer"] == "tanaka" and item["issue_date"] == "2026-02-01")
    assert [(line["kind"], line["amount"]) for line in tanaka["lines"]] == [
        ("usage", "15000"), ("maximum", "-8000"), ("discount", "-1001")]
    assert (tanaka["currency"], tanaka["subtotal"]) == ("JPY", "5999")


REFUSED = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: USD}
meters:
  - {code: calls, aggregation: count}
  - {code: volume, aggregation: sum, field: amount}
plans:
  - code: pro
    currency: USD
    charges:
      - code: llm
        meter: calls
        model: per_unit
        unit_amount: "0.10"
        maximum: "5.00"
        filters: [{code: gpt, match: {model: [gpt, "=cmd|' /C calc'!A0"]}, unit_amount: "1.00"}]
      - code: payouts
        meter: volume
        model: graduated_percentage
        tiers: [{up_to: "1000", rate: "1"}, {up_to: null, rate: "0.5"}]
        filters: [{code: eu, match: {region: [eu]}, tiers: [{up_to: null, unit_amount: "1"}]}]
      - {code: card, meter: volume, model: percentage, rate: "2", per_transaction_min_amount: "0.50"}
    currencies:
      JPY:
        charges:
          llm: {unit_amount: "15", maximum: "750", filters: {gpt: {unit_amount: "150"}}}
          payouts: {filters: {eu: {tiers: [{up_to: null, rate: "1"}]}}}
customers: [{reference: acme, currency: USD}]
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-01-01, overrides: {llm: {timing: advance}}}
"""


def test_catalog_check_names_the_path_of_each_refused_combination(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(REFUSED)
    result = runner.invoke(app, ["catalog", "check", str(tmp_path / "catalog.yaml"), "--json"], env=ENV)
    assert result.exit_code == 1
    problems = {item["path"]: item["message"] for item in json.loads(result.output)["problems"]}
    assert problems == {
        # a graduated_percentage filter's tier: a rate, not a unit amount
        "plans[0].charges[1].filters[0].tiers[0].rate":
            "is required by model graduated_percentage (percent of the amount inside the tier)",
        "plans[0].charges[1].filters[0].tiers[0].unit_amount":
            "is not used by model graduated_percentage (give the tier's rate)",
        # a per-event minimum in USD is not one in JPY
        "plans[0].currencies.JPY.charges.card.per_transaction_min_amount":
            "is required: the plan's charge 'card' has a per_transaction_min_amount in USD, and each currency gives "
            "every price",
        # usage billed in advance asked for by an override, on a capped, filtered charge
        "subscriptions[0]":
            "bills usage inside its periods (a usage charge billed in advance), which this version cannot combine "
            "with charge 'llm' filters, charge 'llm' maximum, charge 'payouts' filters, charge 'card' "
            "per_transaction_min_amount: remove one or the other",
    }


TRIAL_DISCOUNT = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: team
    currency: EUR
    trial_days: 10
    charges:
      - {code: seat, model: flat, amount: "31.00"}
customers: [{reference: acme, currency: EUR}]
coupons:
  - {code: HALF, percent_off: "50", duration: forever}
subscriptions:
  - reference: acme-team
    customer: acme
    plan: team
    start: 2026-01-01
    quantity: 2
    coupons: [HALF]
    changes: [{at: 2026-01-11, quantity: 3, proration: none}]
"""


def test_a_trial_ending_with_a_change_bills_the_rest_of_the_period_at_once_with_its_discount(
        db_url: str, tmp_path: Path) -> None:
    # trial until Jan 11; 3 seats from then (the change's proration none has nothing to settle):
    # Jan 11 invoice 3 x 31.00 x 21/31 = 63.00, half off -31.50; Feb 1: 93.00, half off -46.50
    _setup(db_url, tmp_path, TRIAL_DISCOUNT, [])
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-02-01", "--json"))
    assert report["failures"] == []
    invoices = sorted(json.loads(_export(db_url, tmp_path)), key=lambda item: item["issue_date"])
    assert [(item["issue_date"], [(line["kind"], line["amount"]) for line in item["lines"]])
            for item in invoices] == [
        ("2026-01-01", [("advance", "0.00")]),
        ("2026-01-11", [("proration", "63.00"), ("discount", "-31.50")]),
        ("2026-02-01", [("advance", "93.00"), ("discount", "-46.50")]),
    ]
