"""Collecting invoices over HTTP: payments, retries, bank transfers, invoice emails, and Stripe's
webhooks (signed by Stripe, not by an API key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ...clock import now as clock_now
from ...services import invoice_delivery, payments
from ..context import Caller, current_caller
from ..errors import ApiError

router = APIRouter(tags=["payments"])
WEBHOOK_PATH = "/v1/psp/stripe/webhooks"


def _invoice_reference(reference: str) -> str:
    """An invoice number, DRAFT-n, id, or the Solvimon-shaped id inv_<id>."""
    return reference[4:] if reference.startswith("inv_") and reference[4:].isdigit() else reference


# GET /v1/payments is Solvimon's resource (api/solvimon/payments.py): each payment in Solvimon's
# shape with this module's payment document in its `ratecard` field


@router.get("/v1/invoices/{reference}/payment", summary="The payment of one final invoice")
def get_payment(reference: str, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    return payments.payment_document(payments.payment_of(caller.store, _invoice_reference(reference),
                                                         caller.environment))


@router.post("/v1/invoices/{reference}/payments/retry",
             summary="Charge a failed or uncollectible invoice again now, like `ratecard payments retry`")
async def retry_payment(reference: str, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    payment = await run_in_threadpool(payments.retry_payment, caller.store, _invoice_reference(reference), caller.now,
                                      caller.environment)
    return payments.payment_document(payment)


class MarkPaid(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(min_length=1, max_length=255)


@router.post("/v1/invoices/{reference}/mark-paid",
             summary="Record a payment received outside Stripe (a bank transfer), like `ratecard payments mark-paid`")
def mark_paid(reference: str, body: MarkPaid, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    payment = payments.mark_paid(caller.store, _invoice_reference(reference), body.reference, caller.now,
                                 caller.environment)
    return payments.payment_document(payment)


class Send(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str | None = Field(None, max_length=254)


@router.post("/v1/invoices/{reference}/send", summary="Email a final invoice now, like `ratecard invoices send`")
async def send_invoice(reference: str, body: Send | None = None,
                       caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    delivery = await run_in_threadpool(invoice_delivery.send_invoice, caller.store, _invoice_reference(reference),
                                       caller.now, caller.environment, body.to if body else None)
    return invoice_delivery.delivery_document(delivery)


@router.get("/v1/invoices/{reference}/deliveries", summary="The invoice's emails: sent, queued or failed")
def deliveries(reference: str, caller: Caller = Depends(current_caller)) -> list[dict[str, Any]]:
    return [invoice_delivery.delivery_document(d) for d in
            invoice_delivery.find_deliveries(caller.store, caller.environment, _invoice_reference(reference))]


@router.post(WEBHOOK_PATH, summary="Stripe's webhook events (verified by Stripe-Signature; no API key)")
async def stripe_webhook(request: Request) -> dict[str, Any]:
    payload = await request.body()
    signature = request.headers.get("stripe-signature")
    try:
        applied = await run_in_threadpool(payments.handle_stripe_webhook, request.app.state.store, payload, signature,
                                          clock_now())
    except payments.StripeNotConfigured as exc:
        # a 4xx like a bad signature: Stripe keeps the event and sends it again for days
        raise ApiError(400, "NOT_CONFIGURED", str(exc), "Stripe-Signature") from None
    except ValueError as exc:
        raise ApiError(400, "INVALID_SIGNATURE", str(exc), "Stripe-Signature") from None
    return {"received": True, **applied.as_dict()}
