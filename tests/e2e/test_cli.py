"""The whole billing cycle through the real `ratecard` executable, with hand-computed money.

catalog apply -> events import (JSONL, CSV, dry run) -> invoices generate -> list / show /
export (JSON, CSV) -> finalize -> void refused -> generate is idempotent -> a late event
refreshes a draft -> after finalize a late event leaves the final invoice alone.
"""

from __future__ import annotations

import csv
import io
import json

from .harness import CATALOG, Cli, assert_user_error, event, jsonl, lines_by_code

# January events for acme (subscribed from 2026-01-15, anchor 1, all in UTC):
JANUARY_JSONL = jsonl(
    event("e-001", "tokens", "2026-01-16T09:00:00Z", tokens=1200),  # billed: tokens
    event("e-002", "calls", "2026-01-16T10:00:00Z"),  # billed: call 1
    event("e-003", "calls", "2026-01-10T10:00:00Z"),  # before the subscription starts: no_subscription
    event("e-004", "calls", "2026-02-01T00:00:00Z"),  # exactly at the boundary: belongs to February
)
JANUARY_CSV = (
    "id,customer,meter,timestamp,tokens\n"
    "c-001,acme,tokens,2026-01-31T23:59:59Z,300\n"  # last second of January: billed
    "c-002,acme,calls,2026-01-20T08:00:00+01:00,\n"  # 07:00Z: call 2
    "c-003,acme,calls,2026-01-31T23:30:00-01:00,\n"  # = 2026-02-01T00:30Z: February, not on this invoice
    "c-004,acme,calls,2026-01-21T00:00:00Z,\n"  # call 3
    "e-002,acme,calls,2026-01-22T00:00:00Z,\n"  # same id as in the JSONL file: counted once, ever
)

# Hand-computed amounts (EUR, half_up, tax 21 % on the invoice subtotal):
#
# Invoice at 2026-01-15 (opens the short period Jan 15 -> Feb 1):
#   base  49.00 x 17 / 31 days = 26.870967... -> 26.87
#   tax   26.87 x 0.21 = 5.6427                -> 5.64
#   total 26.87 + 5.64                          = 32.51
#
# Invoice at 2026-02-01 (closes Jan 15 -> Feb 1, opens February):
#   base   49.00 (February, in advance, full month)
#   tokens 1200 + 300 = 1500: 1000 x 0 + 500 x 0.002 + 5.00 flat = 6.00
#   calls  3 (e-002, c-002, c-004) x 0.10 = 0.30
#   subtotal 49.00 + 6.00 + 0.30 = 55.30
#   tax      55.30 x 0.21 = 11.613 -> 11.61
#   total    55.30 + 11.61 = 66.91
#
# After the late call L-1 (Jan 20) while that invoice is a draft:
#   calls 4 x 0.10 = 0.40; subtotal 55.40; tax 55.40 x 0.21 = 11.634 -> 11.63; total 67.03


def _setup(cli: Cli) -> None:
    catalog = cli.write("catalog.yaml", CATALOG)
    applied = cli.ok("catalog", "apply", catalog, "--json").json()
    assert applied["version"] == 1 and applied["created"] is True


def test_full_billing_cycle(cli: Cli) -> None:
    catalog = cli.write("catalog.yaml", CATALOG)
    assert cli.ok("catalog", "check", catalog, "--json", db=False).json() == {
        "file": str(catalog), "valid": True, "problems": [], "warnings": []}
    _setup(cli)

    # ---- import: a dry run writes nothing, then JSONL, then CSV (with one cross-file duplicate)
    events_jsonl = cli.write("january.jsonl", JANUARY_JSONL)
    dry = cli.ok("events", "import", events_jsonl, "--dry-run", "--json").json()
    assert (dry["dry_run"], dry["read"], dry["accepted"], dry["stored"]) == (True, 4, 4, 0)
    # e-003 comes before acme's subscription starts: the dry run says so, per customer
    assert dry["outside_subscriptions"] == [
        {"customer": "acme", "before_start": 1, "after_end": 0, "between_subscriptions": 0, "reference_required": 0,
         "unknown_subscription": 0, "named_subscription_not_active": 0, "named_subscription_without_meter": 0}]

    report = cli.ok("events", "import", events_jsonl, "--json").json()
    assert (report["read"], report["accepted"], report["stored"], report["duplicates"]) == (4, 4, 4, 0)
    assert report["flags"] == {"no_subscription": 1}  # e-003, stored but never billed
    assert report["rejected"] == {}

    events_csv = cli.write("january.csv", JANUARY_CSV)
    report = cli.ok("events", "import", events_csv, "--json").json()
    assert (report["read"], report["accepted"], report["stored"], report["duplicates"]) == (5, 5, 4, 1)
    assert report["flags"].get("duplicate") == 1

    # ---- generate
    run = cli.ok("invoices", "generate", "--until", "2026-02-01", "--json").json()
    assert (run["created"], run["updated"]) == (2, 0)

    invoices = cli.ok("invoices", "list", "--json").json()
    assert [(i["issue_date"], i["status"]) for i in invoices] == [("2026-01-15", "draft"), ("2026-02-01", "draft")]
    first, second = invoices
    assert all(i["customer"] == "acme" and i["subscription"] == "acme-pro" and i["currency"] == "EUR"
               for i in invoices)

    # invoice 1: the prorated base fee only
    assert (first["subtotal"], first["tax"], first["total"]) == ("26.87", "5.64", "32.51")
    (base,) = first["lines"]
    assert (base["code"], base["service_start"], base["service_end"], base["amount"]) == (
        "base", "2026-01-15", "2026-02-01", "26.87")

    # invoice 2, through `show` (by its draft reference)
    shown = cli.ok("invoices", "show", second["number"], "--json").json()
    assert shown["number"] == second["number"] and shown["number"].startswith("DRAFT-")
    lines = lines_by_code(shown)
    assert set(lines) == {"base", "tokens", "calls"}
    assert (lines["base"]["service_start"], lines["base"]["service_end"], lines["base"]["amount"]) == (
        "2026-02-01", "2026-03-01", "49.00")
    assert (lines["tokens"]["service_start"], lines["tokens"]["service_end"]) == ("2026-01-15", "2026-02-01")
    assert (lines["tokens"]["quantity"], lines["tokens"]["amount"]) == ("1500", "6.00")
    assert (lines["calls"]["quantity"], lines["calls"]["unit_amount"], lines["calls"]["amount"]) == (
        "3", "0.10", "0.30")
    assert (shown["subtotal"], shown["tax"], shown["total"]) == ("55.30", "11.61", "66.91")

    # ---- export: JSON to stdout (the invoice documents `invoices show --json` prints); CSV to a file, one row per line
    exported = cli.ok("invoices", "export", "--format", "json").json()
    assert len(exported) == 2
    for invoice in exported:
        for name in ("number", "customer", "subscription", "status", "currency", "issue_date", "subtotal", "tax",
                     "total", "lines"):
            assert name in invoice, name
        for line in invoice["lines"]:
            assert set(line) >= {"code", "description", "service_start", "service_end", "quantity",
                                 "unit_amount", "amount"}
    assert [i["total"] for i in exported] == ["32.51", "66.91"]

    out_file = cli.folder / "out" / "invoices.csv"
    out_file.parent.mkdir()
    written = cli.ok("invoices", "export", "--format", "csv", "--out", out_file)
    assert written.out == "", "with --out nothing goes to stdout"
    rows = list(csv.DictReader(io.StringIO(out_file.read_text(encoding="utf-8"))))
    assert len(rows) == 1 + 3  # one row per invoice line
    assert [(r["issue_date"], r["code"], r["amount"]) for r in rows] == [
        ("2026-01-15", "base", "26.87"), ("2026-02-01", "base", "49.00"),
        ("2026-02-01", "tokens", "6.00"), ("2026-02-01", "calls", "0.30")]
    assert {r["total"] for r in rows[1:]} == {"66.91"}  # invoice fields repeated on each line row
    assert {r["customer"] for r in rows} == {"acme"}

    # ---- finalize the first invoice: it gets the first gapless number
    finalized = cli.ok("invoices", "finalize", first["number"], "--json").json()
    assert [(i["number"], i["status"], i["total"]) for i in finalized] == [("RC-000001", "final", "32.51")]

    # ---- export filtered by status, JSON into a file
    target = cli.folder / "final.json"
    assert cli.ok("invoices", "export", "--status", "final", "--out", target).out == ""
    finals = json.loads(target.read_text(encoding="utf-8"))
    assert [(i["number"], i["status"], i["total"]) for i in finals] == [("RC-000001", "final", "32.51")]

    # ---- void is refused on a final invoice: exit 2, one clear sentence, nothing changes
    refused = cli("invoices", "void", "RC-000001")
    assert_user_error(refused, 2, "RC-000001", "final")
    after = cli.ok("invoices", "show", "RC-000001", "--json").json()
    assert (after["status"], after["total"]) == ("final", "32.51")

    # ---- generating again changes nothing
    again = cli.ok("invoices", "generate", "--until", "2026-02-01", "--json").json()
    assert (again["created"], again["updated"]) == (0, 0)
    assert again["skipped_final"] == 1

    # ---- a late event for the period of a draft invoice refreshes that draft
    late = cli.write("late-1.jsonl", jsonl(event("L-1", "calls", "2026-01-20T12:00:00Z")))
    assert cli.ok("events", "import", late, "--json").json()["stored"] == 1
    refreshed = cli.ok("invoices", "generate", "--until", "2026-02-01", "--json").json()
    assert (refreshed["created"], refreshed["updated"]) == (0, 1)
    draft = cli.ok("invoices", "show", second["number"], "--json").json()
    assert draft["status"] == "draft"
    assert (lines_by_code(draft)["calls"]["quantity"], lines_by_code(draft)["calls"]["amount"]) == ("4", "0.40")
    assert (draft["subtotal"], draft["tax"], draft["total"]) == ("55.40", "11.63", "67.03")

    # ---- finalize it (the refused void did not use up a number) ...
    finalized = cli.ok("invoices", "finalize", second["number"], "--json").json()
    assert [(i["number"], i["total"]) for i in finalized] == [("RC-000002", "67.03")]
    final_before = cli.ok("invoices", "show", "RC-000002", "--json").json()

    # ... then a late event for its period does not change the final invoice
    late = cli.write("late-2.jsonl", jsonl(event("L-2", "calls", "2026-01-25T12:00:00Z")))
    assert cli.ok("events", "import", late, "--json").json()["stored"] == 1
    run = cli.ok("invoices", "generate", "--until", "2026-02-01", "--json").json()
    assert (run["created"], run["updated"], run["skipped_final"]) == (0, 0, 2)
    final_after = cli.ok("invoices", "show", "RC-000002", "--json").json()
    assert final_after == final_before
    assert (final_after["status"], final_after["total"]) == ("final", "67.03")


def test_human_output_shows_invoice_numbers_and_dates_in_full(cli: Cli) -> None:
    """`invoices list` without --json, read from a pipe (80 columns): the number a user needs
    for `show` / `finalize` and the issue date must be printed whole, never cut to 'DRAFT…'."""
    _setup(cli)
    cli.ok("invoices", "generate", "--until", "2026-02-01")
    numbers = ["DRAFT-1", "DRAFT-2"]  # drafts are shown as DRAFT-<id> (asserted in the full cycle)
    listed = cli.ok("invoices", "list")
    for number in numbers:
        assert number in listed.out, f"{number} is not printed in full\n{listed}"
    for day in ("2026-01-15", "2026-02-01"):
        assert day in listed.out, f"issue date {day} is not printed in full\n{listed}"
    assert "…" not in listed.out, f"values are truncated\n{listed}"

    shown = cli.ok("invoices", "show", numbers[1])
    for text in (numbers[1], "acme-pro", "49.00", "2026-02-01"):
        assert text in shown.out, f"{text!r} missing from `invoices show`\n{shown}"

