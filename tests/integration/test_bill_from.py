"""bill_from: a subscription imported from another system is billed only from that date on."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ratecard.billing.run import generate_invoices
from ratecard.ingest.importer import import_file
from ratecard.store.invoices import list_invoices

from .scenario import CATALOG, EVENTS, NOW, current, workspace, write_jsonl


def test_periods_before_bill_from_are_never_billed(db_url: str, tmp_path: Path) -> None:
    migrated = CATALOG.replace("start: 2026-01-15, billing_anchor: 1}", "start: 2026-01-15, billing_anchor: 1, "
                               "bill_from: 2026-02-01}")
    store, _ = workspace(db_url, migrated)
    version, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", EVENTS), NOW)
    generate_invoices(store, catalog, version, date(2026, 3, 1), NOW)
    invoices = list_invoices(store)
    # Jan 15 - Feb 1 was billed by the old system (its advance fee and its usage): the opening
    # invoice disappears, the Feb 1 invoice keeps only February's advance fee
    assert [i.issue_date for i in invoices] == ["2026-02-01", "2026-03-01"]
    assert [(line.code, line.service_start) for line in invoices[0].lines] == [("base", "2026-02-01")]
    assert all(line.service_start >= "2026-02-01" for i in invoices for line in i.lines)
    # from bill_from on, billing is complete: March's fee plus February's usage and minimum
    assert {line.code for line in invoices[1].lines} >= {"base", "tokens", "calls", "minimum"}
    store.dispose()
