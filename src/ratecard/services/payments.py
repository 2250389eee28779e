"""Payment use cases: collect (the `payments run` step), list, retry, mark paid, Stripe's webhooks,
and what finalization hands over to collection.

Finalization never calls Stripe: it writes one outbox row per final invoice (in
`after_finalization`), and `ratecard payments run` (cron, like `monitor run`) makes the calls, each
bounded in time. A Stripe outage therefore delays payments, never invoices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ..domain.instants import from_micros, to_micros
from ..payments import stripe_gateway
from ..payments.amounts import from_minor
from ..payments.collect import (
    MethodFor,
    Then,
    cancel_credited_charges,
    collect_due,
    collect_one,
    enqueue_charges,
    enqueue_refunds,
)
from ..payments.dunning import DEFAULT_DAYS
from ..payments.stripe_gateway import StripeNotConfigured
from ..payments.webhooks import Applied, apply_event
from ..store import Store
from ..store.invoices import InvoiceNotFound, InvoiceRecord, get_invoice, load_invoices
from ..store.payments import (
    PaymentRecord,
    charge_statuses,
    final_invoices_without_charge,
    get_payment,
    list_payments,
    payment_of_invoice,
    update_payment,
)
from . import webhook_events
from .catalog import optional_catalog
from .errors import Conflict, InvalidInput, NotFound
from .payment_methods import stored_method, unusable

STATUSES = ("pending", "succeeded", "failed", "requires_action", "uncollectible", "canceled")
# final invoices the sweep of `payments run` still enqueues (one a crash kept from its outbox row,
# a replacement written by a correction); older ones are never charged by surprise
SWEEP_WINDOW = timedelta(days=7)
StripeApi = Callable[[], Any]


def check_payment_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"{status!r} is not one of {', '.join(STATUSES)}", field="status")


def payment_document(payment: PaymentRecord) -> dict[str, Any]:
    return {
        "id": payment.id, "invoice": payment.invoice_number, "invoice_id": payment.invoice_id, "kind": payment.kind,
        "customer": payment.customer, "method": payment.method, "status": payment.status,
        "amount": f"{from_minor(payment.amount_minor, payment.currency):f}", "currency": payment.currency,
        "attempts": payment.attempt, "failures": payment.failures, "stripe_id": payment.intent_id,
        "action_url": payment.action_url, "failure": payment.failure,
        "next_attempt_at": _instant(payment.next_attempt_at), "reference": payment.reference,
        "in_flight": payment.in_flight, "updated_at": _instant(payment.updated_at),
    }


def payment_amount(payment: PaymentRecord) -> Decimal:
    """What the payment moves, in the currency's units (a refund's amount is positive too)."""
    return from_minor(payment.amount_minor, payment.currency)


def _instant(micros: int | None) -> str | None:
    return from_micros(micros).isoformat().replace("+00:00", "Z") if micros is not None else None


def dunning_days(store: Store, environment: str) -> Callable[[str], Sequence[int]]:
    """customer -> the dunning days of the entity that bills them (the catalog is read once)."""
    _, catalog = optional_catalog(store, environment)

    def days_for(customer: str) -> Sequence[int]:
        settings = catalog.entity_for(customer).payments if catalog is not None else None
        return tuple(settings.dunning_days) if settings is not None else DEFAULT_DAYS

    return days_for


def _stripe_customers(store: Store, environment: str) -> dict[str, str | None]:
    _, catalog = optional_catalog(store, environment)
    if catalog is None:
        return {}
    return {reference: spec.stripe_customer_id for reference, spec in catalog.customers.items()}


def after_finalization(store: Store, finalized: Sequence[InvoiceRecord], now: datetime, environment: str) -> None:
    """The outbox rows of invoices just finalized (and their emails when the entity sends on
    finalization). No network: `payments run` charges and sends."""
    from .invoice_delivery import queue_on_finalization

    invoices = [{"id": i.id, "customer": i.customer, "currency": i.currency, "total": i.total}
                for i in finalized if i.kind == "invoice" and i.mode == "live" and i.status == "final"]
    if invoices:
        enqueue_charges(store, environment, invoices, _stripe_customers(store, environment), to_micros(now))
    queue_on_finalization(store, finalized, now, environment)


@dataclass
class PaymentRun:
    enqueued: int = 0
    canceled: int = 0  # charges of invoices credited before they were collected
    refunds_enqueued: int = 0
    payments: dict[str, int] = field(default_factory=dict)
    emails: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"enqueued": self.enqueued, "canceled": self.canceled,
                "refunds_enqueued": self.refunds_enqueued, "payments": self.payments,
                "emails": self.emails, "problems": self.problems}


def run_payments(store: Store, now: datetime, environment: str = "live", *, api: StripeApi | None = None) -> PaymentRun:
    """One pass of collection: enqueue what finalization may have missed, refund credit notes of
    paid invoices, charge every due payment, send the queued invoice emails."""
    from .invoice_delivery import deliver_queued

    now_us = to_micros(now)
    run = PaymentRun()
    missed = final_invoices_without_charge(store, environment, to_micros(now - SWEEP_WINDOW))
    run.enqueued = enqueue_charges(store, environment, missed, _stripe_customers(store, environment), now_us)
    run.canceled = cancel_credited_charges(store, environment, now_us)
    run.refunds_enqueued = enqueue_refunds(store, environment, now_us)
    try:
        collected = collect_due(store, environment, now_us, dunning_days(store, environment),
                                api or stripe_gateway.client, stored_method(store, environment),
                                stripe_events(store, environment, now), unusable=unusable(store, environment))
        run.payments = collected.statuses
    except StripeNotConfigured as exc:
        run.problems.append(f"payments due but not charged: {exc}")
    run.emails = deliver_queued(store, now, environment)
    return run


def find_payments(store: Store, environment: str = "live", status: str | None = None,
                  limit: int | None = None, offset: int = 0) -> list[PaymentRecord]:
    check_payment_status(status)
    return list_payments(store, environment, status, limit=limit, offset=offset)


def find_payment(store: Store, payment_id: int, environment: str = "live") -> PaymentRecord:
    """One payment by its id (a charge or a refund); NotFound when the environment has none."""
    payment = get_payment(store, environment, payment_id)
    if payment is None:
        raise NotFound(f"payment {payment_id} does not exist")
    return payment


def _invoice(store: Store, reference: str, environment: str) -> InvoiceRecord:
    try:
        return get_invoice(store, reference, environment)
    except InvoiceNotFound as exc:
        raise NotFound(str(exc)) from None


def payment_of(store: Store, reference: str, environment: str = "live") -> PaymentRecord:
    """The charge of an invoice, or the refund of a credit note."""
    invoice = _invoice(store, reference, environment)
    payment = payment_of_invoice(store, environment, invoice.id or 0, "refund" if invoice.kind == "credit_note"
                                 else "charge")
    if payment is None:
        raise NotFound(f"invoice {reference} has no payment (only a final invoice, or a credit note of an invoice "
                       "paid through Stripe, has one)")
    return payment


def retry_payment(store: Store, reference: str, now: datetime, environment: str = "live", *,
                  api: StripeApi | None = None, method: MethodFor | None = None) -> PaymentRecord:
    """Charge a failed or uncollectible invoice again now (a new attempt with a key of its own)."""
    payment = payment_of(store, reference, environment)
    if payment.method != "stripe":
        raise Conflict(f"invoice {reference} is not collected through Stripe (its customer has no stripe_customer_id): "
                       "mark it paid when the transfer arrives")
    if payment.kind == "refund" and (payment.in_flight or payment.status != "failed"):
        raise Conflict(f"credit note {reference}: its refund is {payment.status}; only a failed refund is sent again")
    if payment.in_flight or payment.status not in ("failed", "uncollectible"):
        raise Conflict(f"invoice {reference}: its payment is {payment.status}"
                       f"{' with an attempt in flight' if payment.in_flight else ''}; only a failed or uncollectible "
                       "payment is retried")
    now_us = to_micros(now)
    if not update_payment(store, environment, payment.id, {"status": "failed", "next_attempt_at": now_us,
                                                           "updated_at": now_us},
                          statuses=(payment.status,), in_flight=False):
        raise Conflict(f"invoice {reference}: its payment changed meanwhile; nothing was done")
    try:
        client = (api or stripe_gateway.client)()
    except StripeNotConfigured as exc:
        raise Conflict(f"{exc}; the retry is due and `ratecard payments run` will make it") from None
    collect_one(store, payment_of(store, reference, environment), now_us, dunning_days(store, environment), client,
                method or stored_method(store, environment), stripe_events(store, environment, now),
                unusable=unusable(store, environment))
    return payment_of(store, reference, environment)


def mark_paid(store: Store, reference: str, bank_reference: str, now: datetime,
              environment: str = "live") -> PaymentRecord:
    """Record a payment received outside Stripe (a bank transfer) with its reference."""
    text = (bank_reference or "").strip()
    if not text or len(text) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidInput("the transfer's reference must be 1 to 255 printable characters", field="reference")
    payment = payment_of(store, reference, environment)
    if payment.kind != "charge":
        raise Conflict(f"{reference} is a credit note: its refund is made through Stripe, not marked paid")
    if payment.status == "succeeded":
        raise Conflict(f"invoice {reference} is paid already ({payment.method}"
                       f"{', ' + payment.reference if payment.reference else ''})")
    if payment.status == "canceled":
        raise Conflict(f"invoice {reference} was credited ({payment.failure}): nothing is owed")
    if payment.in_flight:
        raise Conflict(f"invoice {reference}: a Stripe charge is in flight; run `ratecard payments run` and look again")
    now_us = to_micros(now)
    invoice = _invoice(store, reference, environment)
    box = webhook_events.outbox(store, environment, now)
    # the invoice's number, not what was typed (a final invoice can still be named by its draft reference)
    events = [("payment.succeeded", {"object_type": "PAYMENT", "invoice_number": invoice.number or reference,
                                     "status": "SUCCEEDED", "method": "manual", "reference": text,
                                     "customer_reference": invoice.customer}),
              ("invoice.paid", webhook_events.invoice_data(invoice))]
    # the webhooks are queued in the transaction that marks the payment: both stored, or neither
    if not update_payment(store, environment, payment.id,
                          {"status": "succeeded", "method": "manual", "reference": text, "next_attempt_at": None,
                           "action_url": None, "updated_at": now_us},
                          statuses=(payment.status,), in_flight=False,
                          then=lambda connection: box.write(connection, events)):
        raise Conflict(f"invoice {reference}: its payment changed meanwhile; nothing was done")
    return payment_of(store, reference, environment)


def handle_stripe_webhook(store: Store, payload: bytes, signature: str | None, now: datetime) -> Applied:
    """A Stripe event, verified before anything is read from it; ValueError when it does not verify."""
    event = stripe_gateway.verified_event(payload, signature)
    environment = "live" if event.get("livemode") else "sandbox"
    return apply_event(store, event, to_micros(now),
                       lambda environment, customer: dunning_days(store, environment)(customer),
                       then=stripe_events(store, environment, now))


def stripe_events(store: Store, environment: str, now: datetime) -> Then:
    """The webhook events of a charge's Stripe outcome (from `payments run`, a retry, a pay now or
    Stripe's own event), queued in the transaction that records it: payment.succeeded and
    invoice.paid, or payment.failed (also for the last attempt of the dunning schedule, which
    leaves the payment uncollectible; a refund sends none)."""
    box = webhook_events.outbox(store, environment, now)

    def queue(connection: Any, payment: PaymentRecord, status: str) -> None:
        if status not in ("succeeded", "failed", "uncollectible") or payment.kind != "charge" or not box.hooks:
            return
        invoice = load_invoices(connection, [payment.invoice_id]).get(payment.invoice_id)
        if invoice is None:  # recorded all the same: only the event is not sent
            return
        data = {"object_type": "PAYMENT", "invoice_number": invoice.number, "status": status.upper(),
                "method": "stripe", "customer_reference": invoice.customer}
        box.write(connection, [("payment.succeeded", data), ("invoice.paid", webhook_events.invoice_data(invoice))]
                  if status == "succeeded" else [("payment.failed", data)])

    return queue


def payment_statuses(store: Store, environment: str, invoice_ids: Sequence[int]) -> dict[int, str]:
    return charge_statuses(store, environment, invoice_ids)
