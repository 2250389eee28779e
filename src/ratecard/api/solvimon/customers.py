"""/v1/customers: catalog customers in Solvimon's shape, with their lifecycle (the edits are
services.resources.customers). Customers applied as YAML are listed too (ACTIVE, ORGANIZATION,
with a stable id)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...catalog.schema import Customer as CatalogCustomer
from ...domain.instants import to_micros
from ...domain.tax_ids import check_tax_id
from ...services.resources import customers
from ...services.resources.customers import COUNTRIES, EMAIL
from ...services.resources.model import CUSTOMER, View
from ...store.resources import Resource
from ..context import Caller, current_caller
from ..errors import invalid, not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, json_body, json_response, multi, param, wire_instant
from .config import snapshot
from .search import Field, search, search_body
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


def _row_field(name: str) -> Field:
    return Field(lambda item: (item[2].body.get(name) if item[2] is not None else None)
                 or ({"status": "ACTIVE", "type": "ORGANIZATION"}.get(name)), enum=name in ("status", "type"))


@router.post("/v1/customers/search", openapi_extra=OBJECT_BODY,
             summary="Search customers (search_fields, filter_fields); paged like the list")
def search_customers(request: Request, body: dict[str, Any] = Depends(search_body),
                     page: Page = Depends(solvimon_page), caller: Caller = Depends(current_caller)) -> Response:
    if multi(request, "expand"):
        raise invalid("expand", "expand: a customer has nothing to expand")
    view = snapshot(caller).view
    items = [(index, c, view.resources.by_reference.get((CUSTOMER, c.reference)))
             for index, c in enumerate(view.customers())]
    fields = {"id": Field(lambda item: view.customer_id(item[1].reference)),
              "reference": Field(lambda item: item[1].reference), "name": Field(lambda item: item[1].name),
              "email": Field(lambda item: item[1].email), "country": Field(lambda item: item[1].country, enum=True),
              "currency": Field(lambda item: item[1].currency, enum=True),
              "status": _row_field("status"), "type": _row_field("type"),
              "parent_customer_id": _row_field("parent_customer_id")}
    found = search(items, body, fields)
    sort_keys = {"created_at": lambda item: (item[2].created_at if item[2] else 0, item[0]),
                 "reference": lambda item: item[1].reference, "name": lambda item: sortable(item[1].name)}
    return json_response(paginate(request, found, page, lambda item: render(view, item[1], item[2]), sort_keys))


MAX_TAX_IDS = 20


@router.post("/v1/customers/validate-tax-id", openapi_extra=OBJECT_BODY,
             summary="Check the tax ids of a customer body offline (syntax and check digits; no registry)")
def validate_tax_ids(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    organization = data.get("organization")
    if not isinstance(organization, dict):
        raise invalid("organization", "organization is required: the tax ids are organization.tax_id and "
                                      "organization.tax_ids")
    address = organization.get("registered_address")
    country = address.get("country") if isinstance(address, dict) and isinstance(address.get("country"), str) else None
    wanted: list[tuple[str, str | None]] = []
    if organization.get("tax_id") is not None:
        if not isinstance(organization["tax_id"], str):
            raise invalid("organization.tax_id", "organization.tax_id must be a string")
        wanted.append((organization["tax_id"], None))
    listed = organization.get("tax_ids") or []
    if not isinstance(listed, list) or len(listed) > MAX_TAX_IDS:
        raise invalid("organization.tax_ids", f"organization.tax_ids must be a list of at most {MAX_TAX_IDS}")
    for index, item in enumerate(listed):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise invalid(f"organization.tax_ids.{index}.id", f"organization.tax_ids.{index}.id must be the number")
        kind = item.get("type")
        if kind is not None and not isinstance(kind, str):
            raise invalid(f"organization.tax_ids.{index}.type", "type must be a string")
        wanted.append((item["id"], kind))
    if not wanted:
        raise invalid("organization.tax_id", "give organization.tax_id or organization.tax_ids to validate")
    checked = wire_instant(to_micros(caller.now))
    results = []
    for number, kind in wanted:
        result = check_tax_id(number, kind, country)
        results.append({"id": result.number, "validation_date": checked, "source": "RATECARD_OFFLINE",
                        "valid": result.result, "message": result.message})
    return json_response({"data": results})


@router.post("/v1/customers/{key:path}/forget",
             summary="Erase a customer's personal data (kept: its invoices, as issued, and its reference)")
def forget_customer(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view, customer, row = customers.forget(caller.store, caller.environment, caller.now, param(key, "key") or key)
    return json_response(render(view, customer, row))


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
