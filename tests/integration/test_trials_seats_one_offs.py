"""Free trials, seats and one-off charges through `ratecard invoices generate`, on SQLite and
PostgreSQL: the invoices and lines a user sees in the export, with final invoices in between."""

from __future__ import annotations

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
  - {code: api_calls, aggregation: count}
plans:
  - code: pro
    name: Pro
    currency: EUR
    trial_days: 14
    charges:
      - {code: base, model: flat, amount: "31.00", timing: advance, description: Base fee}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.10", description: API calls}
  - code: team
    name: Team
    currency: EUR
    charges:
      - {code: seat, model: flat, amount: "10.00", timing: advance, description: Seat}
customers:
  - {reference: acme, currency: EUR, tax_rate: "21"}
  - {reference: beta, currency: EUR, tax_rate: "21"}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-01-01}
  - reference: beta-team
    customer: beta
    plan: team
    start: 2026-01-01
    quantity: 10
    one_off: [{code: setup, amount: "500.00", at: 2026-01-01, description: Set-up fee}]
"""


def _cli(db_url: str, *args: str) -> str:
    result = runner.invoke(app, [*args, "--db", db_url], env=ENV)
    assert result.exit_code == 0, result.output
    return result.output


def _setup(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    _cli(db_url, "catalog", "apply", str(tmp_path / "catalog.yaml"))
    # 100 calls during the trial (Jan 10), 50 after it (Jan 20)
    events = [{"id": f"c{day}-{n}", "customer": "acme", "meter": "api_calls", "timestamp": f"2026-01-{day}T10:00:00Z"}
              for day, count in ((10, 100), (20, 50)) for n in range(count)]
    _cli(db_url, "events", "import", str(write_jsonl(tmp_path / "events.jsonl", events)))


def _invoices(db_url: str, tmp_path: Path, customer: str) -> list[dict]:
    out = tmp_path / "invoices.json"
    _cli(db_url, "invoices", "export", "--format", "json", "--out", str(out))
    found = [item for item in json.loads(out.read_text()) if item["customer"] == customer]
    return sorted(found, key=lambda item: (item["issue_date"], item["number"] or ""))


def _lines(invoice: dict) -> list[tuple[str, str, D, D, D]]:
    return [(line["kind"], line["code"], D(line["quantity"]), D(line["unit_amount"]), D(line["amount"]))
            for line in invoice["lines"]]


def test_a_fourteen_day_trial_with_its_opening_final(db_url: str, tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    _cli(db_url, "invoices", "generate", "--until", "2026-01-01")
    assert json.loads(_cli(db_url, "invoices", "finalize", "--due", "--json"))
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-02-01", "--json"))
    assert report["failures"] == [] and report["corrections"] == []
    january, trial_end, february = _invoices(db_url, tmp_path, "acme")
    assert [item["issue_date"] for item in (january, trial_end, february)] == ["2026-01-01", "2026-01-15", "2026-02-01"]
    # the fee at 0 during the trial, the reason in its description
    assert _lines(january) == [("advance", "base", D(1), D(0), D("0.00"))]
    assert january["lines"][0]["description"] == "Base fee (free trial until 2026-01-15)"
    assert (D(january["total"]), january["status"]) == (D("0.00"), "final")
    # at the trial's end: 31.00 x 17/31 = 17.00 for Jan 15 - Feb 1, tax 21% = 3.57
    assert _lines(trial_end) == [("proration", "base", D(1), D("17.00"), D("17.00"))]
    assert (trial_end["lines"][0]["service_start"], trial_end["lines"][0]["service_end"]) == ("2026-01-15",
                                                                                              "2026-02-01")
    assert (D(trial_end["subtotal"]), D(trial_end["tax"]), D(trial_end["total"])) == (D("17.00"), D("3.57"),
                                                                                     D("20.57"))
    # February's fee; January's usage: 100 calls of the trial at 0, 50 after at 0.10 = 5.00
    assert _lines(february) == [("advance", "base", D(1), D("31.00"), D("31.00")),
                                ("usage", "calls", D(100), D(0), D("0.00")),
                                ("usage", "calls", D(50), D("0.10"), D("5.00"))]
    assert D(february["total"]) == D("43.56")  # 36.00 + 21% (7.56)
    again = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-02-01", "--json"))
    assert (again["created"], again["updated"]) == (0, 0)


def test_seats_changed_mid_period_and_a_one_off_charge_after_the_invoice_was_final(db_url: str,
                                                                                    tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    _cli(db_url, "invoices", "generate", "--until", "2026-01-01")
    assert json.loads(_cli(db_url, "invoices", "finalize", "--due", "--json"))
    # 15 seats from Jan 16, after January's 10 seats were billed on a final invoice
    _cli(db_url, "subscriptions", "change", "beta-team", "--at", "2026-01-16", "--quantity", "15")
    # 7.5 hours of onboarding on Jan 10 and a migration on Feb 20
    _cli(db_url, "subscriptions", "charge", "beta-team", "--code", "workshop", "--amount", "120.00",
         "--quantity", "7.5", "--at", "2026-01-10")
    _cli(db_url, "subscriptions", "charge", "beta-team", "--code", "migration", "--amount", "250.00",
         "--at", "2026-02-20", "--description", "Data migration")
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-03-01", "--json"))
    assert report["failures"] == []
    january, february, march = _invoices(db_url, tmp_path, "beta")
    # January: 10 seats x 10.00 and the set-up fee, tax 21% of 600.00
    assert _lines(january) == [("advance", "seat", D(10), D("10.00"), D("100.00")),
                               ("one_off", "setup", D(1), D("500.00"), D("500.00"))]
    assert D(january["total"]) == D("726.00")
    # February 1: 15 seats; the 10 unused seats of Jan 16 - Feb 1 credited (-100 x 16/31 = -51.61), the
    # 15 charged (150 x 16/31 = 77.42): +25.81 net; the workshop 7.5 x 120.00 = 900.00
    assert _lines(february) == [("advance", "seat", D(15), D("10.00"), D("150.00")),
                                ("proration", "seat", D(1), D("-51.61"), D("-51.61")),
                                ("proration", "seat", D(1), D("77.42"), D("77.42")),
                                ("one_off", "workshop", D("7.5"), D("120.00"), D("900.00"))]
    assert (D(february["subtotal"]), D(february["tax"])) == (D("1075.81"), D("225.92"))
    assert _lines(march) == [("advance", "seat", D(15), D("10.00"), D("150.00")),
                             ("one_off", "migration", D(1), D("250.00"), D("250.00"))]
    assert [line["description"] for line in march["lines"]] == ["Seat", "Data migration"]


def test_a_one_off_charge_due_inside_a_final_invoice_is_billed_as_a_correction(db_url: str,
                                                                              tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    _cli(db_url, "invoices", "generate", "--until", "2026-02-01")
    assert json.loads(_cli(db_url, "invoices", "finalize", "--due", "--json"))
    _cli(db_url, "subscriptions", "charge", "beta-team", "--code", "late", "--amount", "80.00", "--at", "2026-01-20")
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-03-01", "--json"))
    assert report["failures"] == []
    invoices = _invoices(db_url, tmp_path, "beta")
    assert [item["status"] for item in invoices] == ["final", "final", "draft"]
    assert all(line["code"] != "late" for item in invoices[:2] for line in item["lines"])
    billed = [(line["kind"], line["code"], D(line["amount"])) for line in invoices[2]["lines"] if line["code"] == "late"]
    assert billed == [("adjustment", "late", D("80.00"))]
    again = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-03-01", "--json"))
    assert (again["created"], again["updated"]) == (0, 0)
