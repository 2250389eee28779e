"""/v1/customers: catalog customers in Solvimon's shape, with their lifecycle (the edits are
services.resources.customers). Customers applied as YAML are listed too (ACTIVE, ORGANIZATION,
with a stable id)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...catalog.schema import Customer as CatalogCustomer
from ...services.resources import customers
from ...services.resources.customers import COUNTRIES, EMAIL
from ...services.resources.model import CUSTOMER, View
from ...store.resources import Resource
from ..context import Caller, current_caller
from ..errors import invalid, not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, json_body, json_response, wire_instant
from .config import snapshot
from .vocabulary import require_object

router = APIRouter(tags=["customers"])

# ---------------------------------------------------------------- rendering


def render(view: View, customer: CatalogCustomer, row: Resource | None) -> dict[str, Any]:
    body = row.body if row is not None else {}
    kind = body.get("type") or "ORGANIZATION"
    out: dict[str, Any] = {
        "object_type": "CUSTOMER",
        "id": view.customer_id(customer.reference),
        "reference": customer.reference,
        "status": body.get("status") or "ACTIVE",
        "type": kind,
        "email": customer.email if customer.email and EMAIL.fullmatch(customer.email) else None,
        "timezone": customer.timezone,
        "locale": body.get("locale"),
        "roles": body.get("roles"),
        "custom_fields": body.get("custom_fields"),
        "parent_customer_id": body.get("parent_customer_id"),
        "parent_customer_ids": [body["parent_customer_id"]] if body.get("parent_customer_id") else None,
        "created_at": wire_instant(row.created_at) if row is not None else None,
        "updated_at": wire_instant(row.updated_at) if row is not None else None,
        "currency": customer.currency,
        "tax_rate": str(customer.tax_rate) if customer.tax_rate is not None else None,
    }
    country = customer.country.upper() if customer.country and customer.country.upper() in COUNTRIES else None
    if kind == "ORGANIZATION":
        organization = dict(body.get("organization") or {})
        if customer.name:
            organization["legal_name"] = customer.name[:256]
        if country:
            organization["registered_address"] = {**organization.get("registered_address", {}), "country": country}
        out["organization"] = organization or None
    else:
        individual = dict(body.get("individual") or {})
        if customer.name and not individual.get("name"):
            individual["name"] = {"first_name": customer.name}
        if country:
            individual["residential_address"] = {**individual.get("residential_address", {}), "country": country}
        out["individual"] = individual or None
    return {key: value for key, value in out.items() if value is not None}


def _change_status(caller: Caller, key: str, target: str, allowed_from: tuple[str, ...]) -> Response:
    view, customer, row = customers.change_status(caller.store, caller.environment, caller.now, key, target,
                                                  allowed_from)
    return json_response(render(view, customer, row))


# ---------------------------------------------------------------- routes


@router.get("/v1/customers", summary="List customers (the catalog's)")
def list_customers(request: Request, page: Page = Depends(solvimon_page), reference: str | None = Query(None),
                   custom_field: str | None = Query(None, description="reference:value (or a bare value: any field)"),
                   caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    items = [(index, c, view.resources.by_reference.get((CUSTOMER, c.reference)))
             for index, c in enumerate(view.customers()) if reference is None or c.reference == reference]
    if custom_field is not None:
        items = [item for item in items
                 if item[2] is not None and customers.custom_field_matches(item[2].body, custom_field)]
    sort_keys = {"created_at": lambda item: (item[2].created_at if item[2] else 0, item[0]),
                 "reference": lambda item: item[1].reference, "id": lambda item: view.customer_id(item[1].reference),
                 "name": lambda item: sortable(item[1].name),
                 "status": lambda item: (item[2].body.get("status") if item[2] else "ACTIVE")}
    return json_response(paginate(request, items, page, lambda item: render(view, item[1], item[2]), sort_keys))


@router.post("/v1/customers", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Create a customer (added to the catalog as a new version)")
def create_customer(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, customer, row = customers.create(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(render(view, customer, row), 201)


@router.put("/v1/customers", status_code=201, openapi_extra=OBJECT_BODY,
            summary="Create or update a customer, found by identifier_field (reference)")
def upsert_customer(body: Any = Depends(json_body), identifier_field: str | None = Query(None),
                    custom_field_reference: str | None = Query(None), field_actions: str | None = Query(None),
                    caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    if identifier_field not in (None, "reference", "id"):
        raise invalid("identifier_field", "identifier_field must be reference or id")
    key = data.get("id") if identifier_field == "id" else data.get("reference")
    view, customer, row = customers.upsert(caller.store, caller.environment, caller.now, key, data)
    return json_response(render(view, customer, row), 201)


@router.post("/v1/customers/{key:path}/activate", summary="Activate a customer (DRAFT → ACTIVE; idempotent)")
def activate_customer(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return _change_status(caller, key, "ACTIVE", ("DRAFT",))


@router.post("/v1/customers/{key:path}/archive", summary="Archive a customer")
def archive_customer(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return _change_status(caller, key, "ARCHIVED", ("DRAFT", "ACTIVE", "DEPRECATED"))


@router.post("/v1/customers/{key:path}/deprecate", summary="Deprecate a customer")
def deprecate_customer(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return _change_status(caller, key, "DEPRECATED", ("DRAFT", "ACTIVE"))


@router.get("/v1/customers/{key:path}", summary="Get a customer by id or reference")
def get_customer(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    found = view.find_customer(key)
    if found is None:
        raise not_found("customer", key)
    return json_response(render(view, *found))


@router.patch("/v1/customers/{key:path}", openapi_extra=OBJECT_BODY,
              summary="Update a customer (its catalog fields in a new catalog version)")
def update_customer(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, customer, row = customers.update(caller.store, caller.environment, caller.now, key, require_object(body))
    return json_response(render(view, customer, row))


@router.delete("/v1/customers/{key:path}", summary="Delete a DRAFT customer (removed from the catalog)")
def delete_customer(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return json_response(customers.delete(caller.store, caller.environment, caller.now, key, render))
