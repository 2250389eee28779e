"""The Stripe calls ratecard makes, with the official client, and what each answer means for a
payment. Nothing here writes: the caller records the outcome.

Every call has a bounded time (a connect and a read timeout, two network retries that the client
sends with the same idempotency key), so a slow Stripe delays `payments run`, never finalization.
The API key and base URL come from the environment (RATECARD_STRIPE_API_KEY, RATECARD_STRIPE_API_BASE),
never from the catalog.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the client takes a second to import: only the commands that call Stripe pay for it
    import stripe

API_KEY = "RATECARD_STRIPE_API_KEY"
API_BASE = "RATECARD_STRIPE_API_BASE"
WEBHOOK_SECRET = "RATECARD_STRIPE_WEBHOOK_SECRET"
TIMEOUT = (5.0, 30.0)  # seconds to connect, seconds to read an answer
NETWORK_RETRIES = 2


class StripeNotConfigured(RuntimeError):
    """RATECARD_STRIPE_API_KEY (or the webhook secret) is not set."""


@dataclass(frozen=True)
class Outcome:
    """What a charge or refund call came to.

    status: succeeded | pending (Stripe is still processing: a webhook tells the end) |
    requires_action (the customer must authenticate at `action_url`) | failed (a decline or a refusal
    that asking again will not change) | unknown (no answer: ask again with the same idempotency key)."""

    status: str
    intent_id: str | None = None
    action_url: str | None = None
    failure: str | None = None


def client(environ: Mapping[str, str] | None = None) -> stripe.StripeClient:
    import stripe

    env = os.environ if environ is None else environ
    key = env.get(API_KEY)
    if not key:
        raise StripeNotConfigured(f"set {API_KEY} to charge through Stripe")
    base = env.get(API_BASE) or stripe.DEFAULT_API_BASE
    return stripe.StripeClient(key, base_addresses={"api": base}, max_network_retries=NETWORK_RETRIES,
                               http_client=stripe.RequestsClient(timeout=TIMEOUT))


def default_payment_method(api: stripe.StripeClient, stripe_customer_id: str) -> Outcome | str:
    """The customer's default payment method id, or the Outcome that explains why there is none."""
    import stripe

    try:
        customer = api.v1.customers.retrieve(stripe_customer_id).to_dict()
    except stripe.InvalidRequestError as exc:
        return Outcome("failed", failure=_message(exc))
    except stripe.StripeError as exc:
        return Outcome("unknown", failure=_message(exc))
    settings = customer.get("invoice_settings") or {}
    method = settings.get("default_payment_method")
    if isinstance(method, Mapping):
        method = method.get("id")
    if not method:
        return Outcome("failed", failure=f"Stripe customer {stripe_customer_id} has no default payment method")
    return str(method)


def charge(api: stripe.StripeClient, *, amount_minor: int, currency: str, stripe_customer_id: str,
           payment_method: str, idempotency_key: str, metadata: dict[str, str]) -> Outcome:
    """One off-session PaymentIntent, confirmed at once. The same key sends the same request:
    Stripe answers a repeat with the first answer and charges once."""
    import stripe

    params: Any = {"amount": amount_minor, "currency": currency.lower(), "customer": stripe_customer_id,
                   "payment_method": payment_method, "off_session": True, "confirm": True,
                   "metadata": metadata}
    try:
        intent = api.v1.payment_intents.create(params, {"idempotency_key": idempotency_key}).to_dict()
    except stripe.CardError as exc:
        return _declined(exc)
    except (stripe.InvalidRequestError, stripe.IdempotencyError) as exc:
        # an idempotency conflict is another process sending the same key right now: ask again later
        if isinstance(exc, stripe.IdempotencyError) or (exc.http_status or 0) == 409:
            return Outcome("unknown", failure=_message(exc))
        return Outcome("failed", failure=_message(exc))
    except stripe.StripeError as exc:  # no answer, rate limit, Stripe's own failure, a bad key
        return Outcome("unknown", failure=_message(exc))
    return intent_outcome(intent)


def refund(api: stripe.StripeClient, *, intent_id: str, amount_minor: int, idempotency_key: str,
           metadata: dict[str, str]) -> Outcome:
    import stripe

    params: Any = {"payment_intent": intent_id, "amount": amount_minor, "metadata": metadata}
    try:
        created = api.v1.refunds.create(params, {"idempotency_key": idempotency_key}).to_dict()
    except stripe.InvalidRequestError as exc:
        if (exc.http_status or 0) == 409:
            return Outcome("unknown", failure=_message(exc))
        return Outcome("failed", failure=_message(exc))
    except stripe.StripeError as exc:
        return Outcome("unknown", failure=_message(exc))
    return refund_outcome(created)


def intent_outcome(intent: Mapping[str, Any]) -> Outcome:
    """A PaymentIntent (from an answer or a webhook event) as a payment outcome."""
    status = intent.get("status")
    intent_id = intent.get("id")
    if status == "succeeded":
        return Outcome("succeeded", intent_id)
    if status == "requires_action":
        return Outcome("requires_action", intent_id, action_url=_action_url(intent),
                       failure="the customer must authenticate the payment")
    if status in ("processing", "requires_capture", "requires_confirmation"):
        return Outcome("pending", intent_id)
    error = intent.get("last_payment_error") or {}
    return Outcome("failed", intent_id, failure=error.get("message") or f"the payment is {status}")


def refund_outcome(created: Mapping[str, Any]) -> Outcome:
    status = created.get("status")
    if status == "succeeded":
        return Outcome("succeeded", created.get("id"))
    if status in ("pending", "requires_action"):
        return Outcome("pending", created.get("id"))
    return Outcome("failed", created.get("id"), failure=created.get("failure_reason") or f"the refund is {status}")


def _declined(exc: stripe.CardError) -> Outcome:
    """A card error names the PaymentIntent it left behind; an off-session payment that needs
    3-D Secure fails with `authentication_required`: the customer authenticates, then it succeeds."""

    error = (exc.json_body or {}).get("error") or {}
    intent = error.get("payment_intent") or {}
    if error.get("code") == "authentication_required" or intent.get("status") == "requires_action":
        return Outcome("requires_action", intent.get("id"), action_url=_action_url(intent),
                       failure=error.get("message") or "the customer must authenticate the payment")
    return Outcome("failed", intent.get("id"), failure=_message(exc))


def _action_url(intent: Mapping[str, Any]) -> str | None:
    action = intent.get("next_action") or {}
    redirect = action.get("redirect_to_url") or {}
    url = redirect.get("url")
    return url if isinstance(url, str) and url.startswith("https://") else None


def _message(exc: stripe.StripeError) -> str:

    error = (exc.json_body or {}).get("error") or {} if isinstance(exc.json_body, dict) else {}
    parts = [str(error.get("message") or exc.user_message or type(exc).__name__)]
    if error.get("decline_code") or error.get("code"):
        parts.append(f"({error.get('decline_code') or error.get('code')})")
    return " ".join(parts)[:500]


def verified_event(payload: bytes, signature: str | None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The event Stripe signed, as a plain dict; ValueError for a payload or signature that does not
    verify (wrong secret, altered body, older than five minutes)."""
    import stripe

    env = os.environ if environ is None else environ
    secret = env.get(WEBHOOK_SECRET)
    if not secret:
        raise StripeNotConfigured(f"set {WEBHOOK_SECRET} to receive Stripe's webhooks")
    if not signature:
        raise ValueError("no Stripe-Signature header")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError:
        raise ValueError("the Stripe-Signature does not verify") from None
    return event.to_dict()
