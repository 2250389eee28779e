"""Acting on one invoice from an API: which drafts are on hold, crediting a final invoice (a credit
note, optionally with a copy that replaces it), collecting an invoice now and refunding a paid one.

Crediting writes what a correction writes (store/corrections.py): a credit note negating every
line and the totals, and with `copy` a replacement invoice holding the same lines, both final and
numbered at once, both pointing at the original. A credit note is never credited, a draft is
voided instead, and an invoice is credited once (a second credit finds the newer revision and
writes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..domain.instants import to_micros
from ..payments import stripe_gateway
from ..payments.collect import MethodFor, cancel_credited_charges, collect_one, enqueue_refunds
from ..payments.stripe_gateway import StripeNotConfigured
from ..store import Store
from ..store.corrections import credit_note_for, save_correction
from ..store.invoice_states import live_drafts
from ..store.invoices import InvoiceRecord, list_invoices
from ..store.payments import PaymentRecord, payment_of_invoice
from .catalog import current_catalog
from .errors import Conflict
from .invoices import find_invoice
from .payment_methods import stored_method, unusable
from .payments import StripeApi, after_finalization, dunning_days, payment_of, retry_payment, stripe_events

__all__ = ["Credit", "copy_of", "credit_invoice", "held_invoice_ids", "pay_invoice", "refund_invoice"]


def held_invoice_ids(store: Store, environment: str = "live") -> set[int]:
    """The ids of the live drafts on hold (`ratecard invoices hold`): never finalized until released."""
    return {draft.id for draft in live_drafts(store, environment) if draft.on_hold}


@dataclass
class Credit:
    original: InvoiceRecord
    credit_note: InvoiceRecord
    copy: InvoiceRecord | None


def copy_of(invoice: InvoiceRecord, issue_date: str) -> InvoiceRecord:
    """The copy `credit_and_copy` writes: the same lines and totals, a new final document at the
    next revision of the same cut, pointing at the invoice it replaces (numbered when written)."""
    return replace(invoice, id=None, number=None, status="final", issue_date=issue_date,
                   revision=invoice.revision + 1, corrects=invoice.id, created_at=0, updated_at=0,
                   finalized_at=None, draft_number=None, lines=[replace(line) for line in invoice.lines])


def credit_invoice(store: Store, reference: str, now: datetime, environment: str = "live", *,
                   copy: bool = False) -> Credit:
    """Credit a final invoice in full by a credit note (numbered in the credit notes' sequence of the
    entity that bills the customer today); with `copy`, also a final replacement invoice holding the
    same lines, whose payment is collected like any final invoice's."""
    invoice = find_invoice(store, reference, environment)
    if invoice.kind == "credit_note":
        raise Conflict(f"{reference} is a credit note: a credit note is never credited")
    if invoice.status != "final":
        raise Conflict(f"invoice {reference} is {invoice.status}: only a final invoice is credited (a draft is "
                       "voided, or refreshed by the next invoice run)")
    if invoice.mode == "shadow":
        raise Conflict(f"invoice {reference} is a shadow invoice (the legacy system bills its periods): it is "
                       "never credited")
    _, catalog = current_catalog(store, environment)
    issue_date = now.astimezone(ZoneInfo(invoice.timezone)).date().isoformat()
    note = credit_note_for(invoice, issue_date)
    replacement = copy_of(invoice, issue_date) if copy else None
    saved = save_correction(store, environment, invoice, note, replacement, to_micros(now),
                            catalog.invoice_prefix_for(invoice.customer), catalog.credit_note_prefix_for(invoice.customer))
    if saved is None:
        raise Conflict(f"invoice {reference} was credited or corrected already (a newer document stands for its "
                       "period); nothing was written")
    credit_note, new_invoice = saved
    # the credited invoice's charge not collected yet is canceled now, so a `pay` cannot collect it
    cancel_credited_charges(store, environment, to_micros(now))
    if new_invoice is not None:
        after_finalization(store, [new_invoice], now, environment)  # the copy's payment outbox row
    return Credit(invoice, credit_note, new_invoice)


def _client(api: StripeApi | None, reference: str) -> Any:
    try:
        return (api or stripe_gateway.client)()
    except StripeNotConfigured as exc:
        raise Conflict(f"invoice {reference}: {exc}") from None


def pay_invoice(store: Store, reference: str, now: datetime, environment: str = "live", *,
                api: StripeApi | None = None, method: MethodFor | None = None) -> PaymentRecord:
    """Collect a final invoice now through Stripe: its first attempt (not waiting for `payments run`)
    or, after a failure, a retry. An invoice paid, credited or paid by transfer is refused."""
    payment = payment_of(store, reference, environment)
    if payment.kind != "charge":
        raise Conflict(f"{reference} is a credit note: it is refunded (`refund` on the invoice it credits), not paid")
    if payment.status == "succeeded":
        raise Conflict(f"invoice {reference} is paid already")
    if payment.status == "canceled":
        raise Conflict(f"invoice {reference} was credited ({payment.failure}): nothing is owed")
    if payment.method != "stripe":
        raise Conflict(f"invoice {reference} is not collected through Stripe (its customer has no stripe_customer_id): "
                       "it is paid by transfer, recorded with `ratecard payments mark-paid`")
    if payment.status != "pending" or payment.in_flight:
        return retry_payment(store, reference, now, environment, api=api, method=method)
    collect_one(store, payment, to_micros(now), dunning_days(store, environment), _client(api, reference),
                method or stored_method(store, environment), stripe_events(store, environment, now),
                unusable=unusable(store, environment))
    return payment_of(store, reference, environment)


def refund_invoice(store: Store, reference: str, now: datetime, environment: str = "live", *,
                   api: StripeApi | None = None) -> tuple[Credit | None, PaymentRecord]:
    """Pay back an invoice paid through Stripe: a credit note for it (unless one credits it
    already) and its refund, sent now. (Credit, the refund)."""
    invoice = find_invoice(store, reference, environment)
    charge = payment_of_invoice(store, environment, invoice.id or 0, "charge") if invoice.kind == "invoice" else None
    if charge is None or charge.status != "succeeded":
        raise Conflict(f"invoice {reference} is not paid: only a paid invoice is refunded (an unpaid final invoice "
                       "is credited)")
    if charge.method != "stripe":
        raise Conflict(f"invoice {reference} was paid by transfer ({charge.reference}): pay it back by transfer "
                       "and credit it")
    client = _client(api, reference)  # Stripe is configured before anything is written
    credit = None
    note = _credit_note_of(store, invoice, environment)
    if note is None:
        credit = credit_invoice(store, reference, now, environment)
        note = credit.credit_note
    else:
        done = payment_of_invoice(store, environment, note.id or 0, "refund")
        if done is not None and done.status == "succeeded":
            raise Conflict(f"invoice {reference} is refunded already (credit note {note.display_number})")
    enqueue_refunds(store, environment, to_micros(now))
    refund = payment_of_invoice(store, environment, note.id or 0, "refund")
    if refund is None:
        raise Conflict(f"invoice {reference}: its charge is refunded in full already")
    if refund.status in ("pending", "failed") and not refund.in_flight:
        collect_one(store, refund, to_micros(now), dunning_days(store, environment), client)
    return credit, payment_of(store, str(note.id), environment)


def _credit_note_of(store: Store, invoice: InvoiceRecord, environment: str) -> InvoiceRecord | None:
    return next((other for other in list_invoices(store, environment, "final")
                 if other.kind == "credit_note" and other.corrects == invoice.id), None)
