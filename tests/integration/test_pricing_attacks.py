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
