"""`ratecard rollups` from a shell: built from the events, kept at import, read by the invoice run,
which bills exactly what it bills from the raw events."""

from __future__ import annotations

from pathlib import Path

from .harness import CATALOG, Cli, assert_user_error, event, jsonl

OCTOBER = jsonl(
    event("c1", "calls", "2026-10-03T09:00:00Z"), event("c2", "calls", "2026-10-17T09:30:00Z"),
    event("t1", "tokens", "2026-10-10T09:00:00Z", tokens=1500),
    event("t2", "tokens", "2026-10-31T23:59:59Z", tokens="12.5"),
)
LATER = jsonl(event("t3", "tokens", "2026-10-20T10:15:00Z", tokens=100), event("c1", "calls", "2026-10-03T09:00:00Z"))


def _invoices(cli: Cli) -> list[tuple[str, str]]:
    cli.ok("invoices", "generate", "--until", "2026-11-01")
    return sorted((i["issue_date"], i["total"]) for i in cli.ok("invoices", "list", "--json").json())


def test_an_invoice_run_from_rollups_bills_what_it_bills_from_the_events(tmp_path: Path) -> None:
    raw, rolled = Cli(tmp_path, "raw.db"), Cli(tmp_path, "rolled.db")
    for cli in (raw, rolled):
        cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
        cli.ok("events", "import", cli.write("october.jsonl", OCTOBER))
    planned = rolled.ok("rollups", "rebuild", "--dry-run", "--json").json()
    assert sorted(item["meters"] for item in planned["build"]) == ["calls", "tokens"]
    assert rolled.ok("rollups", "status", "--json").json() == []  # a dry run writes nothing
    built = rolled.ok("rollups", "rebuild")
    assert "built calls: 2 events" in built.out and "built tokens: 2 events" in built.out
    assert {item["state"] for item in rolled.ok("rollups", "status", "--json").json()} == {"ready"}
    for cli in (raw, rolled):  # kept at import: a new event, a late one and a duplicate
        cli("events", "import", cli.write("later.jsonl", LATER))
    assert _invoices(rolled) == _invoices(raw)
    assert rolled.ok("rollups", "check", "--json").json()["ok"] is True
    again = rolled.ok("rollups", "rebuild")
    assert "ready calls" in again.out and "built" not in again.out  # nothing to do


def test_rebuilding_an_unknown_meter_is_refused(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    assert_user_error(cli("rollups", "rebuild", "--meter", "nope"), 2, "nope")
