"""Stripe's webhook events applied to the payment they name (its PaymentIntent or Refund id).

A verified event moves a payment forward only: pending -> succeeded | failed | requires_action,
requires_action -> succeeded | failed. A repeated event finds the payment already moved and
changes nothing; an event for an intent ratecard does not know is ignored (Stripe still gets 200,
or it would keep sending it). The environment is the event's: `livemode` true is live, else sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..store import Store
from ..store.payments import payment_by_intent, update_payment
from .collect import Then, failure_values
from .stripe_gateway import intent_outcome, refund_outcome

# the statuses an outcome may move a payment from (never back from succeeded, never twice)
MOVES_FROM = {"succeeded": ("pending", "requires_action", "failed", "canceled"), "failed": ("pending", "requires_action"),
              "requires_action": ("pending",), "pending": ()}


@dataclass(frozen=True)
class Applied:
    event_id: str
    result: str  # ignored | unchanged | the payment's new status
    invoice_number: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.event_id, "result": self.result, "invoice": self.invoice_number}


def apply_event(store: Store, event: Mapping[str, Any], now_us: int,
                dunning_days: Callable[[str, str], Sequence[int]],
                then: Then | None = None) -> Applied:
    """Move the payment the event names; `then` writes what goes with the move (its webhook
    deliveries), given the transaction, the payment as it was read and its new status, in the
    transaction that moves it."""
    event_id = str(event.get("id") or "")
    kind = str(event.get("type") or "")
    found = (event.get("data") or {}).get("object") or {}
    environment = "live" if event.get("livemode") else "sandbox"
    if kind.startswith("payment_intent."):
        outcome = intent_outcome(found)
        if kind == "payment_intent.payment_failed" or kind == "payment_intent.canceled":
            outcome = type(outcome)("failed", outcome.intent_id, failure=outcome.failure)
    elif kind.startswith(("refund.", "charge.refund.")):
        outcome = refund_outcome(found)
    else:
        return Applied(event_id, "ignored")
    payment = payment_by_intent(store, environment, str(found.get("id") or "")) if found.get("id") else None
    if payment is None:
        return Applied(event_id, "ignored")
    allowed = MOVES_FROM.get(outcome.status, ())
    if payment.status not in allowed or payment.in_flight:
        # already there, or an outcome the running attempt will write itself
        return Applied(event_id, "unchanged", payment.invoice_number)
    values: dict[str, Any] = {"updated_at": now_us}
    if outcome.status == "failed":
        values.update(failure_values(payment, outcome.failure, now_us, dunning_days(environment, payment.customer)))
    else:
        values.update({"status": outcome.status, "next_attempt_at": None,
                       "action_url": outcome.action_url if outcome.status == "requires_action" else None,
                       "failure": outcome.failure if outcome.status == "requires_action" else None})
    status = values["status"]
    moved = update_payment(store, environment, payment.id, values, statuses=(payment.status,), in_flight=False,
                           then=None if then is None else lambda connection: then(connection, payment, status))
    return Applied(event_id, values["status"] if moved else "unchanged", payment.invoice_number)
