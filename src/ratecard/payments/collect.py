"""Working off the payment outbox: charge the due invoices through Stripe, refund credit notes of
paid invoices, and record each outcome.

Never twice: an attempt's idempotency key (and the payment method it charges) is written before
Stripe is called and its outcome after. A run that stops in between leaves the attempt "in
flight"; the next run sends the very same request with the same key, and Stripe answers with the
first outcome instead of charging again. Stripe keeps keys for 24 hours: an attempt in flight for
longer is not sent again but left for a person to check (see UNKNOWN_AFTER_US).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..domain.money import minor_units
from ..store import Store
from ..store.payments import (
    OPEN,
    PaymentRecord,
    add_payments,
    credit_notes_without_refund,
    credited_open_charges,
    due_payments,
    get_payment,
    refunded_minor,
    update_payment,
)
from . import stripe_gateway
from .amounts import AmountError, to_minor
from .dunning import next_attempt
from .stripe_gateway import Outcome

if TYPE_CHECKING:
    import stripe

HOUR_US = 3_600_000_000
# the dunning schedule of a customer's billing entity (entities may differ): customer -> days
DaysFor = Callable[[str], Sequence[int]]
UNKNOWN_AFTER_US = 23 * HOUR_US  # under Stripe's 24 hours, so a key sent again is still known to Stripe


def charge_key(environment: str, invoice_id: int, attempt: int) -> str:
    """One key per attempt: a retry after a decline is a new charge, a repeat of an attempt is not."""
    return f"ratecard-{environment}-invoice-{invoice_id}-charge-{attempt}"


def refund_key(environment: str, credit_note_id: int) -> str:
    return f"ratecard-{environment}-credit-note-{credit_note_id}-refund"


@dataclass
class Collected:
    """What one pass over the outbox did: payments by the status they reached."""

    enqueued: int = 0
    refunds_enqueued: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def count(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


def charge_rows(environment: str, invoices: Iterable[Mapping[str, Any]], stripe_customers: Mapping[str, str | None],
                now_us: int) -> list[dict[str, Any]]:
    """The outbox rows of final invoices: charged through Stripe when the customer has a Stripe
    customer, else waiting to be marked paid (a bank transfer); nothing to collect at zero or less."""
    rows = []
    for invoice in invoices:
        amount, problem = _chargeable(invoice["total"], invoice["currency"])
        stripe_id = stripe_customers.get(invoice["customer"])
        method = "stripe" if stripe_id and amount > 0 and problem is None else "manual"
        row = {"environment": environment, "invoice_id": invoice["id"], "kind": "charge",
               "customer": invoice["customer"], "method": method,
               "stripe_customer_id": stripe_id if method == "stripe" else None,
               "currency": invoice["currency"], "amount_minor": max(amount, 0),
               "status": "pending" if amount > 0 else "succeeded",
               "reference": None if amount > 0 else "nothing to collect",
               "failure": problem if stripe_id else None,
               "next_attempt_at": now_us if method == "stripe" else None,
               "attempt": 0, "failures": 0, "created_at": now_us, "updated_at": now_us}
        if abs(amount) > MAX_MINOR:
            # more than a payment record holds (about 9.2e16 euros): uncollectible through ratecard,
            # saying why, so the other invoices of the same insert get their rows (the method is
            # manual already: Stripe cannot charge that much)
            row.update({"amount_minor": 0, "status": "uncollectible", "reference": None,
                        "failure": f"the total {invoice['total']} {invoice['currency']} is more than a payment "
                                   f"record holds ({MAX_MINOR} minor units): collect it outside ratecard"})
        rows.append(row)
    return rows


# the most minor units a payment record holds (a signed 64-bit integer in both stores)
MAX_MINOR = 2**63 - 1


def _chargeable(total: Decimal, currency: str) -> tuple[int, str | None]:
    """(minor units, why Stripe cannot charge it): finalization must never fail on an amount, so
    an invoice Stripe cannot take waits to be paid by transfer, saying why."""
    try:
        return to_minor(total, currency), None
    except AmountError as exc:
        shown = int(total.scaleb(minor_units(currency)).to_integral_value())
        return shown, f"{exc}: collect it by bank transfer"


def enqueue_charges(store: Store, environment: str, invoices: Iterable[Mapping[str, Any]],
                    stripe_customers: Mapping[str, str | None], now_us: int) -> int:
    return add_payments(store, charge_rows(environment, invoices, stripe_customers, now_us))


def cancel_credited_charges(store: Store, environment: str, now_us: int) -> int:
    """A charge not collected yet of an invoice a credit note cancelled is never made: `canceled`.
    (A customer who still pays it, say by authenticating an old 3-D Secure link, is refunded:
    the webhook moves it to succeeded and the refund follows.)"""
    canceled = 0
    for payment_id, note_number in credited_open_charges(store, environment):
        canceled += update_payment(store, environment, payment_id,
                                   {"status": "canceled", "next_attempt_at": None, "action_url": None,
                                    "failure": f"credited by {note_number}: nothing to collect", "updated_at": now_us},
                                   statuses=("pending", "failed", "requires_action", "uncollectible"), in_flight=False)
    return canceled


def enqueue_refunds(store: Store, environment: str, now_us: int) -> int:
    """A refund row for each final credit note of an invoice paid through Stripe: its amount, at
    most what the charge has not paid back yet."""
    rows = []
    for note in credit_notes_without_refund(store, environment):
        charge = get_payment(store, environment, note["charge_id"])
        if charge is None:
            continue
        try:
            wanted = to_minor(-note["total"], note["currency"])
        except AmountError:
            continue
        amount = min(wanted, charge.amount_minor - refunded_minor(store, environment, charge.id))
        if amount <= 0:
            continue
        rows.append({"environment": environment, "invoice_id": note["id"], "kind": "refund",
                     "customer": note["customer"], "method": "stripe", "stripe_customer_id": charge.stripe_customer_id,
                     "refunds": charge.id, "currency": note["currency"], "amount_minor": amount, "status": "pending",
                     "next_attempt_at": now_us, "attempt": 0, "failures": 0, "created_at": now_us,
                     "updated_at": now_us})
    return add_payments(store, rows)


# the provider's payment method a charge uses instead of the Stripe customer's default (a method
# stored in ratecard as the customer's default, services.payment_methods), or None
MethodFor = Callable[[PaymentRecord], str | None]

# why a provider's payment method must not be charged for this payment (one ratecard holds as not
# ACTIVE, such as an ARCHIVED one, when it is the Stripe customer's own default), or None
Unusable = Callable[[PaymentRecord, str], str | None]


# what an attempt's outcome writes in the transaction that records it (its webhook deliveries),
# given that transaction, the payment as it was read and its new status
Then = Callable[[Any, PaymentRecord, str], None]


def collect_due(store: Store, environment: str, now_us: int, dunning_days: DaysFor,
                api: Callable[[], stripe.StripeClient], stored_method: MethodFor | None = None,
                then: Then | None = None, *, unusable: Unusable | None = None) -> Collected:
    """Call Stripe for every due payment of the environment (one at a time: each call is bounded)."""
    report = Collected()
    due = due_payments(store, environment, now_us)
    if not due:
        return report
    client = api()
    for payment in due:
        status = collect_one(store, payment, now_us, dunning_days, client, stored_method, then, unusable=unusable)
        report.count(status)
    return report


def collect_one(store: Store, payment: PaymentRecord, now_us: int, dunning_days: DaysFor,
                client: stripe.StripeClient, stored_method: MethodFor | None = None, then: Then | None = None, *,
                unusable: Unusable | None = None) -> str:
    """One attempt at a payment (or the repeat of the attempt in flight); returns its status after.
    `then`: what the recorded outcome writes in its transaction. `unusable`: a Stripe default that
    must not be charged makes the attempt a failure (retried on the dunning schedule), not a charge."""
    if payment.in_flight:
        if now_us - (payment.attempt_started_at or now_us) > UNKNOWN_AFTER_US:
            return _unknown_for_too_long(store, payment, now_us, then)
        attempt, key, method = payment.attempt, payment.idempotency_key or "", payment.payment_method
    else:
        attempt = payment.attempt + 1
        key = (charge_key if payment.kind == "charge" else _refund_attempt_key)(
            payment.environment, payment.invoice_id, attempt)
        method = None
        stored = stored_method(payment) if stored_method is not None and payment.kind == "charge" else None
        if stored is not None:
            method = stored
        elif payment.kind == "charge":
            found = stripe_gateway.default_payment_method(client, payment.stripe_customer_id or "")
            if isinstance(found, Outcome):
                if found.status == "unknown":
                    return payment.status  # no answer: nothing was charged, try at the next run
                return _record(store, payment, payment.attempt, found, now_us, dunning_days, started=False,
                               then=then)
            why = unusable(payment, found) if unusable is not None else None
            if why is not None:
                return _record(store, payment, payment.attempt, Outcome("failed", failure=why), now_us, dunning_days,
                               started=False, then=then)
            method = found
        started = update_payment(store, payment.environment, payment.id,
                                 {"attempt": attempt, "idempotency_key": key, "attempt_started_at": now_us,
                                  "payment_method": method, "status": "pending", "updated_at": now_us},
                                 attempt=payment.attempt, statuses=OPEN, in_flight=False)
        if not started:
            return "skipped"  # another run started this attempt first
    metadata = {"ratecard_environment": payment.environment, "ratecard_invoice_id": str(payment.invoice_id),
                "ratecard_invoice_number": payment.invoice_number or "", "ratecard_idempotency_key": key}
    if payment.kind == "charge":
        outcome = stripe_gateway.charge(client, amount_minor=payment.amount_minor, currency=payment.currency,
                                        stripe_customer_id=payment.stripe_customer_id or "",
                                        payment_method=method or "", idempotency_key=key, metadata=metadata)
    else:
        charged = get_payment(store, payment.environment, payment.refunds or 0)
        outcome = stripe_gateway.refund(client, intent_id=(charged.intent_id if charged else None) or "",
                                        amount_minor=payment.amount_minor, idempotency_key=key, metadata=metadata)
    return _record(store, payment, attempt, outcome, now_us, dunning_days, started=True, then=then)


def _refund_attempt_key(environment: str, credit_note_id: int, attempt: int) -> str:
    key = refund_key(environment, credit_note_id)
    return key if attempt == 1 else f"{key}-{attempt}"


def _record(store: Store, payment: PaymentRecord, attempt: int, outcome: Outcome, now_us: int,
            dunning_days: DaysFor, *, started: bool, then: Then | None = None) -> str:
    """Write an attempt's outcome (only while the row is still at that attempt)."""
    if outcome.status == "unknown":
        # still in flight: the next run asks again with the same key
        update_payment(store, payment.environment, payment.id, {"failure": outcome.failure, "updated_at": now_us},
                       attempt=attempt)
        return "unknown"
    values: dict[str, Any] = {"attempt_started_at": None, "updated_at": now_us, "action_url": outcome.action_url}
    if outcome.intent_id:
        values["intent_id"] = outcome.intent_id
    if outcome.status == "failed":
        values.update(failure_values(payment, outcome.failure, now_us, dunning_days(payment.customer)))
    else:
        values.update({"status": outcome.status, "next_attempt_at": None,
                       "failure": outcome.failure if outcome.status == "requires_action" else None})
    status = values["status"]
    written = update_payment(store, payment.environment, payment.id, values, attempt=attempt,
                             in_flight=True if started else None,
                             then=None if then is None else lambda connection: then(connection, payment, status))
    return status if written else "skipped"


def failure_values(payment: PaymentRecord, failure: str | None, now_us: int,
                   dunning_days: Sequence[int]) -> dict[str, Any]:
    """A failed charge: retried on the dunning schedule, uncollectible after the last retry. A
    refund is not retried by itself: `payments retry` sends it again."""
    if payment.kind == "refund":
        return {"status": "failed", "failure": failure, "next_attempt_at": None}
    failures = payment.failures + 1
    first = payment.first_failed_at if payment.first_failed_at is not None else now_us
    retry_at = next_attempt(first, failures, dunning_days)
    return {"status": "failed" if retry_at is not None else "uncollectible", "failure": failure,
            "failures": failures, "first_failed_at": first, "next_attempt_at": retry_at}


def _unknown_for_too_long(store: Store, payment: PaymentRecord, now_us: int, then: Then | None = None) -> str:
    """Stripe has forgotten the key by now: sending it again could charge twice. A person checks
    Stripe for a PaymentIntent with this key in its metadata, then marks the invoice paid or retries.
    Failed like any failed attempt, so `then` writes what a failure does (payment.failed, carrying
    this failure), in the same transaction."""
    failure = (f"the outcome of attempt {payment.attempt} is unknown: look in Stripe for a payment whose metadata "
               f"ratecard_idempotency_key is {payment.idempotency_key}, then mark the invoice paid or retry it")
    update_payment(store, payment.environment, payment.id,
                   {"status": "failed", "attempt_started_at": None, "next_attempt_at": None, "failure": failure,
                    "updated_at": now_us}, attempt=payment.attempt, in_flight=True,
                   then=None if then is None else lambda connection: then(connection, payment, "failed"))
    return "failed"
