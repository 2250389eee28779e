"""Billing entities from Solvimon's requests: each write is a new catalog version holding the entity
(the default one is `billing_entity`, the others `billing_entities`), validated whole like every
catalog write (model.save_document).

Mapping: `reference` -> code, `legal_name` -> legal_name and name, `tax_id`, `registered_address`
(line1, line2, state as address lines; city, postal_code, country), `email` -> the invoice emails'
sender, `timezone`, `default_billing_currency_selector` (one currency) -> currency. A new entity's
invoice prefix is its code in capitals (its numbering must differ from the other entities').

What does not change by PATCH (refused, naming the field): the code, the timezone and the currency,
since they date and price every document the entity issued. What ratecard's entities do not hold
(tax_ids, registration_number, tax_settings, tax_registrations, custom_fields,
default_customer_country_selector, linked_integrations) is refused rather than dropped.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ...catalog.schema import Address, BillingEntity, CatalogDocument, EmailSettings, ExtraBillingEntity
from ...domain.instants import to_micros
from ...store import Store
from ...store.resources import config_change
from ..errors import NotFound
from .checks import already_exists, invalid, missing, not_found
from .model import save_document

UNSUPPORTED = {
    "tax_ids": "an entity has one tax_id", "registration_number": "ratecard's documents show no registration number",
    "tax_settings": "tax is the customer's tax_rate in the catalog",
    "tax_registrations": "an entity has one tax_id and one address",
    "custom_fields": "ratecard's billing entities have no custom fields",
    "default_customer_country_selector": "a customer names its entity (billing_entity) in the catalog",
    "linked_integrations": "ratecard has no integrations to link",
}
KNOWN = ("object_type", "id", "created_at", "reference", "status", "timezone", "legal_name", "tax_id",
         "registered_address", "email", "default_billing_currency_selector", *UNSUPPORTED)
FIXED = ("timezone", "default_billing_currency_selector")  # what a PATCH may not change
WIRE_NAMES = {"code": "reference", "legal_name": "legal_name", "name": "legal_name", "tax_id": "tax_id",
              "address": "registered_address", "email": "email", "timezone": "timezone",
              "currency": "default_billing_currency_selector", "invoice_prefix": "reference"}


def _check(data: dict[str, Any]) -> None:
    for name, value in data.items():
        if name not in KNOWN:
            raise invalid(str(name)[:60], f"{str(name)[:60]} is not a field of a billing entity")
        if name in UNSUPPORTED and value not in (None, [], {}):
            raise invalid(name, f"{name}: {UNSUPPORTED[name]}")
    if data.get("status") not in (None, "ACTIVE"):
        raise invalid("status", "status: a billing entity is ACTIVE while the catalog holds it")


def _address(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("registered_address", "registered_address must be an object")
    lines = [value[key] for key in ("line1", "line2", "state") if value.get(key)]
    if not lines:
        raise missing("registered_address.line1", "registered_address.line1 is required")
    for key in ("city", "country"):
        if not value.get(key):
            raise missing(f"registered_address.{key}", f"registered_address.{key} is required")
    out = {"lines": lines, "city": value["city"], "country": value["country"]}
    if value.get("postal_code"):
        out["postal_code"] = value["postal_code"]
    return out


def entity_fields(data: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The catalog entity's fields: `current` (a dump of the entity, or {}) with the request's changes."""
    fields = dict(current)
    if "legal_name" in data and data["legal_name"] is not None:
        fields["legal_name"] = data["legal_name"]
        fields["name"] = data["legal_name"]
    if "tax_id" in data:
        fields["tax_id"] = data["tax_id"]
    if "registered_address" in data:
        fields["address"] = _address(data["registered_address"]) if data["registered_address"] is not None else None
    if "email" in data:
        email = dict(fields.get("email") or {})
        email["sender"] = data["email"]
        fields["email"] = email if data["email"] is not None or email.get("send_on_finalization") else None
    if data.get("timezone") is not None:
        fields["timezone"] = data["timezone"]
    selector = data.get("default_billing_currency_selector")
    if selector is not None:
        if not isinstance(selector, list) or len(selector) != 1 or not isinstance(selector[0], str):
            raise invalid("default_billing_currency_selector", "default_billing_currency_selector: a ratecard entity "
                                                               "bills in one currency; give exactly one")
        fields["currency"] = selector[0]
    return fields


def _validated(cls: type[BillingEntity], fields: dict[str, Any]) -> BillingEntity:
    try:
        if isinstance(fields.get("email"), dict):
            EmailSettings.model_validate(fields["email"])
        if isinstance(fields.get("address"), dict):
            Address.model_validate(fields["address"])
        return cls.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = WIRE_NAMES.get(str(first["loc"][0]) if first["loc"] else "", None)
        if where is None and first["loc"]:  # an address or email part
            where = "registered_address" if "lines" in str(first["loc"]) or "city" in str(first["loc"]) else "email"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise invalid(where, f"{where or 'billing entity'}: {message}") from None


def _entities(document: CatalogDocument) -> list[BillingEntity]:
    return [document.billing_entity, *document.billing_entities]


def create(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[BillingEntity, bool]:
    """Add an entity to the catalog (a new version); (entity, is the default)."""
    _check(data)
    reference = data.get("reference")
    if reference is None:
        raise missing("reference", "reference is required: it is the entity's code, which customers name")
    if not isinstance(reference, str):
        raise invalid("reference", "reference must be a string")
    prefix = re.sub(r"[^A-Z0-9]", "", reference.upper())[:10] or "BE"
    fields = entity_fields(data, {"code": reference, "name": data.get("legal_name") or reference,
                                  "invoice_prefix": prefix})
    entity = _validated(ExtraBillingEntity, fields)
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog() or CatalogDocument()
        if any(existing.code == entity.code for existing in _entities(document)):
            raise already_exists("billing entity", entity.code)
        save_document(change, document.model_copy(update={"billing_entities": [*document.billing_entities, entity]}),
                      f"creating billing entity {entity.code!r}")
    return entity, False


def update(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any],
           put: bool = False) -> tuple[BillingEntity, bool]:
    """Change an entity's legal name, tax id, address or sender (a new catalog version). `put`: the
    whole entity is given (fields left out are cleared, as a PUT replaces)."""
    _check(data)
    if data.get("reference") not in (None, key):
        raise invalid("reference", "reference cannot change: customers and documents name the entity by it")
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog()
        found = next((e for e in _entities(document) if e.code == key), None) if document is not None else None
        if document is None or found is None:
            raise not_found("billing entity", key)
        current = found.model_dump(mode="json", exclude_none=True)
        for name in FIXED:
            if data.get(name) is not None:
                after = entity_fields({name: data[name]}, current)
                if after.get("timezone") != current.get("timezone") or after.get("currency") != current.get("currency"):
                    raise invalid(name, f"{name} cannot change: it dates and prices every document the entity "
                                        "issued (add another entity)")
        if put:
            data = {name: data.get(name) for name in ("legal_name", "tax_id", "registered_address", "email")} | \
                {name: value for name, value in data.items() if name in FIXED}
            if data.get("legal_name") is None:
                data.pop("legal_name")
        is_default = found is document.billing_entity
        entity = _validated(BillingEntity if is_default else ExtraBillingEntity, entity_fields(data, current))
        if is_default:
            updated = document.model_copy(update={"billing_entity": entity})
        else:
            updated = document.model_copy(update={"billing_entities": [
                entity if e.code == key else e for e in document.billing_entities]})
        save_document(change, updated, f"changing billing entity {key!r}")
    return entity, is_default


def upsert(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[BillingEntity, bool]:
    """PUT by reference: replace the entity's details, or create it."""
    reference = data.get("reference")
    if not isinstance(reference, str) or not reference:
        raise missing("reference", "reference is required: it names the entity to create or replace")
    try:
        return update(store, environment, now, reference, data, put=True)
    except NotFound:
        return create(store, environment, now, data)
