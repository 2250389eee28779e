"""Late events, end to end on SQLite and PostgreSQL: an event for a period whose invoice is final
is stored, flagged late, listed by `ratecard events list --late`, and never changes the final
invoice; an event for a period still on a draft is not late and refreshes the draft."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ratecard.billing.export import invoice_document
from ratecard.billing.run import generate_invoices
from ratecard.ingest.importer import import_file
from ratecard.ingest.reprocess import reprocess
from ratecard.store.catalogs import save_version
from ratecard.store.events import list_events
from ratecard.store.invoices import change_status, finalized_windows, get_invoice, list_invoices

from ..e2e.harness import Cli
from .scenario import CATALOG, EVENTS, NOW, catalog_document, current, workspace, write_jsonl


def _generate(cli: Cli, db_url: str, until: str) -> dict:
    result = cli("invoices", "generate", "--until", until, "--json", db=db_url)
    assert result.code == 0, result
    return result.json()


def _call(event_id: str, timestamp: str, customer: str = "acme") -> dict:
    return {"id": event_id, "customer": customer, "meter": "api_calls", "timestamp": timestamp}


def test_late_events_are_stored_flagged_listed_and_never_change_a_final_invoice(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    cli = Cli(tmp_path)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", EVENTS), NOW)
    assert _generate(cli, db_url, "2026-03-01")["created"] == 3
    opening, january, february = list_invoices(store)
    # the invoice cut at Feb 1 (Berlin) bills January's usage [Jan 15, Feb 1) in arrears and
    # February's base fee in advance; finalize it
    final = change_status(store, january.id, "final", 1, "RC")
    before = invoice_document(final)
    calls = next(line for line in final.lines if line.code == "calls")
    assert calls.quantity == 1

    late = [
        _call("late-1", "2026-01-25T12:00:00Z"),  # inside the final period
        _call("late-2", "2026-01-31T22:59:59Z"),  # its last second (Feb 1 00:00 Berlin is 23:00Z)
        _call("feb-1", "2026-01-31T23:00:00Z"),  # Feb 1 00:00 Berlin: February, on a draft
        _call("feb-2", "2026-02-10T12:00:00Z"),  # February: its base fee is final, its usage is not
        _call("who-1", "2026-01-25T12:00:00Z", customer="nobody"),  # unmatched: not billable, not late
    ]
    result = cli("events", "import", write_jsonl(tmp_path / "late.jsonl", late), "--json", db=db_url)
    assert result.code == 0, result
    report = result.json()
    assert report["stored"] == 5
    assert report["flags"] == {"late": 2, "unknown_customer": 1}
    assert sorted(report["samples"]["late"]) == ["late-1", "late-2"]

    # stored, flagged, listed
    assert [e.id for e in list_events(store, late=True)] == ["late-2", "late-1"]
    flags = {e.id: (e.status, e.late) for e in list_events(store, limit=None)}
    assert flags["feb-1"] == flags["feb-2"] == ("matched", False)
    assert flags["who-1"] == ("unknown_customer", False)
    listed = cli("events", "list", "--late", "--json", db=db_url)
    assert listed.code == 0, listed
    assert [(e["id"], e["late"], e["status"], e["timestamp"]) for e in listed.json()] == [
        ("late-2", True, "matched", "2026-01-31T22:59:59Z"), ("late-1", True, "matched", "2026-01-25T12:00:00Z")]
    table = cli("events", "list", "--late", db=db_url)
    assert table.code == 0 and "late-1" in table.out and "late-2" in table.out and "feb-1" not in table.out
    assert "2 late event(s)" in table.out
    filtered = cli("events", "list", "--status", "unmatched", "--customer", "nobody", "--limit", "5", "--json",
                   db=db_url).json()
    assert [e["id"] for e in filtered] == ["who-1"]
    refused = cli("events", "list", "--status", "bogus", db=db_url)
    assert refused.code == 2 and "--status" in refused.err

    # generating again leaves the final invoice alone and refreshes only the February draft
    run = _generate(cli, db_url, "2026-03-01")
    assert (run["created"], run["updated"], run["skipped_final"]) == (0, 1, 1)
    assert invoice_document(get_invoice(store, final.number)) == before
    refreshed = get_invoice(store, str(february.id))
    assert refreshed.status == "draft"
    assert next(line for line in refreshed.lines if line.code == "calls").quantity == 2
    assert invoice_document(get_invoice(store, str(opening.id))) == invoice_document(opening)


def test_a_draft_period_takes_events_that_are_not_late(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", EVENTS), NOW)
    cli = Cli(tmp_path)
    _generate(cli, db_url, "2026-02-01")
    assert finalized_windows(store) == {}
    report = import_file(store, catalog, write_jsonl(tmp_path / "more.jsonl", [_call("d-1", "2026-01-26T12:00:00Z")]),
                         NOW)
    assert (report.stored, dict(report.flags)) == (1, {})
    assert list_events(store, late=True) == []
    assert _generate(cli, db_url, "2026-02-01")["updated"] == 1
    draft = list_invoices(store)[1]
    assert next(line for line in draft.lines if line.code == "calls").quantity == 2
    # once final, the same period's window is known (arrears lines only, per customer) ...
    change_status(store, draft.id, "final", 1, "RC")
    windows = finalized_windows(store)
    assert list(windows) == ["acme"]
    assert {(end - start) // 86_400_000_000 for start, end in windows["acme"]} == {17}  # Jan 15 -> Feb 1
    # ... and a dry run reports an event for it as late without storing it
    dry = import_file(store, catalog, write_jsonl(tmp_path / "dry.jsonl", [_call("d-2", "2026-01-27T12:00:00Z")]),
                      NOW, dry_run=True)
    assert dict(dry.flags) == {"late": 1}
    assert [e.id for e in list_events(store, late=True)] == []


def test_reprocessing_flags_late_what_it_matches_in_a_final_period(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", EVENTS), NOW)
    version, catalog = current(store)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    change_status(store, list_invoices(store)[1].id, "final", 1, "RC")
    unknown = [{"id": "x-1", "customer": "acme", "meter": "extra", "timestamp": "2026-01-20T10:00:00Z"},
               {"id": "x-2", "customer": "acme", "meter": "extra", "timestamp": "2026-02-20T10:00:00Z"}]
    report = import_file(store, catalog, write_jsonl(tmp_path / "x.jsonl", unknown), NOW)
    assert dict(report.flags) == {"unknown_meter": 2}
    # the meter becomes known and charged: x-1 falls in the final January period, x-2 does not
    charged = CATALOG.replace("meters:\n", "meters:\n  - {code: extra, aggregation: count}\n").replace(
        "    charges:\n", "    charges:\n      - {code: extra, meter: extra, model: per_unit, unit_amount: \"1\"}\n")
    save_version(store, catalog_document(charged), 2)
    _, catalog = current(store)
    result = reprocess(store, catalog, NOW)
    assert (result["matched"], result["late"]) == (2, 1)
    assert {e.id: (e.status, e.late) for e in list_events(store, customer="acme", limit=None)
            if e.id.startswith("x-")} == {"x-1": ("matched", True), "x-2": ("matched", False)}
