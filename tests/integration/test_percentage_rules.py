"""Percentage charges priced event by event (per-transaction bounds, free units) and graduated_percentage
through `ratecard invoices generate` and the upcoming invoice, on SQLite and PostgreSQL: the lines a user
sees, with hand-computed amounts (docs/billing.md)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from ratecard.cli import app

D = Decimal
runner = CliRunner()
ENV = {"RATECARD_NOW": "2026-02-20T00:00:00Z"}

CATALOG = """
billing_entity: {name: Acme Payments BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: payments, aggregation: sum, field: amount}
  - {code: calls, aggregation: count}
plans:
  - code: card
    currency: EUR
    charges:
      - {code: card_fees, meter: payments, model: percentage, rate: "2", fixed_amount: "0.10",
         per_transaction_min_amount: "0.50", per_transaction_max_amount: "15.00"}
      - {code: calls, meter: calls, model: per_unit, unit_amount: "0.01"}
  - code: free
    currency: EUR
    charges:
      - {code: card_fees, meter: payments, model: percentage, rate: "1.2", fixed_amount: "0.10",
         free_units_per_events: 3, free_units_per_total_aggregation: "500"}
  - code: plain
    currency: EUR
    charges:
      - {code: card_fees, meter: payments, model: percentage, rate: "2", fixed_amount: "0.10"}
  - code: volume
    currency: EUR
    charges:
      - code: volume_fees
        meter: payments
        model: graduated_percentage
        tiers:
          - {up_to: "1000", rate: "1"}
          - {up_to: null, rate: "0.5", flat_amount: "5"}
customers:
  - {reference: acme, currency: EUR}
  - {reference: beta, currency: EUR}
  - {reference: gamma, currency: EUR}
  - {reference: delta, currency: EUR}
subscriptions:
  - {reference: acme-card, customer: acme, plan: card, start: 2026-01-01}
  - {reference: beta-free, customer: beta, plan: free, start: 2026-01-01}
  - {reference: gamma-volume, customer: gamma, plan: volume, start: 2026-01-01}
  # the plan's plain percentage with the first 500.00 free for this subscription only
  - {reference: delta-plain, customer: delta, plan: plain, start: 2026-01-01,
     overrides: {card_fees: {free_units_per_total_aggregation: "500.00"}}}
"""

# (id, customer, timestamp, amount as JSON text)
PAYMENTS = [
    ("acme-1", "acme", "2026-01-05T10:00:00Z", "50.00"),
    ("acme-2", "acme", "2026-01-10T10:00:00Z", "200.00"),
    ("acme-3", "acme", "2026-01-20T10:00:00Z", "1000.00"),
    ("acme-4", "acme", "2026-02-02T10:00:00Z", "10.00"),
    # Lago's example: the first 3 events or 500 free; the last two share a timestamp, and the one
    # whose id comes first byte by byte ("Z" before "a") is the third, free, event
    ("beta-1", "beta", "2026-01-03T10:00:00Z", "200"),
    ("beta-2", "beta", "2026-01-04T10:00:00Z", "100"),
    ("beta-a", "beta", "2026-01-05T10:00:00Z", "50"),
    ("beta-Z", "beta", "2026-01-05T10:00:00Z", "100"),
    ("gamma-1", "gamma", "2026-01-07T10:00:00Z", "1000.00"),
    ("gamma-2", "gamma", "2026-01-08T10:00:00Z", "2000.00"),
    ("delta-1", "delta", "2026-01-03T10:00:00Z", "200.00"),
    ("delta-2", "delta", "2026-01-04T10:00:00Z", "250.00"),
    ("delta-3", "delta", "2026-01-05T10:00:00Z", "100.00"),
    ("delta-4", "delta", "2026-01-06T10:00:00Z", "400.00"),
]


def _cli(db_url: str, *args: str) -> str:
    result = runner.invoke(app, [*args, "--db", db_url], env=ENV)
    assert result.exit_code == 0, result.output
    return result.output


def _setup(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    _cli(db_url, "catalog", "apply", str(tmp_path / "catalog.yaml"))
    # amounts written as JSON numbers with their decimals, as a payment system sends them
    rows = [f'{{"id": "{event_id}", "customer": "{customer}", "meter": "payments", "timestamp": "{ts}", '
            f'"properties": {{"amount": {amount}}}}}' for event_id, customer, ts, amount in PAYMENTS]
    rows += [f'{{"id": "call-{n}", "customer": "acme", "meter": "calls", "timestamp": "2026-01-15T10:00:00Z"}}'
             for n in range(100)]
    (tmp_path / "events.jsonl").write_text("\n".join(rows) + "\n")
    _cli(db_url, "events", "import", str(tmp_path / "events.jsonl"))


def _january(db_url: str, tmp_path: Path) -> dict[str, list[dict]]:
    out = tmp_path / "invoices.json"
    _cli(db_url, "invoices", "export", "--format", "json", "--out", str(out))
    return {invoice["customer"]: invoice["lines"] for invoice in json.loads(out.read_text())
            if invoice["issue_date"] == "2026-02-01"}


def _amounts(lines: list[dict]) -> list[tuple[str, Decimal, Decimal]]:
    return [(line["code"], D(line["quantity"]), D(line["amount"])) for line in lines]


def test_an_invoice_run_prices_each_event_and_the_tiers(db_url: str, tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-02-01", "--json"))
    assert report["failures"] == []
    lines = _january(db_url, tmp_path)
    # 50.00 -> 1.10; 200.00 -> 4.10; 1,000.00 -> 20.10, held to 15.00: 20.20. February's 10.00 is not in it.
    # The calls meter beside it is aggregated as before: 100 × 0.01
    assert _amounts(lines["acme"]) == [("card_fees", D("1250.00"), D("20.20")), ("calls", D(100), D("1.00"))]
    # 200, 100 and (beta-Z) 100 free: 3 events; beta-a's 50 -> 0.10 + 1.2% of 50 = 0.70
    assert _amounts(lines["beta"]) == [("card_fees", D(450), D("0.70"))]
    # 1,000 × 1% + 2,000 × 0.5% + 5 = 25.00, each tier's part with its rate as a unit amount
    assert _amounts(lines["gamma"]) == [("volume_fees", D("3000.00"), D("25.00"))]
    assert [(part["tier"], D(part["quantity"]), D(part["unit_amount"]), D(part["flat_amount"]), D(part["amount"]))
            for part in lines["gamma"][0]["tiers"]] == [(1, D(1000), D("0.01"), D(0), D(10)),
                                                        (2, D(2000), D("0.005"), D(5), D(15))]
    # the override's first 500.00 free: 200.00 and 250.00 free; 100.00 -> 50.00 × 2% + 0.10 = 1.10;
    # 400.00 -> 8.10: 9.20 (the plan alone bills 2% of 950.00 + 4 × 0.10 = 19.40)
    assert _amounts(lines["delta"]) == [("card_fees", D("950.00"), D("9.20"))]


def test_the_upcoming_invoice_prices_each_event_of_the_period_so_far(db_url: str, tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    upcoming = json.loads(_cli(db_url, "invoices", "preview", "acme", "--at", "2026-02-15T00:00:00Z", "--json"))
    [subscription] = upcoming["subscriptions"]
    [document] = subscription["invoices"]
    # February so far: 10.00 -> 0.20 + 0.10 = 0.30, raised to the 0.50 minimum
    assert [(line["code"], D(line["quantity"]), D(line["amount"])) for line in document["lines"]] == [
        ("card_fees", D("10.00"), D("0.50")), ("calls", D(0), D("0.00"))]


def test_catalog_check_names_each_problem_of_the_rules(tmp_path: Path) -> None:
    broken = (CATALOG
              .replace('per_transaction_min_amount: "0.50"', 'per_transaction_min_amount: "20.00"')
              .replace("free_units_per_events: 3", "free_units_per_events: 2.5")
              .replace('- {up_to: "1000", rate: "1"}', '- {up_to: "1000", unit_amount: "0.01"}'))
    (tmp_path / "broken.yaml").write_text(broken)
    result = runner.invoke(app, ["catalog", "check", str(tmp_path / "broken.yaml"), "--json"], env=ENV)
    assert result.exit_code == 1
    problems = {problem["path"]: problem["message"] for problem in json.loads(result.stdout)["problems"]}
    assert problems["plans[0].charges[0].per_transaction_min_amount"] == (
        "must not be greater than per_transaction_max_amount (15.00), got 20.00")
    assert set(problems) == {"plans[0].charges[0].per_transaction_min_amount",
                             "plans[1].charges[0].free_units_per_events",
                             "plans[3].charges[0].tiers[0].rate", "plans[3].charges[0].tiers[0].unit_amount"}
