"""`ratecard subscriptions import`: existing subscriptions with bill_from, through the real CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .harness import Cli

CATALOG = """
plans:
  - {code: price_basic, currency: EUR, charges: [{code: base, model: flat, amount: '10.00'}]}
customers:
  - {reference: cus_existing, currency: EUR, tax_rate: '21', country: NL}
"""
STRIPE_EXPORT = """id,Customer ID,Customer Name,Plan,Start Date (UTC),Current Period End (UTC),Currency
sub_1,cus_existing,Existing BV,price_basic,2026-01-01 00:00,2026-03-01 00:00,EUR
sub_2,cus_new,New GmbH,price_basic,2026-01-01 00:00,2026-03-01 00:00,EUR
"""


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`ratecard ARGS --db <tmp>/x.db` through the e2e harness (in process unless it is switched)."""
    result = Cli(tmp_path)(*args)
    return subprocess.CompletedProcess(result.args, result.code, result.out, result.err)


def test_stripe_subscriptions_are_billed_only_from_their_current_period_end(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "subs.csv").write_text(STRIPE_EXPORT)
    assert run(tmp_path, "catalog", "apply", "catalog.yaml").returncode == 0
    dry = run(tmp_path, "subscriptions", "import", "subs.csv", "--mapping", "stripe-subscriptions", "--dry-run",
              "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["subscriptions"] == 2 and json.loads(dry.stdout)["catalog_version"] == 1
    done = run(tmp_path, "subscriptions", "import", "subs.csv", "--mapping", "stripe-subscriptions", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"file": "subs.csv", "subscriptions": 2, "new_customers": 1,
                                       "dry_run": False, "catalog_version": 2, "refused": []}
    assert run(tmp_path, "invoices", "generate", "--until", "2026-04-01").returncode == 0
    invoices = json.loads(run(tmp_path, "invoices", "export").stdout)
    # Stripe billed January and February: ratecard's first lines are for March
    starts = sorted({line["service_start"] for invoice in invoices for line in invoice["lines"]})
    assert starts == ["2026-03-01", "2026-04-01"]
    assert {invoice["customer"] for invoice in invoices} == {"cus_existing", "cus_new"}
    # importing the same file again is refused whole, naming the line
    again = run(tmp_path, "subscriptions", "import", "subs.csv", "--mapping", "stripe-subscriptions")
    assert again.returncode == 2 and "line 2" in again.stderr and "already exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_unknown_plan_is_reported_with_its_line_and_nothing_is_imported(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "subs.csv").write_text(STRIPE_EXPORT.replace("sub_2,cus_new,New GmbH,price_basic",
                                                             "sub_2,cus_new,New GmbH,price_gold"))
    run(tmp_path, "catalog", "apply", "catalog.yaml")
    result = run(tmp_path, "subscriptions", "import", "subs.csv", "--mapping", "stripe-subscriptions")
    assert result.returncode == 2
    assert "subs.csv: line 3: field plan (column 'Plan'): unknown plan 'price_gold'" in result.stderr
    assert json.loads(run(tmp_path, "catalog", "apply", "catalog.yaml", "--json").stdout)["version"] == 1


def test_stripe_customers_are_linked_so_their_invoices_are_charged(tmp_path: Path, stripe_standin) -> None:
    """The export's Customer ID becomes each customer's stripe_customer_id (new and existing
    customers): the invoices ratecard then finalizes are charged to that Stripe customer."""
    stripe_standin.customers.update({"cus_existing": "pm_existing", "cus_new": "pm_new"})
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "subs.csv").write_text(STRIPE_EXPORT)
    assert run(tmp_path, "catalog", "apply", "catalog.yaml").returncode == 0
    assert run(tmp_path, "subscriptions", "import", "subs.csv", "--mapping", "stripe-subscriptions").returncode == 0
    assert run(tmp_path, "invoices", "generate", "--until", "2026-03-01").returncode == 0
    drafts = json.loads(run(tmp_path, "invoices", "list", "--json").stdout)
    assert run(tmp_path, "invoices", "finalize", *[d["number"] for d in drafts]).returncode == 0
    assert json.loads(run(tmp_path, "payments", "run", "--json").stdout)["payments"] == {"succeeded": 2}
    charged = {(intent["customer"], intent["payment_method"]) for intent in stripe_standin.intents.values()}
    assert charged == {("cus_existing", "pm_existing"), ("cus_new", "pm_new")}


def test_a_customer_linked_to_another_stripe_customer_is_never_relinked(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG.replace("country: NL}", "country: NL, stripe_customer_id: cus_other}"))
    (tmp_path / "subs.csv").write_text(STRIPE_EXPORT)
    run(tmp_path, "catalog", "apply", "catalog.yaml")
    result = run(tmp_path, "subscriptions", "import", "subs.csv", "--mapping", "stripe-subscriptions")
    assert result.returncode == 2
    assert ("subs.csv: line 2: field stripe_customer_id (column 'Customer ID'): customer 'cus_existing' is linked "
            "to Stripe customer 'cus_other', not 'cus_existing'") in result.stderr


def test_a_name_with_a_line_separator_or_an_oversized_cell_is_told_apart(tmp_path: Path) -> None:
    """A customer name holding U+2028 (which a CSV writer leaves unquoted) is one cell, not the end
    of the row; a cell over the CSV reader's limit is refused naming its line (exit 2), never an
    internal error."""
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    run(tmp_path, "catalog", "apply", "catalog.yaml")
    (tmp_path / "subs.csv").write_text(STRIPE_EXPORT.replace("New GmbH", "New\u2028GmbH"), encoding="utf-8")
    dry = run(tmp_path, "subscriptions", "import", "subs.csv", "--mapping", "stripe-subscriptions", "--dry-run",
              "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["subscriptions"] == 2
    (tmp_path / "big.csv").write_text(STRIPE_EXPORT.replace("New GmbH", '"' + "x" * 200_000 + '"'))
    big = run(tmp_path, "subscriptions", "import", "big.csv", "--mapping", "stripe-subscriptions", "--dry-run")
    assert big.returncode == 2 and "big.csv: line 3: a cell is longer than" in big.stderr, big.stderr
    assert "internal error" not in big.stderr
