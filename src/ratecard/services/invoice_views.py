"""The console's invoice pages: the invoice list (filtered and paged in the database) and one
invoice with what its row records (hold, timestamps), the documents correcting it, and the
number finalizing it would give. The actions themselves are services/invoices.py's, as the CLI's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..domain.tiers import TierPart, parts_from_json
from ..store import Store
from ..store.invoice_views import InvoiceSummary, corrections_of, invoice_summary, next_number_of, page_invoices
from .catalog import DEFAULT_INVOICE_PREFIX
from .errors import InvalidInput, NotFound
from .invoices import InvoiceDetail, check_invoice_status, show_invoice

PAGE_SIZE = 50
HOLD_FILTERS = {"yes": True, "no": False}


@dataclass
class InvoiceList:
    rows: list[InvoiceSummary]
    page: int
    has_more: bool


def check_hold_filter(value: str | None) -> bool | None:
    if value in (None, ""):
        return None
    if value not in HOLD_FILTERS:
        raise InvalidInput(f"{value[:40]!r} is not one of {', '.join(HOLD_FILTERS)}", field="on_hold")
    return HOLD_FILTERS[value]


def list_invoice_page(store: Store, environment: str, *, status: str | None = None, on_hold: str | None = None,
                      customer: str | None = None, page: int = 1) -> InvoiceList:
    """A page of the environment's invoices and credit notes, newest first; InvalidInput for a bad filter."""
    check_invoice_status(status or None)
    held = check_hold_filter(on_hold)
    found = page_invoices(store, environment, status=status or None, on_hold=held, customer=customer or None,
                          limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    return InvoiceList(found[:PAGE_SIZE], page, len(found) > PAGE_SIZE)


@dataclass
class InvoiceView:
    detail: InvoiceDetail  # the invoice with its lines, and the invoice it corrects (if any)
    summary: InvoiceSummary  # its header as stored, with the hold
    corrections: list[InvoiceSummary]  # credit notes and replacements correcting it
    next_number: str | None  # a live draft: the number finalizing it would give now

    @property
    def reference(self) -> str:
        return self.detail.invoice.display_number

    @property
    def lines_with_tiers(self) -> list[tuple[Any, tuple[TierPart, ...]]]:
        """Each line with its tier parts (empty for lines that are not tiered, or were stored before
        lines kept their parts)."""
        return [(line, parts_from_json(line.tiers)) for line in self.detail.invoice.lines]


def invoice_view(store: Store, environment: str, reference: str, prefix: str | None) -> InvoiceView:
    """An invoice by number, draft reference or id, in this environment only (NotFound otherwise)."""
    detail = show_invoice(store, reference, environment)
    invoice = detail.invoice
    summary = invoice_summary(store, environment, invoice.id) if invoice.id is not None else None
    if summary is None:
        raise NotFound(f"no invoice {reference!r}")
    next_number = None
    if invoice.status == "draft" and invoice.mode == "live":
        next_number = next_number_of(store, environment, prefix or DEFAULT_INVOICE_PREFIX)
    return InvoiceView(detail, summary, corrections_of(store, environment, summary.id), next_number)


def held_invoice_ids(store: Store, environment: str) -> set[int]:
    """The ids of the environment's invoices on hold (`ratecard invoices hold`, the console)."""
    return {summary.id for summary in page_invoices(store, environment, on_hold=True, limit=None, offset=0)}
