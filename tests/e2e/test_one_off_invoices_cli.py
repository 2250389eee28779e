"""`ratecard invoices create|add-line|edit-line|delete-line|refresh|archive` as a user runs them.

Hand-computed (customer acme, 19 % tax rounded once per invoice): 3 x 120.005 = 360.015 -> 360.02,
plus 99.99 = 460.01; tax 87.4019 -> 87.40; total 547.41.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..integration.scenario import CATALOG
from .harness import Cli, assert_user_error


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    cli.write("catalog.yaml", CATALOG)
    cli.ok("catalog", "apply", "catalog.yaml")
    return cli


def test_a_one_off_invoice_from_the_command_line(cli: Cli) -> None:
    made = cli.ok("invoices", "create", "acme", "--line", "Consulting|120.005|3", "--line", "Set-up|99.99")
    assert made.out.strip() == ("DRAFT-1: one-off draft for acme — 2 line(s), subtotal 460.01, tax 87.40, "
                                "total 547.41 EUR")
    added = cli.ok("invoices", "add-line", "DRAFT-1", "--description", "Travel", "--unit-amount", "80.50",
                   "--json").json()
    assert (added["subtotal"], added["tax"], added["total"]) == ("540.51", "102.70", "643.21")
    edited = cli.ok("invoices", "edit-line", "DRAFT-1", "1", "--description", "Consulting", "--unit-amount", "100",
                    "--quantity", "2.5", "--json").json()
    assert [line["amount"] for line in edited["lines"]] == ["250.00", "99.99", "80.50"]
    removed = cli.ok("invoices", "delete-line", "DRAFT-1", "2", "--json").json()
    assert (removed["subtotal"], removed["tax"], removed["total"]) == ("330.50", "62.80", "393.30")
    assert "one-off" in cli.ok("invoices", "show", "DRAFT-1").out
    assert_user_error(cli("invoices", "delete-line", "DRAFT-1", "9"), 2, "no such line")
    # line 2 was deleted: the others keep their numbers, so line 3 is still the travel line
    shown = cli.ok("invoices", "show", "DRAFT-1", "--json").json()
    assert [(line["line"], line["description"]) for line in shown["lines"]] == [(1, "Consulting"), (3, "Travel")]
    assert_user_error(cli("invoices", "edit-line", "DRAFT-1", "2", "--description", "x", "--unit-amount", "1"), 2,
                      "no such line")
    travel = cli.ok("invoices", "edit-line", "DRAFT-1", "3", "--description", "Travel", "--unit-amount", "90.50",
                    "--json").json()
    assert [(line["line"], line["amount"]) for line in travel["lines"]] == [(1, "250.00"), (3, "90.50")]
    cli.ok("invoices", "edit-line", "DRAFT-1", "3", "--description", "Travel", "--unit-amount", "80.50")
    assert_user_error(cli("invoices", "create", "acme", "--line", "no amount"), 2, "DESCRIPTION|UNIT_AMOUNT")
    assert_user_error(cli("invoices", "create", "nobody"), 2, "nobody")
    assert_user_error(cli("invoices", "add-line", "DRAFT-1", "--description", "x", "--unit-amount", "-1"), 2,
                      "deduction")
    assert cli.ok("invoices", "finalize", "DRAFT-1").out.startswith("RC-000001: final")
    assert_user_error(cli("invoices", "add-line", "RC-000001", "--description", "x", "--unit-amount", "1"), 2,
                      "credit note")
    assert_user_error(cli("invoices", "refresh", "RC-000001"), 2, "only a draft")
    assert_user_error(cli("invoices", "archive", "RC-000001"), 2, "only a void invoice")
    cli.ok("invoices", "create", "acme")
    cli.ok("invoices", "void", "DRAFT-2")
    assert cli.ok("invoices", "archive", "DRAFT-2").out.strip() == "DRAFT-2: archived"
    # archived: left out of the list, as the API's list leaves it out; --include-archived shows it
    assert [i["number"] for i in cli.ok("invoices", "list", "--json").json()] == ["RC-000001"]
    assert "DRAFT-2" not in cli.ok("invoices", "list").out
    assert [i["number"] for i in cli.ok("invoices", "list", "--include-archived", "--json").json()] == \
        ["RC-000001", "DRAFT-2"]
    assert [i["number"] for i in cli.ok("invoices", "list", "--status", "void", "--json").json()] == []
    assert "DRAFT-2" in cli.ok("invoices", "show", "DRAFT-2").out  # still found by its number
