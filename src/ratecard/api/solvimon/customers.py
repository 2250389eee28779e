"""/v1/customers: catalog customers in Solvimon's shape, with their lifecycle.

A customer created here is added to the catalog (a new catalog version), so events and
subscriptions can name it at once. Its billing fields live in the catalog (reference, name ←
organization.legal_name or the individual's name, email, country ← the address's country,
timezone, and the ratecard extensions `currency` and `tax_rate`); its Solvimon-only fields
(type, status, locale, organization/individual details, roles) in an api_resources row.
Customers applied as YAML are listed too (ACTIVE, ORGANIZATION, with a stable id).
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import babel
from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from ...catalog.schema import CatalogDocument
from ...catalog.schema import Customer as CatalogCustomer
from ...services.resources.checks import check_choice, check_reference, check_text
from ...services.resources.model import CUSTOMER, PREFIX, View, save_document
from ...store.resources import ConfigChange, Resource, config_change
from ..context import Caller, current_caller
from ..errors import already_exists, invalid, invalid_operation, missing, not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, json_body, json_response, wire_instant
from .config import snapshot
from .vocabulary import require_object

router = APIRouter(tags=["customers"])

STATUSES = ("DRAFT", "ACTIVE", "ARCHIVED", "DEPRECATED", "CLOSED")
TYPES = ("ORGANIZATION", "INDIVIDUAL")
ROLES = ("DEFAULT", "NON_PROCESSING", "SELF_BILLING", "SELLER", "PROCESSING_ONLY")
MAX_REFERENCE = 200  # catalog customer references
_EMAIL = re.compile(r"\S*@\S*\..*")
# ISO 3166-1 alpha-2 as the SDK knows it: CLDR's two-letter territories without its extras
COUNTRIES = frozenset(code for code in babel.Locale("en").territories if len(code) == 2 and code.isalpha()) - {
    "AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UM", "UN", "XA", "XB", "XK", "ZZ"}
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "state", "country")


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
        "email": customer.email if customer.email and _EMAIL.fullmatch(customer.email) else None,
        "timezone": customer.timezone,
        "locale": body.get("locale"),
        "roles": body.get("roles"),
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


# ---------------------------------------------------------------- input


def _address(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise invalid(field, f"{field} must be an object")
    address = {}
    for name in ADDRESS_FIELDS:
        if value.get(name) is not None:
            address[name] = check_text(value[name], f"{field}.{name}")
    if "country" in address and address["country"] not in COUNTRIES:
        raise invalid(f"{field}.country", f"{field}.country must be an upper-case ISO 3166-1 alpha-2 code, "
                                          f"got {address['country']!r}")
    return address


def _organization(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("organization", "organization must be an object")
    organization: dict[str, Any] = {}
    if value.get("legal_name") is not None:
        name = check_text(value["legal_name"], "organization.legal_name")
        if not name:
            raise invalid("organization.legal_name", "organization.legal_name must be 1 to 256 characters")
        organization["legal_name"] = name
    for name in ("tax_id", "registration_number"):
        if value.get(name) is not None:
            organization[name] = check_text(value[name], f"organization.{name}")
    if value.get("registered_address") is not None:
        organization["registered_address"] = _address(value["registered_address"], "organization.registered_address")
    return organization


def _individual(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("individual", "individual must be an object")
    individual: dict[str, Any] = {}
    if value.get("name") is not None:
        if not isinstance(value["name"], dict):
            raise invalid("individual.name", "individual.name must be an object")
        individual["name"] = {part: check_text(value["name"][part], f"individual.name.{part}")
                              for part in ("first_name", "infix", "last_name") if value["name"].get(part) is not None}
    if value.get("residential_address") is not None:
        individual["residential_address"] = _address(value["residential_address"], "individual.residential_address")
    return individual


def solvimon_fields(data: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The Solvimon-only fields kept in the row, from a create (current None) or an update."""
    body = dict(current or {})
    if current is None and data.get("type") is None:
        raise missing("type", "type is required: ORGANIZATION or INDIVIDUAL")
    if data.get("type") is not None:
        body["type"] = check_choice(data["type"], "type", TYPES)
    if data.get("status") is not None:
        body["status"] = check_choice(data["status"], "status", STATUSES)
    body.setdefault("status", "DRAFT")
    if "locale" in data:
        body["locale"] = check_text(data["locale"], "locale", 35)
    if data.get("roles") is not None:
        if not isinstance(data["roles"], list):
            raise invalid("roles", "roles must be a list")
        body["roles"] = [check_choice(role, f"roles.{i}", ROLES) for i, role in enumerate(data["roles"])]
    if data.get("organization") is not None:
        body["organization"] = _organization(data["organization"])
    if data.get("individual") is not None:
        body["individual"] = _individual(data["individual"])
    return {key: value for key, value in body.items() if value is not None}


def _name(body: dict[str, Any]) -> str | None:
    if body.get("type") == "INDIVIDUAL":
        parts = (body.get("individual") or {}).get("name") or {}
        name = " ".join(p for p in (parts.get("first_name"), parts.get("infix"), parts.get("last_name")) if p)
        return name or None
    return (body.get("organization") or {}).get("legal_name")


def _country(body: dict[str, Any]) -> str | None:
    for holder, address in (("organization", "registered_address"), ("individual", "residential_address")):
        country = ((body.get(holder) or {}).get(address) or {}).get("country")
        if country:
            return country
    return None


def catalog_customer(reference: str, data: dict[str, Any], body: dict[str, Any],
                     current: CatalogCustomer | None) -> CatalogCustomer:
    """The catalog customer after a create or update; each invalid field named."""
    values: dict[str, Any] = current.model_dump() if current is not None else {}
    values["reference"] = reference
    name = _name(body)
    if name is not None or current is None:
        values["name"] = name
    country = _country(body)
    if country is not None:
        values["country"] = country
    if "email" in data:
        email = check_text(data["email"], "email")
        if email is not None and not _EMAIL.fullmatch(email):
            raise invalid("email", f"email {email!r} is not an e-mail address")
        values["email"] = email
    if "timezone" in data:
        timezone = check_text(data["timezone"], "timezone", 64)
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise invalid("timezone", f"timezone {timezone!r} is not an IANA name such as Europe/Berlin") from None
        values["timezone"] = timezone
    for name in ("currency", "tax_rate"):  # ratecard extensions
        if name in data:
            values[name] = data[name]
    try:
        return CatalogCustomer.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else None
        raise invalid(field, f"{field}: {first['msg'].removeprefix('Value error, ')}") from None


# ---------------------------------------------------------------- changes


def _save(change: ConfigChange, document: CatalogDocument, customers: list[CatalogCustomer], what: str) -> View:
    save_document(change, document.model_copy(update={"customers": customers}), what)
    return View(change.environment, change.resources, change.catalog())


def create(change: ConfigChange, data: dict[str, Any]) -> tuple[View, CatalogCustomer, Resource]:
    document = change.catalog() or CatalogDocument()
    body = solvimon_fields(data, None)
    reference = data.get("reference")
    if reference is None:
        reference = f"cus_{secrets.token_hex(8)}"  # Solvimon lets a customer go without one; the catalog does not
    reference = check_reference(reference, max_length=MAX_REFERENCE)
    view = View(change.environment, change.resources, document)
    if view.customer(reference) is not None:
        raise already_exists("customer", reference)
    customer = catalog_customer(reference, data, body, None)
    view = _save(change, document, [*document.customers, customer], f"creating customer {reference!r}")
    row = change.put(Resource(change.new_id(PREFIX[CUSTOMER], CUSTOMER, reference), CUSTOMER, reference, body, 0, 0))
    return view, customer, row


def update(change: ConfigChange, key: str, data: dict[str, Any]) -> tuple[View, CatalogCustomer, Resource]:
    document = change.catalog() or CatalogDocument()
    view = View(change.environment, change.resources, document)
    found = view.find_customer(key)
    if found is None:
        raise not_found("customer", key)
    current, row = found
    reference = current.reference
    if data.get("reference") is not None and data["reference"] != reference:
        reference = check_reference(data["reference"], max_length=MAX_REFERENCE)
        if view.customer(reference) is not None:
            raise already_exists("customer", reference)
        if any(s.customer == current.reference for s in document.subscriptions):
            raise invalid_operation(f"customer {current.reference!r} has subscriptions, and its events are stored "
                                    "under its reference: the reference cannot change", "reference")
    body = solvimon_fields(data, row.body if row is not None else {"type": "ORGANIZATION", "status": "ACTIVE"})
    customer = catalog_customer(reference, data, body, current)
    customers = [customer if c.reference == current.reference else c for c in document.customers]
    view = _save(change, document, customers, f"changing customer {current.reference!r}")
    row_id = row.id if row is not None else view.customer_id(current.reference)
    row = change.put(Resource(row_id, CUSTOMER, reference, body, 0, 0))
    return view, customer, row


def transition(change: ConfigChange, key: str, target: str,
               allowed_from: tuple[str, ...]) -> tuple[View, CatalogCustomer, Resource | None]:
    """Move a customer's status to `target` (idempotent); refused from any status not allowed."""
    view = View(change.environment, change.resources, change.catalog())
    found = view.find_customer(key)
    if found is None:
        raise not_found("customer", key)
    customer, row = found
    body = dict(row.body) if row is not None else {"type": "ORGANIZATION", "status": "ACTIVE"}
    status = body.get("status", "ACTIVE")
    if status != target:
        if status not in allowed_from:
            raise invalid_operation(f"customer {customer.reference!r} is {status}: it cannot become {target}")
        body["status"] = target
        row = change.put(Resource(row.id if row is not None else view.customer_id(customer.reference), CUSTOMER,
                                  customer.reference, body, 0, 0))
    return view, customer, row


def remove(change: ConfigChange, key: str) -> dict[str, Any]:
    """Delete a DRAFT customer (from the catalog too); returns it as it was, rendered."""
    document = change.catalog() or CatalogDocument()
    view = View(change.environment, change.resources, document)
    found = view.find_customer(key)
    if found is None:
        raise not_found("customer", key)
    customer, row = found
    status = row.body.get("status", "ACTIVE") if row is not None else "ACTIVE"
    if status != "DRAFT":
        raise invalid_operation(f"customer {customer.reference!r} is {status}: only a DRAFT customer can be "
                                "deleted (archive it instead)")
    rendered = render(view, customer, row)
    _save(change, document, [c for c in document.customers if c.reference != customer.reference],
          f"deleting customer {customer.reference!r}")
    if row is not None:
        change.delete(row.id)
    return rendered


def _change_status(caller: Caller, key: str, target: str, allowed_from: tuple[str, ...]) -> Response:
    with config_change(caller.store, caller.environment, caller.now_us) as change:
        view, customer, row = transition(change, key, target, allowed_from)
        return json_response(render(view, customer, row))


# ---------------------------------------------------------------- routes


@router.get("/v1/customers", summary="List customers (the catalog's)")
def list_customers(request: Request, page: Page = Depends(solvimon_page), reference: str | None = Query(None),
                   custom_field: str | None = Query(None, description="accepted and ignored"),
                   caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    items = [(index, c, view.resources.by_reference.get((CUSTOMER, c.reference)))
             for index, c in enumerate(view.customers()) if reference is None or c.reference == reference]
    sort_keys = {"created_at": lambda item: (item[2].created_at if item[2] else 0, item[0]),
                 "reference": lambda item: item[1].reference, "id": lambda item: view.customer_id(item[1].reference),
                 "name": lambda item: sortable(item[1].name),
                 "status": lambda item: (item[2].body.get("status") if item[2] else "ACTIVE")}
    return json_response(paginate(request, items, page, lambda item: render(view, item[1], item[2]), sort_keys))


@router.post("/v1/customers", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Create a customer (added to the catalog as a new version)")
def create_customer(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    with config_change(caller.store, caller.environment, caller.now_us) as change:
        view, customer, row = create(change, data)
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
    with config_change(caller.store, caller.environment, caller.now_us) as change:
        view = View(caller.environment, change.resources, change.catalog())
        if key is not None and view.find_customer(key) is not None:
            view, customer, row = update(change, key, {k: v for k, v in data.items() if k != "id"})
        else:
            view, customer, row = create(change, data)
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
    data = require_object(body)
    with config_change(caller.store, caller.environment, caller.now_us) as change:
        view, customer, row = update(change, key, data)
        return json_response(render(view, customer, row))


@router.delete("/v1/customers/{key:path}", summary="Delete a DRAFT customer (removed from the catalog)")
def delete_customer(key: str, caller: Caller = Depends(current_caller)) -> Response:
    with config_change(caller.store, caller.environment, caller.now_us) as change:
        rendered = remove(change, key)
    return json_response(rendered)
