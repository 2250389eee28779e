"""Sending final invoices to their customers by email, and the delivery log.

`ratecard invoices send NUMBER` sends at once; with `billing_entity.email.send_on_finalization`
each finalized invoice is queued and `ratecard payments run` sends it (finalization never waits
for an SMTP server). Every try is logged: recipient, sent or failed, and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from smtplib import SMTPException
from typing import Any

from ..domain.instants import from_micros, to_micros
from ..payments.mail import Attachment, MailRefused, SmtpSettings, invoice_message, send
from ..store import Store
from ..store.invoices import InvoiceNotFound, InvoiceRecord, get_invoice
from ..store.payments import DeliveryRecord, add_delivery, finish_delivery, list_deliveries, payment_of_invoice
from .catalog import optional_catalog
from .errors import Conflict, InvalidInput, NotFound, ServiceError


def attachments_for(store: Store, invoice: InvoiceRecord, environment: str) -> list[Attachment]:
    """What an invoice email carries: the invoice's PDF (the one `ratecard invoices pdf` writes)."""
    from .documents import invoice_pdf

    document = invoice_pdf(store, str(invoice.id), environment)
    return [Attachment(document.file_name, document.media_type, document.content)]


def delivery_document(delivery: DeliveryRecord) -> dict[str, Any]:
    return {"id": delivery.id, "invoice": delivery.invoice_number, "invoice_id": delivery.invoice_id,
            "recipient": delivery.recipient, "status": delivery.status, "detail": delivery.detail,
            "created_at": _instant(delivery.created_at), "sent_at": _instant(delivery.sent_at)}


def _instant(micros: int | None) -> str | None:
    return from_micros(micros).isoformat().replace("+00:00", "Z") if micros is not None else None


def _body(invoice: InvoiceRecord, entity_name: str, customer_name: str, payment_line: str) -> str:
    lines = [f"Dear {customer_name},", "",
             f"please find invoice {invoice.display_number} from {entity_name}, issued {invoice.issue_date}.", "",
             f"Subtotal: {invoice.subtotal:f} {invoice.currency}",
             f"Tax ({invoice.tax_rate:f}%): {invoice.tax:f} {invoice.currency}",
             f"Total: {invoice.total:f} {invoice.currency}", ""]
    if payment_line:
        lines += [payment_line, ""]
    lines.append(entity_name)
    return "\n".join(lines) + "\n"


def _payment_line(store: Store, environment: str, invoice: InvoiceRecord) -> str:
    payment = payment_of_invoice(store, environment, invoice.id or 0)
    if payment is None:
        return ""
    if payment.status == "succeeded":
        return "This invoice is paid. Thank you."
    if payment.status == "requires_action" and payment.action_url:
        return f"Your bank asks you to confirm the payment: {payment.action_url}"
    if payment.method == "stripe":
        return "The total will be charged to your payment method on file."
    return f"Please transfer the total, quoting {invoice.display_number}."


def _compose(store: Store, invoice: InvoiceRecord, environment: str, to: str | None) -> tuple[str, Any]:
    """(recipient, message); MailRefused for a missing or hostile address, name or setting."""
    _, catalog = optional_catalog(store, environment)
    if catalog is None:
        raise MailRefused("no catalog: the sender is set in billing_entity.email")
    entity = catalog.entity_for(invoice.customer)  # the sender is the entity that bills the customer
    if entity.email is None or entity.email.sender is None:
        raise MailRefused("set billing_entity.email.sender in the catalog (the address invoices are sent from)")
    customer = catalog.customers.get(invoice.customer)
    recipient = to if to is not None else (customer.email if customer is not None else None)
    if recipient is None:
        raise MailRefused(f"customer {invoice.customer!r} has no email in the catalog (or give --to)")
    name = (customer.name if customer is not None else None) or invoice.customer
    message = invoice_message(
        sender=entity.email.sender, sender_name=entity.email.sender_name or entity.name, recipient=recipient,
        recipient_name=name, subject=f"Invoice {invoice.display_number} from {entity.name}",
        body=_body(invoice, entity.name, name, _payment_line(store, environment, invoice)),
        attachments=attachments_for(store, invoice, environment))
    return recipient, message


def _deliver(store: Store, invoice: InvoiceRecord, environment: str, to: str | None) -> tuple[str | None, str, str | None]:
    """(recipient, sent | failed, detail); a refused address or setting raises MailRefused."""
    recipient, message = _compose(store, invoice, environment, to)
    try:
        send(SmtpSettings.from_environment(), message)
    except (SMTPException, OSError) as exc:
        return recipient, "failed", f"{type(exc).__name__}: {str(exc)[:300]}"
    return recipient, "sent", None


def send_invoice(store: Store, reference: str, now: datetime, environment: str = "live",
                 to: str | None = None) -> DeliveryRecord:
    """Send one final invoice now; the try is logged whatever its outcome. A hostile or missing
    address or setting is refused (logged too) before anything is sent."""
    try:
        invoice = get_invoice(store, reference, environment)
    except InvoiceNotFound as exc:
        raise NotFound(str(exc)) from None
    if invoice.status != "final":
        raise Conflict(f"invoice {reference} is {invoice.status}: only a final invoice is sent")
    now_us = to_micros(now)
    try:
        recipient, status, detail = _deliver(store, invoice, environment, to)
    except MailRefused as exc:
        add_delivery(store, environment, invoice.id or 0, None, "failed", str(exc), now_us)
        raise InvalidInput(str(exc), field="to" if to is not None else None) from None
    delivery_id = add_delivery(store, environment, invoice.id or 0, recipient, status, detail, now_us)
    return next(d for d in list_deliveries(store, environment, invoice.id) if d.id == delivery_id)


def queue_on_finalization(store: Store, finalized: Sequence[InvoiceRecord], now: datetime, environment: str) -> int:
    """Queue the just-finalized invoices' emails when the entity sends on finalization."""
    _, catalog = optional_catalog(store, environment)
    if catalog is None:
        return 0
    now_us = to_micros(now)
    queued = 0
    for invoice in finalized:
        settings = catalog.entity_for(invoice.customer).email
        if settings is None or not settings.send_on_finalization:
            continue
        if invoice.status == "final" and invoice.mode == "live":
            add_delivery(store, environment, invoice.id or 0, None, "queued", None, now_us)
            queued += 1
    return queued


def deliver_queued(store: Store, now: datetime, environment: str = "live") -> dict[str, int]:
    """Send every queued invoice email; {"sent": n, "failed": m}. One that cannot be composed (a
    refused address, a PDF that cannot be made) is logged as failed and the others still go."""
    counts: dict[str, int] = {}
    queued = list_deliveries(store, environment, status="queued")
    if not queued:
        return counts
    for delivery in queued:
        try:
            invoice = get_invoice(store, str(delivery.invoice_id), environment)
        except InvoiceNotFound:
            continue
        try:
            recipient, status, detail = _deliver(store, invoice, environment, None)
        except (MailRefused, ServiceError) as exc:  # ServiceError: its PDF could not be made
            # one email that cannot be composed is logged with why; the others are still sent
            recipient, status, detail = None, "failed", str(exc)
        if finish_delivery(store, environment, delivery.id, recipient, status, detail, to_micros(now)):
            counts[status] = counts.get(status, 0) + 1
    return counts


def find_deliveries(store: Store, environment: str = "live", reference: str | None = None) -> list[DeliveryRecord]:
    invoice_id = None
    if reference is not None:
        try:
            invoice_id = get_invoice(store, reference, environment).id
        except InvoiceNotFound as exc:
            raise NotFound(str(exc)) from None
    return list_deliveries(store, environment, invoice_id)
