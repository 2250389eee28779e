"""/v1/payment-methods: stored references to customers' payment methods at Stripe, with a default
flag; a customer's ACTIVE default is what its invoices are charged with (services.payment_methods).
`refresh` registers the Stripe customer's default method; `tokenize` is refused: ratecard never
handles card details (create the method with Stripe, register its id here)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services import payment_methods
from ...services.resources.model import View
from ...store.resources import Resource
from ..context import Caller, current_caller
from ..errors import ApiError, invalid, missing
from ..pagination import Page, paginate, solvimon_page
from .common import OBJECT_BODY, customer_of, json_body, json_response, param, stored, wire_instant
from .config import snapshot
from .vocabulary import require_object

router = APIRouter(tags=["payment methods"])


def render(view: View, row: Resource) -> dict[str, Any]:
    body = row.body
    out: dict[str, Any] = {
        "object_type": "PAYMENT_METHOD", "id": row.id, "reference": body.get("reference"), "status": body["status"],
        "type": body["type"], "customer_id": view.customer_id(body["customer"]), "integration_id": "stripe",
        "integration_reference": body["provider_reference"],
        "integration_details": {"payment_gateway_variant": "STRIPE",
                                "stripe": {"payment_method_id": body["provider_reference"]}},
        "billing_address": body.get("billing_address") or None, "is_default": bool(body.get("is_default")),
        "created_at": wire_instant(row.created_at), "updated_at": wire_instant(row.updated_at),
    }
    name = payment_methods.DETAILS.get(body["type"])
    if name is not None and body.get("details"):
        out[name] = body["details"]
    return {key: value for key, value in out.items() if value is not None}


def _find(caller: Caller, key: str) -> Resource:
    return stored(caller, payment_methods.find, key, "payment method", "resourceIdOrReference")


SORT = {"created_at": lambda row: (row.created_at, row.id), "updated_at": lambda row: (row.updated_at, row.id)}


@router.get("/v1/payment-methods", summary="List payment methods (customer_id, integration_payment_method_reference)")
def list_methods(request: Request, page: Page = Depends(solvimon_page), customer_id: str | None = Query(None),
                 integration_id: str | None = Query(None),
                 integration_payment_method_reference: str | None = Query(None),
                 caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    rows = payment_methods.listed(caller.store, caller.environment)
    if customer_id is not None:
        customer = customer_of(view, customer_id)
        rows = [row for row in rows if row.body["customer"] == customer]
    if integration_id is not None and param(integration_id, "integration_id") != "stripe":
        rows = []
    if integration_payment_method_reference is not None:
        param(integration_payment_method_reference, "integration_payment_method_reference")
        rows = [row for row in rows if row.body["provider_reference"] == integration_payment_method_reference]
    return json_response(paginate(request, rows, page, lambda row: render(view, row), SORT))


@router.post("/v1/payment-methods", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Register a customer's Stripe payment method (its first is its default)")
def create_method(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    if data.get("customer_id") is None:
        raise missing("customer_id", "customer_id is required")
    view = snapshot(caller).view
    row = payment_methods.create(caller.store, caller.environment, caller.now, view.document,
                                 customer_of(view, data["customer_id"]), data)
    return json_response(render(view, row), 201)


@router.put("/v1/payment-methods", status_code=201, openapi_extra=OBJECT_BODY,
            summary="Register or update a payment method by reference (else by its Stripe id)")
def upsert_method(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    view = snapshot(caller).view
    customer = customer_of(view, data["customer_id"]) if data.get("customer_id") is not None else None
    row, created = payment_methods.upsert(caller.store, caller.environment, caller.now, view.document, customer, data)
    return json_response(render(view, row), 201)  # the SDK reads 201 for both (its one success code here)


@router.post("/v1/payment-methods/refresh", openapi_extra=OBJECT_BODY,
             summary="Register the Stripe customer's default payment method; the customer's methods")
async def refresh_methods(request: Request, page: Page = Depends(solvimon_page),
                          caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(await json_body(request))
    for name in ("payment_acceptor_id", "payment_acceptor_reference"):
        if data.get(name) is not None:
            raise invalid(name, f"{name}: ratecard has no payment acceptors (its one integration is Stripe)")
    key = data.get("customer_id") or data.get("customer_reference")
    if key is None:
        raise missing("customer_id", "customer_id (or customer_reference) is required")
    view = snapshot(caller).view
    customer = customer_of(view, key, "customer_id" if data.get("customer_id") else "customer_reference")
    rows = await run_in_threadpool(payment_methods.refresh, caller.store, caller.environment, caller.now,
                                   view.document, customer)
    return json_response(paginate(request, rows, page, lambda row: render(view, row), everything=True))


@router.post("/v1/payment-methods/tokenize", openapi_extra=OBJECT_BODY, summary="Refused: see the error's message")
def tokenize(caller: Caller = Depends(current_caller)) -> Response:
    raise ApiError(400, "INVALID_OPERATION", "ratecard never handles card or bank details: create the payment method "
                                             "with Stripe (Stripe.js, a SetupIntent) and register its pm_ id with "
                                             "POST /v1/payment-methods")


@router.get("/v1/payment-methods/{key}", summary="Get a payment method (id or reference)")
def get_method(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return json_response(render(snapshot(caller).view, _find(caller, key)))


@router.patch("/v1/payment-methods/{key}", openapi_extra=OBJECT_BODY,
              summary="Change a payment method's status, default flag, details or reference")
def update_method(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    view = snapshot(caller).view
    row = _find(caller, key)
    customer = customer_of(view, data["customer_id"]) if data.get("customer_id") is not None else None
    row = payment_methods.update(caller.store, caller.environment, caller.now, row.id, data, customer)
    return json_response(render(view, row))
