"""Looking after one invoice: archive it, refresh a draft, stop the payment retries of a failed
charge, hand it to an ERP, and keep its e-invoice's status.

- archive: a VOID invoice only. A final invoice is a numbered document of the books and stays
  listed; a draft is still to be billed (void it first: a draft was never numbered, so voiding
  breaks no sequence). An archived invoice is left out of the lists and still found by its id.
- refresh: a subscription's draft is recomputed from usage and the applied catalog (the draft
  refresh an INVOICE reprocess job does); a one-off draft is priced again at the customer's
  current tax rate; a final or void invoice never changes.
- cancel dunning: a failed charge's scheduled retries are called off (`payments run` no longer
  tries it); collecting it by hand (`pay`, `ratecard payments retry`, `mark-paid`) still works.
- ERP export: the invoice document of `ratecard invoices export`, for final documents only.
- e-invoices: ratecard builds UBL 2.1 (Peppol BIS Billing 3.0) and Factur-X but runs no Peppol
  access point. Building the documents records the status GENERATED; the caller that submits them
  through its own access point reports what happened next (SUBMITTED, DELIVERED, ACCEPTED,
  REJECTED, FAILED), and each status is kept in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..billing.export import invoice_document
from ..domain.instants import to_micros
from ..store import Store
from ..store.invoices import InvoiceRecord
from ..store.one_off_invoices import EInvoiceStatus, add_e_invoice_status, archive, e_invoice_history
from ..store.payments import update_payment
from . import documents
from .catalog import current_catalog
from .errors import Conflict, InvalidInput, NotFound
from .invoices import find_invoice
from .one_off_invoices import retotal_one_off
from .payments import payment_of
from .reprocess_jobs import refresh_invoice

__all__ = ["E_INVOICE_STATUSES", "EInvoice", "archive_invoice", "cancel_dunning", "e_invoice_of", "e_invoices_of",
           "erp_document", "refresh_draft", "regenerate_e_invoice", "set_e_invoice_status"]

ARCHIVABLE = ("void",)
GENERATED = "GENERATED"
# what the caller's access point may report after ratecard generated the documents
E_INVOICE_STATUSES = (GENERATED, "SUBMITTED", "DELIVERED", "ACCEPTED", "REJECTED", "FAILED")
MAX_MESSAGE = 1000


def archive_invoice(store: Store, reference: str, now: datetime, environment: str = "live") -> InvoiceRecord:
    invoice = find_invoice(store, reference, environment)
    if not archive(store, environment, invoice.id or 0, ARCHIVABLE, to_micros(now)):
        why = ("a final invoice is a numbered document of the books and stays listed" if invoice.status == "final"
               else "void it first (a draft was never numbered, so voiding breaks no sequence)")
        raise Conflict(f"invoice {invoice.display_number} is {invoice.status}: only a void invoice is archived; {why}")
    return find_invoice(store, str(invoice.id), environment)


def refresh_draft(store: Store, reference: str, now: datetime, environment: str = "live") -> InvoiceRecord:
    invoice = find_invoice(store, reference, environment)
    if invoice.status != "draft":
        raise Conflict(f"invoice {invoice.display_number} is {invoice.status}: only a draft is refreshed (a final "
                       "invoice never changes; it is corrected by a credit note)")
    if invoice.is_one_off:
        return retotal_one_off(store, str(invoice.id), now, environment)
    version, catalog = current_catalog(store, environment)
    if invoice.subscription not in catalog.subscriptions:
        raise Conflict(f"invoice {invoice.display_number}: its subscription {invoice.subscription!r} is no longer in "
                       "the catalog; the next invoice run removes the draft")
    refresh_invoice(store, environment, catalog, version, str(invoice.id), invoice.display_number)
    try:
        return find_invoice(store, str(invoice.id), environment)
    except NotFound:
        raise NotFound(f"invoice {invoice.display_number} was removed: its subscription's calendar no longer cuts "
                       "an invoice at its date") from None


def cancel_dunning(store: Store, reference: str, now: datetime, environment: str = "live") -> InvoiceRecord:
    """Call off the scheduled retries of the invoice's failed charge (done already: nothing changes)."""
    invoice = find_invoice(store, reference, environment)
    try:
        payment = payment_of(store, str(invoice.id), environment)
    except NotFound:
        raise Conflict(f"invoice {invoice.display_number} has no payment, so no retries to cancel") from None
    if payment.kind != "charge" or payment.status != "failed":
        raise Conflict(f"invoice {invoice.display_number}: its payment is {payment.status}; only a failed charge has "
                       "retries to cancel")
    if payment.next_attempt_at is not None and not update_payment(
            store, environment, payment.id, {"next_attempt_at": None, "updated_at": to_micros(now)},
            statuses=("failed",), in_flight=False):
        raise Conflict(f"invoice {invoice.display_number}: its payment changed meanwhile; nothing was done")
    return invoice


def erp_document(store: Store, reference: str, environment: str = "live") -> tuple[InvoiceRecord, dict[str, Any]]:
    """The invoice and its export document (what `ratecard invoices export` writes for it)."""
    invoice = find_invoice(store, reference, environment)
    if invoice.status != "final":
        raise Conflict(f"invoice {invoice.display_number} is {invoice.status}: only a final invoice or credit note "
                       "is booked in an ERP")
    return invoice, invoice_document(invoice)


@dataclass(frozen=True)
class EInvoice:
    external_reference: str
    history: list[EInvoiceStatus]

    @property
    def status(self) -> EInvoiceStatus | None:
        return self.history[-1] if self.history else None


def external_reference(invoice: InvoiceRecord) -> str:
    return f"einv_{invoice.id}"


def e_invoices_of(store: Store, invoices: list[InvoiceRecord], environment: str = "live") -> dict[int, EInvoice]:
    """invoice id -> its e-invoice, for the final invoices among them (a draft has none)."""
    finals = [invoice for invoice in invoices if invoice.status == "final" and invoice.id is not None]
    history = e_invoice_history(store, environment, [invoice.id or 0 for invoice in finals])
    return {invoice.id or 0: EInvoice(external_reference(invoice), history.get(invoice.id or 0, []))
            for invoice in finals}


def e_invoice_of(store: Store, invoice: InvoiceRecord, environment: str = "live") -> EInvoice:
    return e_invoices_of(store, [invoice], environment)[invoice.id or 0]


def _final(store: Store, reference: str, environment: str) -> InvoiceRecord:
    invoice = find_invoice(store, reference, environment)
    if invoice.status != "final":
        raise Conflict(f"invoice {invoice.display_number} is {invoice.status}: only a final invoice has an e-invoice")
    return invoice


def _message(message: str | None) -> str | None:
    if message is not None and (not isinstance(message, str) or len(message) > MAX_MESSAGE):
        raise InvalidInput(f"must be text of at most {MAX_MESSAGE} characters", field="message")
    return message


def regenerate_e_invoice(store: Store, reference: str, now: datetime, environment: str = "live",
                         message: str | None = None) -> InvoiceRecord:
    """Build the invoice's UBL and Factur-X again (each checked against EN 16931, as on download) and
    record GENERATED: a new version ready for the caller's access point."""
    invoice = _final(store, reference, environment)
    documents.invoice_ubl(store, str(invoice.id), environment)
    documents.invoice_facturx(store, str(invoice.id), environment)
    add_e_invoice_status(store, environment, invoice.id or 0, external_reference(invoice), GENERATED,
                         _message(message) or "UBL 2.1 and Factur-X generated by ratecard", to_micros(now))
    return invoice


def set_e_invoice_status(store: Store, reference: str, status: str, now: datetime, environment: str = "live", *,
                         reference_given: str | None = None, message: str | None = None) -> EInvoice:
    """Record what the caller's access point reports for the invoice's e-invoice."""
    invoice = _final(store, reference, environment)
    wanted = status.strip().upper() if isinstance(status, str) else ""
    if wanted not in E_INVOICE_STATUSES:
        raise InvalidInput(f"must be one of {', '.join(E_INVOICE_STATUSES)}", field="status")
    if reference_given is not None and reference_given != external_reference(invoice):
        raise NotFound(f"invoice {invoice.display_number} has no e-invoice {reference_given!r} (its e-invoice is "
                       f"{external_reference(invoice)})", field="external_reference")
    add_e_invoice_status(store, environment, invoice.id or 0, external_reference(invoice), wanted,
                         _message(message), to_micros(now))
    return e_invoice_of(store, invoice, environment)
