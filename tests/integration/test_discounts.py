"""Discounts and coupons through `ratecard invoices generate`, on SQLite and PostgreSQL: the lines a
user sees in the export, and the correction of a final invoice when a discount is backdated."""

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
  - {code: api_calls, aggregation: count}
plans:
  - code: pro
    currency: EUR
    charges:
      - {code: fee, model: flat, amount: "100.00", timing: arrears}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.50"}
    discounts:
      - {code: launch, percent_off: "10", periods: 3, description: Launch offer}
  - code: small
    currency: EUR
    charges:
      - {code: fee, model: flat, amount: "100.00", timing: arrears}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.50"}
coupons:
  - {code: BIGCREDIT, amount_off: "200.00", currency: EUR, duration: once, max_redemptions: 5}
customers:
  - {reference: acme, name: Acme, currency: EUR, tax_rate: "21"}
  - {reference: beta, name: Beta, currency: EUR, tax_rate: "21"}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-01-01}
  - {reference: beta-small, customer: beta, plan: small, start: 2026-01-01, coupons: [BIGCREDIT]}
"""


def _cli(db_url: str, *args: str) -> str:
    result = runner.invoke(app, [*args, "--db", db_url], env=ENV)
    assert result.exit_code == 0, result.output
    return result.output


def _setup(db_url: str, tmp_path: Path, catalog: str = CATALOG) -> None:
    (tmp_path / "catalog.yaml").write_text(catalog)
    _cli(db_url, "catalog", "apply", str(tmp_path / "catalog.yaml"))
    # 100 calls (50.00) for each customer in each month January to April
    events = [{"id": f"{customer}-{month}-{n}", "customer": customer, "meter": "api_calls",
               "timestamp": f"2026-{month:02d}-10T10:00:00Z"}
              for customer in ("acme", "beta") for month in range(1, 5) for n in range(100)]
    _cli(db_url, "events", "import", str(write_jsonl(tmp_path / "events.jsonl", events)))


def _export(db_url: str, tmp_path: Path) -> list[dict]:
    out = tmp_path / "invoices.json"
    _cli(db_url, "invoices", "export", "--format", "json", "--out", str(out))
    return json.loads(out.read_text())


def _of(invoices: list[dict], customer: str) -> list[dict]:
    return sorted((item for item in invoices if item["customer"] == customer), key=lambda item: item["issue_date"])


def test_percent_for_three_periods_and_a_capped_coupon(db_url: str, tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-05-01", "--json"))
    assert report["failures"] == []
    invoices = _export(db_url, tmp_path)
    acme = _of(invoices, "acme")
    assert [item["issue_date"] for item in acme] == ["2026-02-01", "2026-03-01", "2026-04-01", "2026-05-01"]
    for item in acme[:3]:
        # fee 100.00 + calls 50.00, 10% off before tax: -15.00; 21% of 135.00 = 28.35
        discount = [line for line in item["lines"] if line["kind"] == "discount"]
        assert [(line["code"], D(line["amount"]), line["description"]) for line in discount] == [
            ("discount:launch", D("-15.00"), "Launch offer: 10% off")]
        assert (D(item["subtotal"]), D(item["tax"]), D(item["total"])) == (D("135.00"), D("28.35"), D("163.35"))
    assert all(line["kind"] != "discount" for line in acme[3]["lines"])  # the 4th period: no discount
    assert D(acme[3]["total"]) == D("181.50")
    beta = _of(invoices, "beta")
    # the coupon's 200.00 covers January's 150.00 only: capped, never negative; once: February pays in full
    first = [(line["code"], D(line["amount"])) for line in beta[0]["lines"]]
    assert first[-1] == ("discount:BIGCREDIT", D("-150.00"))
    assert (D(beta[0]["subtotal"]), D(beta[0]["tax"]), D(beta[0]["total"])) == (D("0.00"), D("0.00"), D("0.00"))
    assert D(beta[1]["total"]) == D("181.50")
    # running again changes nothing
    again = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-05-01", "--json"))
    assert (again["created"], again["updated"]) == (0, 0)


def test_a_backdated_subscription_discount_corrects_the_final_invoice(db_url: str, tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    _cli(db_url, "invoices", "generate", "--until", "2026-02-01")
    finalized = json.loads(_cli(db_url, "invoices", "finalize", "--due", "--json"))
    assert finalized
    before = _of(_export(db_url, tmp_path), "beta")
    assert before[0]["status"] == "final" and D(before[0]["total"]) == D("0.00")
    # a subscription discount added afterwards, from the start: a term of the subscription, it reaches back
    changed = CATALOG.replace("coupons: [BIGCREDIT]}",
                              "coupons: [BIGCREDIT], discounts: [{code: goodwill, amount_off: '30.00'}]}")
    changed = changed.replace("{reference: acme-pro, customer: acme, plan: pro, start: 2026-01-01}",
                              "{reference: acme-pro, customer: acme, plan: pro, start: 2026-01-01, "
                              "discounts: [{code: goodwill, percent_off: '20', charge: calls}]}")
    (tmp_path / "catalog.yaml").write_text(changed)
    _cli(db_url, "catalog", "apply", str(tmp_path / "catalog.yaml"))
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-03-01", "--json"))
    assert report["failures"] == []
    acme = _of(_export(db_url, tmp_path), "acme")
    final, draft = acme[0], acme[-1]
    assert final["status"] == "final" and D(final["total"]) == D("163.35")  # never edited
    # January: 20% of calls 50.00 = 10.00, after the plan's 10% (15.00) took its share: the correction
    corrections = [(line["code"], line["kind"], D(line["amount"]), line["service_start"])
                   for line in draft["lines"] if line["kind"] == "adjustment"]
    assert corrections == [("discount:goodwill", "adjustment", D("-10.00"), "2026-01-01")]
    # February on the draft: fee 100 + calls 50, launch -15.00, goodwill 20% of calls -10.00
    february = {line["code"]: D(line["amount"]) for line in draft["lines"] if line["service_start"] == "2026-02-01"}
    assert february == {"fee": D("100.00"), "calls": D("50.00"), "discount:launch": D("-15.00"),
                        "discount:goodwill": D("-10.00")}
    # beta's January was already at 0.00: the subscription's discount comes before its coupon, so the
    # 150.00 is now split 30.00 + 120.00; the ledger compares line by line and moves 30.00 between them
    beta = _of(_export(db_url, tmp_path), "beta")
    moved = [(line["code"], D(line["amount"]), line["service_start"])
             for item in beta for line in item["lines"] if line["kind"] == "adjustment"]
    assert sorted(moved) == [("discount:BIGCREDIT", D("30.00"), "2026-01-01"),
                             ("discount:goodwill", D("-30.00"), "2026-01-01")]
    assert [D(line["amount"]) for line in beta[-1]["lines"] if line["kind"] == "discount"] == [D("-30.00")]
    # a second run changes nothing: the drafts carry the same corrections
    again = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-03-01", "--json"))
    assert (again["created"], again["updated"]) == (0, 0)
    assert [item["total"] for item in again["corrections"]] == ["-10.00", "0.00"]


def test_reconcile_names_a_discount_the_legacy_system_netted_into_a_charge(db_url: str, tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    _cli(db_url, "invoices", "generate", "--until", "2026-03-01")
    rows = [{"customer": item["customer"], "code": line["code"], "service_start": line["service_start"],
             "service_end": line["service_end"], "quantity": line["quantity"], "amount": line["amount"]}
            for item in _export(db_url, tmp_path) for line in item["lines"]]
    # January: the legacy system took the 15.00 off the calls line (50.00 -> 35.00) and shows no discount line
    january_calls = next(row for row in rows if row["customer"] == "acme" and row["code"] == "calls"
                         and row["service_start"] == "2026-01-01")
    january_calls["amount"] = "35.00"
    # February: the legacy system gave no discount at all
    rows = [row for row in rows if not (row["customer"] == "acme" and row["code"] == "discount:launch")]
    legacy = tmp_path / "legacy.csv"
    with legacy.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = runner.invoke(app, ["reconcile", str(legacy), "--json", "--db", db_url], env=ENV)
    assert result.exit_code == 1, result.output  # differences found
    report = json.loads(result.output)
    found = {(d["code"], d["service_start"], d["field"]): d for d in report["differences"]}
    assert found[("calls", "2026-01-01", "amount")]["cause"] == "discount"
    assert found[("calls", "2026-01-01", "amount")]["discount"] == "discount:launch"
    assert found[("discount:launch", "2026-01-01", "line")]["cause"] == "discount"
    assert found[("discount:launch", "2026-02-01", "line")]["cause"] == "missing_in_legacy"
    assert len(report["differences"]) == 3


def test_a_plan_discount_added_later_applies_from_the_next_invoice(db_url: str, tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    _cli(db_url, "invoices", "generate", "--until", "2026-02-01")
    _cli(db_url, "invoices", "finalize", "--due")
    # like a price edit, a plan's new discount never reaches back into a final invoice
    changed = CATALOG.replace("description: Launch offer}",
                              "description: Launch offer}\n      - {code: spring, percent_off: '5'}")
    (tmp_path / "catalog.yaml").write_text(changed)
    _cli(db_url, "catalog", "apply", str(tmp_path / "catalog.yaml"))
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-03-01", "--json"))
    assert report["corrections"] == []
    acme = _of(_export(db_url, tmp_path), "acme")
    assert D(acme[0]["total"]) == D("163.35") and acme[0]["status"] == "final"
    # February: launch 10% of 150.00 = 15.00, then spring 5% of the 135.00 left = 6.75
    discounts = [(line["code"], D(line["amount"])) for line in acme[1]["lines"] if line["kind"] == "discount"]
    assert discounts == [("discount:launch", D("-15.00")), ("discount:spring", D("-6.75"))]
    assert D(acme[1]["subtotal"]) == D("128.25")


def test_the_upcoming_invoice_shows_the_discount(db_url: str, tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    upcoming = json.loads(_cli(db_url, "invoices", "preview", "acme", "--at", "2026-03-15T00:00:00Z", "--json"))
    [subscription] = upcoming["subscriptions"]
    [document] = subscription["invoices"]
    lines = [(line["code"], D(line["amount"])) for line in document["lines"]]
    assert lines == [("fee", D("100.00")), ("calls", D("50.00")), ("discount:launch", D("-15.00"))]
    assert D(document["total"]) == D("163.35")


def test_a_promotion_code_added_later_reaches_back_at_the_prices_of_the_final_invoice(db_url: str,
                                                                                      tmp_path: Path) -> None:
    """A coupon's promotion codes say who takes it, not what it takes: a final invoice is
    recomputed with its own catalog version's prices and coupon terms even when the subscription
    names a promotion code that version did not have."""
    with_coupon = CATALOG.replace("coupons:\n", "coupons:\n  - {code: TENOFF, percent_off: \"10\", duration: forever}\n")
    _setup(db_url, tmp_path, with_coupon)
    _cli(db_url, "invoices", "generate", "--until", "2026-02-01")
    assert json.loads(_cli(db_url, "invoices", "finalize", "--due", "--json"))
    # later: the fee goes up, TENOFF gets the code FRIENDS, and acme-pro names it from its start
    changed = with_coupon.replace("{code: TENOFF, percent_off: \"10\", duration: forever}",
                                  "{code: TENOFF, percent_off: \"10\", duration: forever, "
                                  "promotion_codes: [{code: FRIENDS}]}")
    changed = changed.replace("{reference: acme-pro, customer: acme, plan: pro, start: 2026-01-01}",
                              "{reference: acme-pro, customer: acme, plan: pro, start: 2026-01-01, coupons: [FRIENDS]}")
    changed = changed.replace("amount: \"100.00\", timing: arrears}\n      - {code: calls, meter: api_calls, "
                              "model: per_unit, unit_amount: \"0.50\"}\n    discounts:",
                              "amount: \"120.00\", timing: arrears}\n      - {code: calls, meter: api_calls, "
                              "model: per_unit, unit_amount: \"0.50\"}\n    discounts:", 1)
    assert changed.count("120.00") == 1 and "FRIENDS" in changed
    (tmp_path / "catalog.yaml").write_text(changed)
    _cli(db_url, "catalog", "apply", str(tmp_path / "catalog.yaml"))
    report = json.loads(_cli(db_url, "invoices", "generate", "--until", "2026-03-01", "--json"))
    assert report["failures"] == []
    draft = _of(_export(db_url, tmp_path), "acme")[-1]
    # January at its own prices (fee 100.00 + calls 50.00 - launch 15.00 = 135.00): 10 % = 13.50 off
    corrections = [(line["code"], D(line["amount"]), line["service_start"])
                   for line in draft["lines"] if line["kind"] == "adjustment"]
    assert corrections == [("discount:TENOFF", D("-13.50"), "2026-01-01")]
