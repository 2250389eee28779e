"""Recomputing one draft (a reprocess job of kind INVOICE) leaves every other subscription's drafts
alone: it once removed them all, taking them for drafts the catalog no longer cuts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ratecard.billing.run import generate_invoices
from ratecard.services.catalog import current_catalog
from ratecard.services.reprocess_jobs import refresh_invoice
from ratecard.store import open_store
from ratecard.store.invoices import list_invoices

from ..migrated import at_head
from .test_shared_invoice_run import NOW, prepare


def test_refreshing_one_draft_keeps_the_others(db_url: str, tmp_path: Path) -> None:
    store = open_store(at_head(db_url))
    prepare(store, "live", tmp_path, 3, 4, set(), "next_invoice")
    version, catalog = current_catalog(store)
    generate_invoices(store, catalog, version, date(2026, 4, 1), NOW)
    before = {invoice.id: invoice for invoice in list_invoices(store, status="draft")}
    target = next(invoice for invoice in before.values() if invoice.subscription == "s1")
    result = refresh_invoice(store, "live", catalog, version, str(target.id), str(target.id))
    assert result["removed"] == 0 and result["removals"] == []
    after = {invoice.id: invoice for invoice in list_invoices(store, status="draft")}
    assert after.keys() == before.keys()
    assert all(after[key].same_content(before[key]) for key in before)
