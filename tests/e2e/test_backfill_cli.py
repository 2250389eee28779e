"""What a backfill must do, from a shell: a backfill over a finalized month produces exactly one credit note
and one new invoice for the difference; the final invoice itself never changes.

The harness catalog (acme, 21 % tax): base 49.00 in advance; tokens graduated (first 1000 free,
then 0.002 each + 5.00 once that tier is reached); calls 0.10 each. The invoice cut at
2026-11-01 bills October's usage and November's base fee.
"""

from __future__ import annotations

import json
from pathlib import Path

from .harness import CATALOG, Cli, assert_user_error


def _jsonl(events: list[dict]) -> str:
    return "".join(json.dumps(event) + "\n" for event in events)


def _call(event_id: str, timestamp: str) -> dict:
    return {"id": event_id, "customer": "acme", "meter": "calls", "timestamp": timestamp}


def _tokens(event_id: str, timestamp: str, tokens: int) -> dict:
    return {"id": event_id, "customer": "acme", "meter": "tokens", "timestamp": timestamp,
            "properties": {"tokens": tokens}}


def test_backfill_over_a_finalized_month_gives_one_credit_note_and_one_new_invoice(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    cli.ok("events", "import", cli.write("october.jsonl", _jsonl([
        _call("c1", "2026-10-03T09:00:00Z"), _call("c2", "2026-10-17T09:00:00Z"),
        _tokens("t1", "2026-10-10T09:00:00Z", 1500)])))
    cli.ok("invoices", "generate", "--until", "2026-11-01")
    october = next(i for i in cli.ok("invoices", "list", "--json").json() if i["issue_date"] == "2026-11-01")
    # base 49.00 + tokens (500 x 0.002 + 5.00 = 6.00) + calls (2 x 0.10 = 0.20) = 55.20; tax 11.592 -> 11.59
    assert (october["subtotal"], october["tax"], october["total"]) == ("55.20", "11.59", "66.79")
    final = cli.ok("invoices", "finalize", october["number"], "--json").json()[0]
    assert final["number"] == "RC-000001"

    created = cli.ok("backfill", "create", "--from", "2026-10-01", "--to", "2026-11-01", "--json").json()
    backfill = created["id"]
    assert (created["status"], created["from"], created["to"], created["replace"]) == (
        "pending", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", False)
    overlapping = cli("backfill", "create", "--from", "2026-10-20", "--to", "2026-11-20")
    assert_user_error(overlapping, 2, f"overlaps pending backfill {backfill}")

    missed = cli.write("missed.jsonl", _jsonl([
        _call("c3", "2026-10-20T09:00:00Z"), _call("c4", "2026-10-21T09:00:00Z"), _call("c5", "2026-10-22T09:00:00Z"),
        _tokens("t2", "2026-10-23T09:00:00Z", 1000),
        _call("c6", "2026-11-02T09:00:00Z"),  # after the window: rejected, with its line
    ]))
    imported = cli("events", "import", missed, "--backfill", backfill, "--json")
    assert imported.code == 1, imported
    assert (imported.json()["stored"], imported.json()["rejected"]) == (4, {"outside_backfill": 1})
    assert imported.json()["rejections"][0]["line"] == 5
    # pending: nothing billed yet, the final invoice is as it was
    assert cli.ok("invoices", "show", "RC-000001", "--json").json()["total"] == "66.79"
    assert cli.ok("backfill", "show", backfill, "--json").json()["events"] == 4

    closed = cli.ok("backfill", "close", backfill, "--json").json()
    assert closed["events"] == {"added": 4, "already_stored": 0, "replaced": 0}
    assert len(closed["corrections"]) == 1
    # recomputed: base 49.00 + tokens 2500 (1500 x 0.002 + 5.00 = 8.00) + calls 5 x 0.10 = 0.50 = 57.50;
    # tax 12.075 -> 12.08 (half up); total 69.58; the difference to bill is 69.58 - 66.79 = 2.79
    correction = closed["corrections"][0]
    assert (correction["original"]["number"], correction["credit_note"]["total"], correction["replacement"]["total"],
            correction["difference"]) == ("RC-000001", "-66.79", "69.58", "2.79")

    documents = cli.ok("invoices", "export", "--status", "final").json()
    original = next(d for d in documents if d["number"] == "RC-000001")
    assert original["total"] == "66.79" and original["kind"] == "invoice"  # never edited
    notes = [d for d in documents if d["kind"] == "credit_note"]
    new = [d for d in documents if d["kind"] == "invoice" and d["corrects"] is not None]
    assert len(notes) == 1 and len(new) == 1
    note, replacement = notes[0], new[0]
    assert (note["number"], note["corrects"], note["subtotal"], note["tax"], note["total"]) == (
        "CN-000001", original["id"], "-55.20", "-11.59", "-66.79")
    assert [(line["code"], line["quantity"], line["amount"]) for line in note["lines"]] == [
        ("base", "-1", "-49.00"), ("tokens", "-1500", "-6.00"), ("calls", "-2", "-0.20")]
    assert (replacement["number"], replacement["corrects"], replacement["subtotal"], replacement["tax"],
            replacement["total"]) == ("RC-000002", original["id"], "57.50", "12.08", "69.58")
    assert [(line["code"], line["quantity"], line["amount"]) for line in replacement["lines"]] == [
        ("base", "1", "49.00"), ("tokens", "2500", "8.00"), ("calls", "5", "0.50")]

    # what a user reads
    shown = cli.ok("invoices", "show", "CN-000001")
    assert "credit note, final" in shown.out and "credits RC-000001" in shown.out
    table = cli.ok("backfill", "close", backfill)
    assert "already closed" in table.out and "corrected: 0" in table.out
    listed = cli.ok("backfill", "list")
    assert backfill in listed.out and "closed" in listed.out

    # closing again (above) and invoice runs add nothing
    cli.ok("invoices", "generate", "--until", "2026-11-01")
    everything = cli.ok("invoices", "list", "--json").json()
    assert sum(1 for d in everything if d["kind"] == "credit_note") == 1
    assert sum(1 for d in everything if d["corrects"] is not None) == 2

    # revert: the backfilled usage is no longer billed; RC-000002 is credited and re-billed at 66.79
    reverted = cli.ok("backfill", "revert", backfill, "--json").json()
    assert reverted["events"] == {"removed": 4, "restored": 0}
    assert [(c["credit_note"]["number"], c["credit_note"]["total"], c["replacement"]["number"],
             c["replacement"]["total"]) for c in reverted["corrections"]] == [("CN-000002", "-69.58", "RC-000003",
                                                                                 "66.79")]
    assert_user_error(cli("backfill", "close", backfill), 2, f"backfill {backfill} was reverted")
    assert_user_error(cli("backfill", "show", "bf_unknown"), 2, "no backfill 'bf_unknown'")
