"""/v1/payments in Solvimon's shape: ratecard's payments (the charge of each final invoice, the
refund of each credit note of an invoice paid through Stripe), each with ratecard's own payment
document in `ratecard`. Creating a payment records a bank transfer (`ratecard payments
mark-paid`); refunding one credits its invoice and sends the refund (see invoice_actions).

/v1/payment-requests are the charges seen as scheduled collections (when the next attempt is due,
which attempt); `authorize` pays an invoice now (PAY_INVOICE context), with a stored payment
method if one is named; `reverse` undoes a charge: refunded when collected, canceled by a credit
note when not; `verify-details` is refused (Stripe tells ratecard an authentication's outcome
through its webhook, there is nothing to submit)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services import payment_methods
from ...services.errors import NotFound
from ...services.invoice_actions import credit_invoice, pay_invoice, refund_invoice
from ...services.invoices import find_invoice
from ...services.payments import PaymentRecord, find_payment, find_payments, mark_paid
from ..context import Caller, current_caller
from ..errors import ApiError, invalid, missing, not_found
from ..pagination import Page, paginate, solvimon_page
from .common import OBJECT_BODY, json_response, multi, param, parse_decimal, wire_instant
from .config import snapshot
from .invoice_actions import invoice_named, object_body, only_fields, payment_body
from .payment_methods import render as render_method

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
    return invoice_named(caller, key, field).id or 0


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


def _check_whole(amount: Any, total: Decimal, currency: str, field: str, refund: bool = False) -> None:
    """A payment or refund covers the whole invoice: a given amount must be its total. A refund's
    may be written either way round (Solvimon shows a refund negative); a payment's may not (a
    negative amount paying the invoice in full would record money that never came in)."""
    if amount is None:
        return
    if not isinstance(amount, dict):
        raise invalid(field, f"{field} must be an object with quantity and currency")
    quantity = parse_decimal(amount.get("quantity"), f"{field}.quantity")
    given = amount.get("currency")
    if given is not None and (not isinstance(given, str) or given.upper() != currency.upper()):
        raise invalid(f"{field}.currency", f"{field}.currency must be the invoice's currency, {currency.upper()}")
    if (abs(quantity) != abs(total)) if refund else quantity != total:
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
    _check_whole(body.get("amount"), invoice.total, invoice.currency, "amount", refund=True)
    _, refund = await run_in_threadpool(refund_invoice, caller.store, str(payment.invoice_id), caller.now,
                                        caller.environment)
    status = {"succeeded": "SUCCESS", "requires_action": "ACTION_REQUIRED", "failed": "FAILURE"}
    return json_response({"payment": payment_body(refund), "status": status.get(refund.status, "SUCCESS")})


# ---------------------------------------------------------------- payment requests (scheduled charges)

REQUEST_PREFIX = "preq_"
REQUEST_STATUSES = ("SCHEDULED", "IN_PROGRESS", "ON_HOLD", "FAILED", "DONE", "SKIPPED")


def request_status(payment: PaymentRecord) -> str:
    """A charge as a collection: DONE once paid, SKIPPED when credited first, FAILED when dunning
    gave up, IN_PROGRESS while an attempt is out or the customer must authenticate, else SCHEDULED
    (the first attempt, or a retry, is due at execute_at)."""
    if payment.status == "succeeded":
        return "DONE"
    if payment.status == "canceled":
        return "SKIPPED"
    if payment.status == "uncollectible":
        return "FAILED"
    if payment.in_flight or payment.status == "requires_action":
        return "IN_PROGRESS"
    return "SCHEDULED"


def request_body(payment: PaymentRecord) -> dict[str, Any]:
    body = payment_body(payment)
    return {"object_type": "PAYMENT_REQUEST", "id": f"{REQUEST_PREFIX}{payment.id}", "customer_id": payment.customer,
            "status": request_status(payment), "created_at": wire_instant(payment.created_at),
            "execute_at": wire_instant(payment.next_attempt_at or payment.created_at), "index": payment.attempt,
            "amount": body["amount"],
            "ratecard": {"payment_id": f"{PREFIX}{payment.id}", "invoice_id": body["invoice_id"],
                         "attempts": payment.attempt, "failures": payment.failures}}


def _no_schedule(request: Request, payment_schedule_id: str | None) -> None:
    if payment_schedule_id is not None:
        raise invalid("payment_schedule_id", "payment_schedule_id: ratecard has no payment schedules (each final "
                                             "invoice is collected whole)")
    if multi(request, "expand"):
        raise invalid("expand", "expand: a payment request has nothing to expand")


@router.get("/v1/payment-requests", summary="The charges of final invoices as scheduled collections, newest first")
def list_payment_requests(request: Request, page: Page = Depends(solvimon_page), customer_id: str | None = Query(None),
                          payment_schedule_id: str | None = Query(None),
                          caller: Caller = Depends(current_caller)) -> Response:
    _no_schedule(request, payment_schedule_id)
    wanted = set(multi(request, "statuses"))
    unknown = wanted - set(REQUEST_STATUSES)
    if unknown:
        raise invalid("statuses[]", f"statuses[] must be among {', '.join(REQUEST_STATUSES)}")
    payments = [p for p in find_payments(caller.store, caller.environment) if p.kind == "charge"]
    if customer_id is not None:
        param(customer_id, "customer_id")
        customer = snapshot(caller).view.customer_reference(customer_id)
        payments = [p for p in payments if p.customer == customer]
    if wanted:
        payments = [p for p in payments if request_status(p) in wanted]
    return json_response(paginate(request, payments, page, request_body,
                                  {"id": lambda p: p.id, "created_at": lambda p: (p.created_at, p.id),
                                   "execute_at": lambda p: (p.next_attempt_at or p.created_at, p.id)},
                                  default_key="id"))


@router.get("/v1/payment-requests/{key}", summary="One payment request (preq_<id>)")
def get_payment_request(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    _no_schedule(request, None)
    param(key, "resourceId")
    text = key[len(REQUEST_PREFIX):] if key.startswith(REQUEST_PREFIX) else ""
    if text.isascii() and text.isdigit() and len(text) < 19:
        try:
            payment = find_payment(caller.store, int(text), caller.environment)
        except NotFound:
            payment = None
        if payment is not None and payment.kind == "charge":
            return json_response(request_body(payment))
    raise not_found("payment request", key)


# ---------------------------------------------------------------- authorize, reverse, verify-details

ACCEPTOR = "stripe"  # ratecard's one way of collecting; Solvimon's required payment_acceptor_id names it
MODIFICATION = {"succeeded": "SUCCESS", "requires_action": "ACTION_REQUIRED", "canceled": "SUCCESS"}


def _modification_status(payment: PaymentRecord) -> str:
    return MODIFICATION.get(payment.status, "FAILURE" if payment.status in ("failed", "uncollectible") else "SUCCESS")


@router.post("/v1/payments/authorize", openapi_extra=OBJECT_BODY,
             summary="Pay a final invoice now through Stripe (context PAY_INVOICE), optionally with a stored method")
async def authorize_payment(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request)
    only_fields(body, ("payment_acceptor_id", "customer_id", "payment_method_id", "payment_gateway_variant", "amount",
                       "context"), "ratecard pays a final invoice with a Stripe payment method it knows")
    if body.get("payment_acceptor_id") != ACCEPTOR:
        raise invalid("payment_acceptor_id", f"payment_acceptor_id must be {ACCEPTOR!r}: ratecard has no payment "
                                             "acceptors of its own and collects through Stripe")
    if body.get("payment_gateway_variant") not in (None, "STRIPE"):
        raise invalid("payment_gateway_variant", "payment_gateway_variant: ratecard collects through Stripe only")
    context = body.get("context")
    if not isinstance(context, dict):
        raise missing("context", "context is required: {type: PAY_INVOICE, pay_invoice: {invoice_id}}")
    if context.get("type") != "PAY_INVOICE":
        raise invalid("context.type", "context.type must be PAY_INVOICE: ratecard charges final invoices only (no "
                                      "direct, on-demand or subscription-initialising payments)")
    pay = context.get("pay_invoice")
    key = pay.get("invoice_id") if isinstance(pay, dict) else None
    if not isinstance(key, str) or not key:
        raise missing("context.pay_invoice.invoice_id", "context.pay_invoice.invoice_id is required")
    invoice_id = _invoice_id(caller, key, "context.pay_invoice.invoice_id")
    invoice = find_invoice(caller.store, str(invoice_id), caller.environment)
    _check_whole(body.get("amount"), invoice.total, invoice.currency, "amount")
    view = snapshot(caller).view
    if body.get("customer_id") is not None:
        param(str(body["customer_id"]), "customer_id")
        if view.customer_reference(str(body["customer_id"])) != invoice.customer:
            raise invalid("customer_id", "customer_id is not the invoice's customer")
    method = None
    chosen = body.get("payment_method_id")
    if chosen is not None:
        if not isinstance(chosen, str):
            raise invalid("payment_method_id", "payment_method_id must be a payment method's id or reference")
        param(chosen, "payment_method_id")
        try:
            method = payment_methods.method_for(caller.store, caller.environment, chosen, invoice.customer)
        except NotFound:
            raise invalid("payment_method_id", f"payment_method_id: no payment method {chosen[:60]!r}") from None
    payment = await run_in_threadpool(pay_invoice, caller.store, str(invoice_id), caller.now, caller.environment,
                                      method=method)
    out: dict[str, Any] = {"payment": payment_body(payment), "status": _modification_status(payment)}
    used = next((row for row in payment_methods.listed(caller.store, caller.environment)
                 if row.body["provider_reference"] == payment.payment_method
                 and row.body["customer"] == invoice.customer), None)
    if used is not None:
        out["payment"]["payment_method_id"] = used.id
        out["payment_method"] = render_method(view, used)
    if payment.status == "requires_action" and payment.action_url:
        out["action"] = {"url": payment.action_url, "method": "GET", "payment_gateway_variant": "STRIPE"}
    return json_response(out)


@router.post("/v1/payments/{key}/reverse", summary="Undo a charge: refund it when collected, cancel it when not")
async def reverse_payment(key: str, caller: Caller = Depends(current_caller)) -> Response:
    payment = _find(caller, key)
    if payment.kind != "charge":
        raise ApiError(400, "INVALID_OPERATION", f"payment {key} is a refund: it is not reversed")
    if payment.status == "canceled":
        raise ApiError(400, "INVALID_OPERATION", f"payment {key} was canceled already (its invoice is credited)")
    if payment.in_flight:
        raise ApiError(400, "INVALID_OPERATION", f"payment {key} has an attempt in flight: reverse it once its "
                                                 "outcome is known")
    if payment.status == "succeeded":
        _, refund = await run_in_threadpool(refund_invoice, caller.store, str(payment.invoice_id), caller.now,
                                            caller.environment)
        return json_response({"payment": payment_body(refund), "status": _modification_status(refund)})
    # not collected: a credit note for the whole invoice cancels the charge (nothing is owed)
    await run_in_threadpool(credit_invoice, caller.store, str(payment.invoice_id), caller.now, caller.environment)
    canceled = find_payment(caller.store, payment.id, caller.environment)
    return json_response({"payment": payment_body(canceled), "status": _modification_status(canceled)})


@router.post("/v1/payments/verify-details", openapi_extra=OBJECT_BODY, summary="Refused: see the error's message")
def verify_details(caller: Caller = Depends(current_caller)) -> Response:
    raise ApiError(400, "INVALID_OPERATION", "ratecard collects through Stripe, whose webhook tells it the outcome of "
                                             "a customer's authentication (POST /v1/psp/stripe/webhooks): there are no "
                                             "redirect details to verify; the payment's result changes by itself")
