"""Catalog -> events -> draft invoices, the same scenarios on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ratecard.billing.run import generate_invoices
from ratecard.domain.invoice import InvoiceStateError
from ratecard.ingest.importer import import_file
from ratecard.ingest.reprocess import reprocess
from ratecard.store.events import count_by_status
from ratecard.store.invoices import change_status, list_invoices

from .scenario import CATALOG, EVENTS, NOW, current, workspace, write_jsonl

D = Decimal


def _run(store, until=date(2026, 2, 1)):
    version, catalog = current(store)
    return generate_invoices(store, catalog, version, until, NOW)


def _lines(invoice):
    return {line.code: line for line in invoice.lines}


def test_hand_priced_invoices(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    report = import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", EVENTS), NOW)
    assert report.stored == 6 and not report.rejected
    run = _run(store)
    assert (run.created, run.updated) == (2, 0)
    first, second = list_invoices(store)
    # opening cut at 2026-01-15: base 49.00 x 17/31 days = 26.870967... -> 26.87; tax 19% = 5.1053 -> 5.11
    assert [(line.code, line.amount) for line in first.lines] == [("base", D("26.87"))]
    assert (first.subtotal, first.tax, first.total) == (D("26.87"), D("5.11"), D("31.98"))
    assert first.issue_date == "2026-01-15"
    lines = _lines(second)
    assert lines["base"].amount == D("49.00") and lines["base"].service_start == "2026-02-01"
    # tokens 1200 + 300.5 = 1500.5: first 1000 free, 500.5 x 0.002 = 1.001 + flat 5 = 6.001 -> 6.00
    assert lines["tokens"].quantity == D("1500.5") and lines["tokens"].amount == D("6.00")
    # one call x 0.0001 = 0.0001 -> 0.00, still shown
    assert lines["calls"].quantity == 1 and lines["calls"].amount == D("0.00")
    # max gb 201: ceil((201 - 100) / 100) = 2 packages x 5 = 10
    assert lines["storage"].quantity == 201 and lines["storage"].amount == D("10.00")
    # seats level 3 from Jan 25 (Berlin) to Feb 1 (Berlin): 7 of 17 days -> 1.235294117647; x 10 = 12.35
    assert lines["seats"].amount == D("12.35")
    # only gpt-4o tokens: 1200 x 0.01 = 12.00
    assert lines["gpt4"].quantity == 1200 and lines["gpt4"].amount == D("12.00")
    assert lines["tokens"].service_start == "2026-01-15" and lines["tokens"].service_end == "2026-02-01"
    # the period spent 26.87 (advance) + 6 + 0 + 10 + 12.35 + 12 = 67.22 >= the prorated minimum
    # 100 x 17/31 = 54.84, so no true-up line
    assert "minimum" not in lines
    assert second.subtotal == D("89.35")
    # 89.35 x 19% = 16.9765 -> 16.98
    assert (second.tax, second.total) == (D("16.98"), D("106.33"))


def test_generate_twice_changes_nothing_and_late_events_refresh_drafts(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", EVENTS), NOW)
    _run(store)
    before = list_invoices(store)
    again = _run(store)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert [i.updated_at for i in list_invoices(store)] == [i.updated_at for i in before]
    late = [{"id": "late-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-30T10:00:00Z"}]
    import_file(store, catalog, write_jsonl(tmp_path / "late.jsonl", late), NOW)
    refreshed = _run(store)
    assert refreshed.updated == 1
    assert _lines(list_invoices(store)[1])["calls"].quantity == 2


def test_final_invoices_never_change(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", EVENTS), NOW)
    _run(store)
    draft = list_invoices(store)[1]
    final = change_status(store, draft.id, "final", 1, "RC")
    assert final.number == "RC-000001" and final.status == "final"
    late = [{"id": "late-2", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-30T10:00:00Z",
             "properties": {"tokens": 99999}}]
    import_file(store, catalog, write_jsonl(tmp_path / "late.jsonl", late), NOW)
    report = _run(store)
    assert report.skipped_final == 1
    assert list_invoices(store)[1].total == final.total  # never edited: the late tokens are corrected
    [correction] = report.corrections  # by a document of its own (no later draft in this run)
    assert correction["kind"] == "correction" and correction["document"] == "RC-000002"
    with pytest.raises(InvoiceStateError):
        change_status(store, draft.id, "void", 2, "RC")
    second = change_status(store, list_invoices(store)[0].id, "final", 3, "RC")
    assert second.number == "RC-000003"


def test_idempotent_import_and_split_batches_give_the_same_invoice(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    write_jsonl(tmp_path / "a.jsonl", EVENTS[:3])
    write_jsonl(tmp_path / "b.jsonl", EVENTS[2:])  # e3 is in both files
    first = import_file(store, catalog, tmp_path / "a.jsonl", NOW)
    second = import_file(store, catalog, tmp_path / "b.jsonl", NOW)
    assert (first.stored, second.stored, second.duplicates) == (3, 3, 1)
    again = import_file(store, catalog, tmp_path / "b.jsonl", NOW)
    assert (again.stored, again.duplicates) == (0, 4)
    _run(store)
    assert list_invoices(store)[1].total == D("106.33")


def test_exact_decimal_sums(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    events = [{"id": f"d{i}", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
               "properties": {"tokens": value}} for i, value in enumerate(["0.1", "0.2", "1000.0000000000000001"])]
    import_file(store, catalog, write_jsonl(tmp_path / "d.jsonl", events), NOW)
    _run(store)
    assert _lines(list_invoices(store)[1])["tokens"].quantity == D("1000.3000000000000001")


def test_unmatched_events_are_kept_and_reprocessed(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    events = [
        {"id": "u1", "customer": "newco", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"},
        {"id": "u4", "customer": "newco", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
         "properties": {"tokens": "1000.1000000000000000055"}},
        {"id": "u2", "customer": "acme", "meter": "tokens", "timestamp": "2025-12-20T10:00:00Z",
         "properties": {"tokens": 5}},
        {"id": "u3", "customer": "acme", "meter": "bananas", "timestamp": "2026-01-20T10:00:00Z"},
    ]
    report = import_file(store, catalog, write_jsonl(tmp_path / "u.jsonl", events), NOW)
    assert dict(report.flags) == {"unknown_customer": 2, "no_subscription": 1, "unknown_meter": 1}
    assert count_by_status(store, "live") == {"unknown_customer": 2, "no_subscription": 1, "unknown_meter": 1}
    extended = CATALOG.replace(
        "subscriptions:",
        "  - {reference: newco, currency: EUR, tax_rate: '0'}\nsubscriptions:\n"
        "  - {reference: newco-pro, customer: newco, plan: pro, start: 2026-01-01}",
    )
    from ratecard.store.catalogs import save_version

    from .scenario import catalog_document

    save_version(store, catalog_document(extended), 1)
    _, catalog = current(store)
    result = reprocess(store, catalog, NOW)
    assert result["matched"] == 2 and result["still_unmatched"] == {"no_subscription": 1, "unknown_meter": 1}
    _run(store)
    newco = [i for i in list_invoices(store) if i.customer == "newco" and i.issue_date == "2026-02-01"][0]
    assert _lines(newco)["calls"].quantity == 1
    # the decimal survived storage and reprocessing digit for digit
    assert _lines(newco)["tokens"].quantity == D("1000.1000000000000000055")
