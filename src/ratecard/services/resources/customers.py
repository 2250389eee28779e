"""Customers: catalog customers with Solvimon's lifecycle.

A customer created here is added to the catalog (a new catalog version), so events and
subscriptions can name it at once. Its billing fields live in the catalog (reference, name ←
organization.legal_name or the individual's name, email, country ← the address's country,
timezone, and the ratecard extensions `currency` and `tax_rate`); its Solvimon-only fields
(type, status, locale, organization/individual details, roles) in an api_resources row.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import babel
from pydantic import ValidationError

from ...catalog.schema import CatalogDocument
from ...catalog.schema import Customer as CatalogCustomer
from ...domain.instants import to_micros
from ...store import Store
from ...store.resources import ConfigChange, Resource, config_change, rows_of_kinds
from ..errors import ServiceError
from ..webhook_events import outbox
from .checks import already_exists, check_choice, check_reference, check_text, invalid, invalid_operation, missing, not_found
from .model import CUSTOMER, PREFIX, View, save_document

Shown = TypeVar("Shown")
STATUSES = ("DRAFT", "ACTIVE", "ARCHIVED", "DEPRECATED", "CLOSED")
TYPES = ("ORGANIZATION", "INDIVIDUAL")
ROLES = ("DEFAULT", "NON_PROCESSING", "SELF_BILLING", "SELLER", "PROCESSING_ONLY")
MAX_REFERENCE = 200  # catalog customer references
EMAIL = re.compile(r"\S*@\S*\..*")
# ISO 3166-1 alpha-2 as the SDK knows it: CLDR's two-letter territories without its extras
COUNTRIES = frozenset(code for code in babel.Locale("en").territories if len(code) == 2 and code.isalpha()) - {
    "AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UM", "UN", "XA", "XB", "XK", "ZZ"}
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "state", "country")


# ---------------------------------------------------------------- input



def check_subscribable(reference: str, row: Resource | None, field: str = "customer_id") -> None:
    """The one rule of every way a subscription is made (the API's create and init, the CLI's
    `subscriptions create` and `subscriptions import`): its customer is ACTIVE. A customer without
    a row (one of the catalog only) is ACTIVE; a DRAFT, DEPRECATED, ARCHIVED or CLOSED one is
    refused. `field`: how the caller names the customer (customer_id; the CLI's customer)."""
    status = row.body.get("status", "ACTIVE") if row is not None else "ACTIVE"
    if status != "ACTIVE":
        raise invalid_operation(f"customer {reference!r} is {status}: only an ACTIVE customer can be subscribed "
                                "(activate it first: POST /v1/customers/{reference}/activate)", field)


def subscribable_refusal(store: Store, environment: str) -> Callable[[str], str | None]:
    """check_subscribable over the environment's customer rows as they are now, as a reason (or
    None): for a caller that refuses some customers' subscriptions and keeps the others."""
    rows = {row.reference: row for row in rows_of_kinds(store, environment, (CUSTOMER,))}
    return lambda reference: _refusal(reference, rows.get(reference))


def subscribable_refusal_in(change: ConfigChange) -> Callable[[str], str | None]:
    """subscribable_refusal over the customer rows read under the lock `change` holds: what a caller
    that checked before taking it checks again before it stores."""
    return lambda reference: _refusal(reference, change.resources.by_reference.get((CUSTOMER, reference)))


def _refusal(reference: str, row: Resource | None) -> str | None:
    try:
        check_subscribable(reference, row)
    except ServiceError as exc:
        return exc.message
    return None

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
    if data.get("custom_fields") is not None:
        body["custom_fields"] = _custom_fields(data["custom_fields"])  # a given list replaces the previous one
    return {key: value for key, value in body.items() if value is not None}


MAX_CUSTOM_FIELDS = 100


def _custom_fields(value: Any) -> list[dict[str, Any]]:
    """Solvimon's custom field values: free pairs {reference, value} or {reference, values}, kept
    as given (ratecard has no custom-field definitions to check them against)."""
    if not isinstance(value, list):
        raise invalid("custom_fields", "custom_fields must be a list")
    if len(value) > MAX_CUSTOM_FIELDS:
        raise invalid("custom_fields", f"custom_fields may hold at most {MAX_CUSTOM_FIELDS} fields")
    fields: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        at = f"custom_fields.{index}"
        if not isinstance(item, dict):
            raise invalid(at, f"{at} must be an object")
        key = item.get("reference") if item.get("reference") is not None else item.get("id")
        if key is None:
            raise missing(f"{at}.reference", f"{at} needs a reference")
        entry: dict[str, Any] = {"reference": check_reference(key, f"{at}.reference", 256)}
        if any(f["reference"] == entry["reference"] for f in fields):
            raise invalid(f"{at}.reference", f"custom field {entry['reference']!r} appears twice")
        if item.get("value") is not None:
            entry["value"] = check_text(item["value"], f"{at}.value")
        if item.get("values") is not None:
            if not isinstance(item["values"], list) or len(item["values"]) > MAX_CUSTOM_FIELDS:
                raise invalid(f"{at}.values", f"{at}.values must be a list of at most {MAX_CUSTOM_FIELDS} strings")
            entry["values"] = [check_text(v, f"{at}.values.{i}") for i, v in enumerate(item["values"])]
        fields.append(entry)
    return fields


def custom_field_matches(body: dict[str, Any], wanted: str) -> bool:
    """The list filter `custom_field`: `reference:value` (or `reference=value`) matches a customer
    whose field `reference` has that value (or lists it among its values); a bare `value` matches
    any of its fields."""
    reference, value = None, wanted
    for separator in (":", "="):
        if separator in wanted:
            reference, value = wanted.split(separator, 1)
            break
    for field in body.get("custom_fields") or []:
        if reference is not None and field.get("reference") != reference:
            continue
        if field.get("value") == value or value in (field.get("values") or []):
            return True
    return False


def _parent(view: View, data: dict[str, Any], body: dict[str, Any], reference: str) -> None:
    """parent_customer_id (an id or reference of another customer) kept as that customer's id;
    null clears it. A customer cannot be its own ancestor."""
    if "parent_customer_id" not in data:
        return
    if data["parent_customer_id"] is None:
        body.pop("parent_customer_id", None)
        return
    key = check_reference(data["parent_customer_id"], "parent_customer_id", 256)
    found = view.find_customer(key)
    if found is None:
        raise invalid("parent_customer_id", f"parent_customer_id: customer {key!r} does not exist")
    parent = found[0].reference
    seen = {reference}
    while parent is not None:
        if parent in seen:
            raise invalid("parent_customer_id", "parent_customer_id would make the customer its own ancestor")
        seen.add(parent)
        row = view.resources.by_reference.get((CUSTOMER, parent))
        grand = (row.body.get("parent_customer_id") if row is not None else None)
        parent = view.customer_reference(grand) if grand else None
    body["parent_customer_id"] = view.customer_id(found[0].reference)


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
        if email is not None and not EMAIL.fullmatch(email):
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


def _create(change: ConfigChange, data: dict[str, Any]) -> tuple[View, CatalogCustomer, Resource]:
    document = change.catalog() or CatalogDocument()
    body = solvimon_fields(data, None)
    reference = data.get("reference")
    if reference is None:
        reference = f"cus_{secrets.token_hex(8)}"  # Solvimon lets a customer go without one; the catalog does not
    reference = check_reference(reference, max_length=MAX_REFERENCE)
    view = View(change.environment, change.resources, document)
    if view.customer(reference) is not None:
        raise already_exists("customer", reference)
    _parent(view, data, body, reference)
    customer = catalog_customer(reference, data, body, None)
    view = _save(change, document, [*document.customers, customer], f"creating customer {reference!r}")
    row = change.put(Resource(change.new_id(PREFIX[CUSTOMER], CUSTOMER, reference), CUSTOMER, reference, body, 0, 0))
    return view, customer, row


def _update(change: ConfigChange, key: str, data: dict[str, Any]) -> tuple[View, CatalogCustomer, Resource]:
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
    _parent(view, data, body, current.reference)
    customer = catalog_customer(reference, data, body, current)
    customers = [customer if c.reference == current.reference else c for c in document.customers]
    view = _save(change, document, customers, f"changing customer {current.reference!r}")
    row_id = row.id if row is not None else view.customer_id(current.reference)
    row = change.put(Resource(row_id, CUSTOMER, reference, body, 0, 0))
    return view, customer, row


def _transition(change: ConfigChange, key: str, target: str,
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


def _remove(change: ConfigChange, key: str, show: Callable[[View, CatalogCustomer, Resource | None], Shown]) -> Shown:
    """Delete a DRAFT customer (from the catalog too); `show` shapes it as it was, before it goes."""
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
    shown = show(view, customer, row)
    _save(change, document, [c for c in document.customers if c.reference != customer.reference],
          f"deleting customer {customer.reference!r}")
    if row is not None:
        change.delete(row.id)
    return shown


# ---------------------------------------------------------------- use cases (one locked transaction each)

Changed = tuple[View, CatalogCustomer, Resource]


def create(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> Changed:
    box = outbox(store, environment, now)  # the webhooks, read before the lock
    with config_change(store, environment, to_micros(now)) as change:
        created = _create(change, data)
        box.write(change.connection, [created_event(created)])  # customer.created, stored with the customer
    return created


def create_in(change: ConfigChange, data: dict[str, Any]) -> Changed:
    """create, within a transaction the caller holds (with writes of its own that stand or fall
    with the customer); the caller queues its created_event in that transaction."""
    return _create(change, data)


def update(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> Changed:
    with config_change(store, environment, to_micros(now)) as change:
        return _update(change, key, data)


def upsert(store: Store, environment: str, now: datetime, key: Any, data: dict[str, Any]) -> Changed:
    """Update the customer `key` names (id or reference) when it exists, else create it."""
    box = outbox(store, environment, now)
    with config_change(store, environment, to_micros(now)) as change:
        view = View(environment, change.resources, change.catalog())
        if key is not None and view.find_customer(key) is not None:
            return _update(change, key, {k: v for k, v in data.items() if k != "id"})
        created = _create(change, data)
        box.write(change.connection, [created_event(created)])
    return created


def created_event(created: Changed) -> tuple[str, dict[str, Any]]:
    """The customer.created webhook event of a customer created: (action, its object)."""
    _, customer, row = created
    return "customer.created", {"object_type": "CUSTOMER", "id": row.id, "reference": customer.reference,
                                "name": customer.name}


def change_status(store: Store, environment: str, now: datetime, key: str, target: str,
                  allowed_from: tuple[str, ...]) -> tuple[View, CatalogCustomer, Resource | None]:
    with config_change(store, environment, to_micros(now)) as change:
        return _transition(change, key, target, allowed_from)


def delete(store: Store, environment: str, now: datetime, key: str,
           show: Callable[[View, CatalogCustomer, Resource | None], Shown]) -> Shown:
    with config_change(store, environment, to_micros(now)) as change:
        return _remove(change, key, show)


# ---------------------------------------------------------------- forgetting (erasure on request)

# the personal data a forgotten customer loses: in the catalog customer, and in its row's details
FORGOTTEN_CATALOG_FIELDS = ("name", "email", "address", "tax_id", "peppol_id")
FORGOTTEN_ROW_FIELDS = ("custom_fields", "locale")


def _has_ended(moment: Any, now: datetime) -> bool:
    if moment is None:
        return False
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=now.tzinfo)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=now.tzinfo)
    return moment <= now


def _scrubbed(body: dict[str, Any]) -> dict[str, Any]:
    """The row without personal details; an address keeps only its country (it decides tax)."""
    kept = {key: value for key, value in body.items() if key not in FORGOTTEN_ROW_FIELDS}
    for holder, address in (("organization", "registered_address"), ("individual", "residential_address")):
        if holder in kept:
            country = ((kept[holder] or {}).get(address) or {}).get("country")
            kept[holder] = {address: {"country": country}} if country else {}
    return kept


def forget(store: Store, environment: str, now: datetime, key: str) -> Changed:
    """Erase a customer's personal data from the current catalog (a new version) and its row, and
    archive it. Refused while a subscription of it still runs (it would be billed again).
    Finalized invoices and the catalog versions they were issued under are kept untouched: an
    issued invoice must be kept as issued (retention law), and its document is rendered from
    its catalog version. The reference stays (stored events and invoices are keyed by it)."""
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog() or CatalogDocument()
        view = View(environment, change.resources, document)
        found = view.find_customer(key)
        if found is None:
            raise not_found("customer", key)
        current, row = found
        running = [s.reference for s in document.subscriptions
                   if s.customer == current.reference and not _has_ended(s.end, now)]
        if running:
            raise invalid_operation(f"customer {current.reference!r} still has running subscriptions "
                                    f"({', '.join(running[:3])}): cancel them before forgetting the customer")
        customer = current.model_copy(update=dict.fromkeys(FORGOTTEN_CATALOG_FIELDS))
        body = _scrubbed(row.body if row is not None else {"type": "ORGANIZATION"})
        body.update(status="ARCHIVED", forgotten_at=to_micros(now))
        customers = [customer if c.reference == current.reference else c for c in document.customers]
        view = _save(change, document, customers, f"forgetting customer {current.reference!r}")
        row = change.put(Resource(row.id if row is not None else view.customer_id(current.reference), CUSTOMER,
                                  current.reference, body, 0, 0))
        return view, customer, row
