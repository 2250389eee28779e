"""A one-off line's amount (quantity x unit amount) is held to the bound of every price ratecard
stores (below 1e20), not only its two factors: a line written by hand on a one-off draft
(999999999999 x 999999999999 made a draft of about 1e24 EUR) and a subscription's one-off charge
(two numbers just below 1e20 made an invoice of 1e40). The refusal names the field, and nothing is
written. Through the CLI in process, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from ..e2e.harness import run_in_process
from .test_trials_seats_one_offs import CATALOG

BIG = "999999999999"  # the largest whole quantity or unit amount a one-off line takes (below 10^12)


def _cli(url: str, *args: str) -> tuple[int, str, str]:
    env = {**{k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"},
           "RATECARD_NOW": "2026-11-26T00:00:00Z", "NO_COLOR": "1"}
    return run_in_process([*args, "--db", url], env, Path.cwd())


def _ok(url: str, *args: str) -> str:
    code, out, err = _cli(url, *args)
    assert code == 0, err
    return out


def _setup(url: str, tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    _ok(url, "catalog", "apply", str(tmp_path / "catalog.yaml"))


def test_a_hand_written_line_whose_amount_is_out_of_range_is_refused_naming_the_quantity(db_url: str,
                                                                                       tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    _ok(db_url, "invoices", "create", "acme", "--line", "Set-up|100.00")
    for command in (("add-line", "DRAFT-1"), ("edit-line", "DRAFT-1", "1")):
        code, _, err = _cli(db_url, "invoices", *command, "--description", "Typo", "--unit-amount", BIG,
                            "--quantity", BIG)
        assert code == 2, err
        assert f"error: --quantity: {BIG} x {BIG} = 999999999998000000000001 is out of range" in err
        assert "below 1e20" in err and "internal error" not in err
    shown = orjson.loads(_ok(db_url, "invoices", "show", "DRAFT-1", "--json"))
    assert [line["amount"] for line in shown["lines"]] == ["100.00"]
    assert shown["total"] == "121.00"
    # just inside: 999999999999 x 100000000 = 99999999999900000000 (below 1e20), a deduction too
    added = orjson.loads(_ok(db_url, "invoices", "add-line", "DRAFT-1", "--description", "Large", "--unit-amount",
                             BIG, "--quantity", "100000000", "--json"))
    assert [line["amount"] for line in added["lines"]] == ["100.00", "99999999999900000000.00"]


def test_a_subscription_one_off_charge_whose_amount_is_out_of_range_is_refused_with_its_path(
        db_url: str, tmp_path: Path) -> None:
    _setup(db_url, tmp_path)
    code, _, err = _cli(db_url, "subscriptions", "charge", "beta-team", "--code", "typo", "--amount",
                        "99999999999999999999", "--quantity", "2", "--at", "2026-11-01")
    assert code != 0
    assert ("subscriptions[1].one_off[1].quantity: 2 x 99999999999999999999 = 199999999999999999998 is out of "
            "range") in err
    assert "below 1e20" in err and "nothing was stored" in err
    shown = orjson.loads(_ok(db_url, "subscriptions", "show", "beta-team", "--json"))
    assert [item["code"] for item in shown["one_off"]] == ["setup"]
    # just inside the bound: billed as written
    _ok(db_url, "subscriptions", "charge", "beta-team", "--code", "large", "--amount", "9999999999",
        "--quantity", "9999999999", "--at", "2026-11-01")
    report = orjson.loads(_ok(db_url, "invoices", "generate", "--until", "2026-11-26", "--json"))
    assert report["failures"] == []


def test_a_refused_line_of_invoices_create_is_named_by_its_place_and_part(db_url: str, tmp_path: Path) -> None:
    """`invoices create` takes its lines as `--line 'DESCRIPTION|UNIT_AMOUNT|QUANTITY'`: a refusal
    names the line (its place among the --line options) and the part at fault, not options the
    command does not have (--quantity, --unit-amount); nothing is written."""
    _setup(db_url, tmp_path)
    cases = [
        ((f"Big|{BIG}|{BIG}",), f"--line 2 ('Big|{BIG}|{BIG}'): QUANTITY: {BIG} x {BIG} = "),
        (("Odd|ten",), "--line 2 ('Odd|ten'): UNIT_AMOUNT: "),
        (("None|5|0",), "--line 2 ('None|5|0'): QUANTITY: "),
    ]
    for (line,), expected in cases:
        code, _, err = _cli(db_url, "invoices", "create", "acme", "--line", "Set-up|100.00", "--line", line)
        assert code == 2, err
        assert f"error: {expected}" in err
        assert "--quantity" not in err and "--unit-amount" not in err
    listed = orjson.loads(_ok(db_url, "invoices", "list", "--json"))
    assert listed == [] or all(invoice["customer"] != "acme" for invoice in listed)


def test_invoices_show_prints_quantities_as_the_documents_do(db_url: str, tmp_path: Path) -> None:
    """The table shows a quantity with every digit it has and no trailing zeros, as the PDF and the
    console do (7.5000 reads 7.5, 2000.000 reads 2000); --json keeps the figure as stored."""
    _setup(db_url, tmp_path)
    _ok(db_url, "invoices", "create", "acme", "--line", "Hours|120|7.5000", "--line", "Seats|10|2000.000")
    table = _ok(db_url, "invoices", "show", "DRAFT-1")
    rows = {line.split("│")[3].strip(): line.split("│")[5].strip() for line in table.splitlines()
            if line.count("│") >= 7 and line.split("│")[3].strip() in ("Hours", "Seats")}
    assert rows == {"Hours": "7.5", "Seats": "2000"}, table
    shown = orjson.loads(_ok(db_url, "invoices", "show", "DRAFT-1", "--json"))
    assert [line["quantity"] for line in shown["lines"]] == ["7.5000", "2000.000"]
