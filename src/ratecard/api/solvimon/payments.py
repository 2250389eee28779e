"""/v1/payments in Solvimon's shape: ratecard's payments (the charge of each final invoice, the
refund of each credit note of an invoice paid through Stripe), each with ratecard's own payment
document in `ratecard`. Creating a payment records a bank transfer (`ratecard payments
mark-paid`); refunding one credits its invoice and sends the refund (see invoice_actions)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services.errors import NotFound
from ...services.invoice_actions import refund_invoice
from ...services.invoices import find_invoice
from ...services.payments import PaymentRecord, find_payment, find_payments, mark_paid
from ..context import Caller, current_caller
from ..errors import ApiError, invalid, missing, not_found
from ..pagination import Page, paginate, solvimon_page
from .common import OBJECT_BODY, json_response, param, parse_decimal
from .config import snapshot
from .invoice_actions import object_body, only_fields, payment_body
from .invoices import ID_PREFIX

router = APIRouter(tags=["payments"])
PREFIX = "pay_"
STATUSES = ("pending", "succeeded", "failed", "requires_action", "uncollectible", "canceled")


def _find(caller: Caller, key: str) -> PaymentRecord:
    param(key, "resourceId")
    text = key[len(PREFIX):] if key.startswith(PREFIX) else key
    if text.isascii() and text.isdigit() and len(text) < 19:
        try:
            return find_payment(caller.store, int(text), caller.environment)
        except NotFound:
            pass
    raise not_found("payment", key)


def _invoice_id(caller: Caller, key: str, field: str) -> int:
    param(key, field)
    try:
        invoice = find_invoice(caller.store, key.removeprefix(ID_PREFIX), caller.environment)
    except NotFound:
        raise not_found("invoice", key) from None
    return invoice.id or 0


@router.get("/v1/payments", summary="Payments (charges of final invoices, refunds of credit notes), newest first")
def list_payments(request: Request, page: Page = Depends(solvimon_page), customer_id: str | None = Query(None),
                  invoice_id: str | None = Query(None), external_reference: str | None = Query(None),
                  status: str | None = Query(None), caller: Caller = Depends(current_caller)) -> Response:
    if status is not None and status not in STATUSES:
        raise invalid("status", f"status must be one of {', '.join(STATUSES)}")
    payments = find_payments(caller.store, caller.environment, status)
    if customer_id is not None:
        param(customer_id, "customer_id")
        customer = snapshot(caller).view.customer_reference(customer_id)
        payments = [p for p in payments if p.customer == customer]
    if invoice_id is not None:
        wanted = _invoice_id(caller, invoice_id, "invoice_id")
        payments = [p for p in payments if p.invoice_id == wanted]
    if external_reference is not None:
        param(external_reference, "external_reference")
        payments = [p for p in payments if external_reference in (p.intent_id, p.reference)]
    return json_response(paginate(request, payments, page, payment_body,
                                  {"id": lambda p: p.id, "created_at": lambda p: (p.created_at, p.id),
                                   "updated_at": lambda p: (p.updated_at, p.id)}, default_key="id"))


@router.get("/v1/payments/{key}", summary="One payment (pay_<id>)")
def get_payment(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return json_response(payment_body(_find(caller, key)))


@router.post("/v1/payments", summary="Record a payment received outside Stripe (a bank transfer) of a final invoice",
             openapi_extra=OBJECT_BODY)
async def create_payment(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request)
    only_fields(body, ("object_type", "invoice_id", "external_reference", "reference", "amount", "result", "timestamp",
                 "customer_id"), "ratecard records a bank transfer of a whole invoice")
    if body.get("result") != "AUTHORIZED":
        raise invalid("result", "result: ratecard records a payment received (AUTHORIZED); failures of Stripe "
                                "charges are recorded by ratecard itself")
    reference = body.get("external_reference")
    if not isinstance(reference, str) or not reference.strip():
        raise missing("external_reference", "external_reference (the transfer's reference) is required")
    key = body.get("invoice_id")
    if not isinstance(key, str) or not key.strip():
        raise missing("invoice_id", "invoice_id (the invoice the transfer pays) is required")
    invoice_id = _invoice_id(caller, key, "invoice_id")
    invoice = find_invoice(caller.store, str(invoice_id), caller.environment)
    _check_whole(body.get("amount"), invoice.total, invoice.currency, "amount")
    payment = mark_paid(caller.store, str(invoice_id), reference, caller.now, caller.environment)
    return json_response(payment_body(payment))


def _check_whole(amount: Any, total: Decimal, currency: str, field: str) -> None:
    """A payment or refund covers the whole invoice: a given amount must be its total."""
    if amount is None:
        return
    if not isinstance(amount, dict):
        raise invalid(field, f"{field} must be an object with quantity and currency")
    quantity = parse_decimal(amount.get("quantity"), f"{field}.quantity")
    given = amount.get("currency")
    if given is not None and (not isinstance(given, str) or given.upper() != currency.upper()):
        raise invalid(f"{field}.currency", f"{field}.currency must be the invoice's currency, {currency.upper()}")
    if abs(quantity) != abs(total):
        raise invalid(f"{field}.quantity", f"{field}.quantity: ratecard pays and refunds whole invoices "
                                           f"({abs(total):f} {currency.upper()}), not part of one")


@router.post("/v1/payments/{key}/refund", summary="Credit the paid invoice and send its refund through Stripe",
             openapi_extra=OBJECT_BODY)
async def refund_payment(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request, optional=True)
    only_fields(body, ("amount",), "a refund pays back the whole invoice")
    payment = _find(caller, key)
    if payment.kind != "charge":
        raise ApiError(400, "INVALID_OPERATION", f"payment {key} is a refund already")
    invoice = find_invoice(caller.store, str(payment.invoice_id), caller.environment)
    _check_whole(body.get("amount"), invoice.total, invoice.currency, "amount")
    _, refund = await run_in_threadpool(refund_invoice, caller.store, str(payment.invoice_id), caller.now,
                                        caller.environment)
    status = {"succeeded": "SUCCESS", "requires_action": "ACTION_REQUIRED", "failed": "FAILURE"}
    return json_response({"payment": payment_body(refund), "status": status.get(refund.status, "SUCCESS")})
