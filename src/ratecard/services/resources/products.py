"""Product categories, products and product items (Solvimon's catalog of what is sold).

ratecard prices by plan charge and has no product concept: these rows keep what the Solvimon API
round-trips (names, references, statuses, the category of a product, the product of an item) and
the one link that bills, a usage item's meter value calculation (a catalog meter). A pricing of a
plan version names product items; publishing the version turns each into a charge
(services.resources.pricing_plans)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...domain.instants import to_micros
from ...store import Store
from ...store.resources import ConfigChange, Resource, config_change
from .checks import (
    CONFIG_STATUSES,
    already_exists,
    check_choice,
    check_reference,
    check_text,
    invalid,
    invalid_operation,
    missing,
    not_found,
)
from .model import View

CATEGORY, PRODUCT, ITEM = "product_category", "product", "product_item"
PREFIX = {CATEGORY: "pcat_", PRODUCT: "prod_", ITEM: "pitm_"}
LABEL = {CATEGORY: "product category", PRODUCT: "product", ITEM: "product item"}
TAX_CATEGORIES = ("STANDARD", "NO_TAX", "EXEMPT")
PRODUCT_TYPES = ("DEFAULT", "ADDON")
ITEM_TYPES = ("REVENUE", "DEDUCTION")
MODEL_TYPES = ("USAGE_BASED", "USAGE_BASED_CONVERSION", "RECURRING", "ONE_OFF", "PER_SEAT", "CREDITS")
# the model types a published plan can bill (the others are refused when the item is priced)
BILLABLE_MODEL_TYPES = ("USAGE_BASED", "RECURRING", "PER_SEAT")
MAX_DISPLAY_ORDER = 1_000_000
# fields ratecard has nowhere to put: refused when given (never silently dropped)
UNSUPPORTED = ("customer_id", "custom_fields", "features", "linked_integrations", "billing_entity_id",
               "agent_context", "credits", "report_meter_value_calculation_ids", "meter_value_calculation")


def refuse_unsupported(data: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    for key in keys:
        if data.get(key) not in (None, [], {}):
            raise invalid(key, f"{key} is not supported on a {what} by ratecard")


def _display_order(value: Any, field: str = "display_order") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DISPLAY_ORDER:
        raise invalid(field, f"{field} must be a whole number from 0 to {MAX_DISPLAY_ORDER}")
    return value


def _unit_name(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("unit_name", "unit_name must be an object {singular, plural}")
    return {key: check_text(value.get(key), f"unit_name.{key}") for key in ("singular", "plural")
            if value.get(key) is not None}


def _link(change: ConfigChange, kind: str, value: Any, field: str) -> str | None:
    """The id of the resource an `..._id` field names (by id or reference); 400 when missing."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be a string")
    row = change.resources.find(kind, value)
    if row is None:
        raise invalid(field, f"there is no {LABEL[kind]} {value[:100]!r}")
    return row.id


def calculation_code(view: View, key: Any, field: str) -> str:
    """The catalog meter code a product item's meter value calculation names (by id or reference)."""
    if not isinstance(key, str):
        raise invalid(field, f"{field} must be a string")
    found = view.find_calculation(key)
    if found is None:
        raise invalid(field, f"there is no meter value calculation {key[:100]!r}")
    return found[0].code


def _fields(change: ConfigChange, kind: str, data: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    refuse_unsupported(data, UNSUPPORTED, LABEL[kind])
    body = dict(current or {})
    for key in ("name", "description"):
        if key in data:
            body[key] = check_text(data[key], key)
    if data.get("tax_category") is not None:
        body["tax_category"] = check_choice(data["tax_category"], "tax_category", TAX_CATEGORIES)
    if "display_order" in data:
        body["display_order"] = _display_order(data["display_order"])
    if kind == CATEGORY:
        return body
    if data.get("status") is not None:
        body["status"] = check_choice(data["status"], "status", CONFIG_STATUSES)
    body.setdefault("status", "DRAFT")
    if kind == PRODUCT:
        if "category_id" in data:
            body["category_id"] = _link(change, CATEGORY, data["category_id"], "category_id")
        if "parent_product_id" in data:
            body["parent_product_id"] = _link(change, PRODUCT, data["parent_product_id"], "parent_product_id")
        if data.get("product_type") is not None:
            body["product_type"] = check_choice(data["product_type"], "product_type", PRODUCT_TYPES)
        body.setdefault("product_type", "DEFAULT")
        return body
    if data.get("product_id") is not None:
        body["product_id"] = _link(change, PRODUCT, data["product_id"], "product_id")
    if not body.get("product_id"):
        raise missing("product_id")
    if data.get("type") is not None:
        body["type"] = check_choice(data["type"], "type", ITEM_TYPES)
    body.setdefault("type", "REVENUE")
    if data.get("model_type") is not None:
        body["model_type"] = check_choice(data["model_type"], "model_type", MODEL_TYPES)
    if not body.get("model_type"):
        raise missing("model_type")
    if "unit_name" in data:
        body["unit_name"] = _unit_name(data["unit_name"])
    usage = data.get("usage_based")
    if usage is not None and not isinstance(usage, dict):
        raise invalid("usage_based", "usage_based must be an object")
    for key in ("tiering_meter_value_calculation_id", "report_meter_value_calculation_ids", "conditions",
                "meter_value_calculation", "tiering_meter_value_calculation"):
        if (usage or {}).get(key) not in (None, [], {}):
            raise invalid(f"usage_based.{key}", f"usage_based.{key} is not supported by ratecard")
    calculation = (usage or {}).get("meter_value_calculation_id") or data.get("meter_value_calculation_id")
    where = "usage_based.meter_value_calculation_id" if (usage or {}).get("meter_value_calculation_id") \
        else "meter_value_calculation_id"
    view = View(change.environment, change.resources, change.catalog())
    if calculation is not None:
        body["meter"] = calculation_code(view, calculation, where)
    if body["model_type"] in ("USAGE_BASED", "USAGE_BASED_CONVERSION") and not body.get("meter"):
        raise missing("meter_value_calculation_id",
                      "a USAGE_BASED product item needs meter_value_calculation_id (the meter it prices)")
    if body["model_type"] not in ("USAGE_BASED", "USAGE_BASED_CONVERSION"):
        body.pop("meter", None)
    return body


def create(store: Store, environment: str, now: datetime, kind: str, data: dict[str, Any]) -> tuple[View, Resource]:
    if data.get("reference") is None:
        raise missing("reference")
    reference = check_reference(data["reference"])
    if kind != PRODUCT and data.get("name") is None:
        raise missing("name")
    with config_change(store, environment, to_micros(now)) as change:
        if (kind, reference) in change.resources.by_reference:
            raise already_exists(LABEL[kind], reference)
        body = _fields(change, kind, data, None)
        row = change.put(Resource(change.new_id(PREFIX[kind], kind, reference), kind, reference, body, 0, 0))
        return View(environment, change.resources, change.catalog()), row


def update(store: Store, environment: str, now: datetime, kind: str, key: str,
           data: dict[str, Any]) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(kind, key)
        if row is None:
            raise not_found(LABEL[kind], key)
        reference = row.reference
        if data.get("reference") is not None and data["reference"] != row.reference:
            reference = check_reference(data["reference"])
            if (kind, reference) in change.resources.by_reference:
                raise already_exists(LABEL[kind], reference)
        body = _fields(change, kind, data, row.body)
        row = change.put(Resource(row.id, kind, reference, body, 0, 0))
        return View(environment, change.resources, change.catalog()), row


def change_status(store: Store, environment: str, now: datetime, kind: str, key: str,
                  target: str) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(kind, key)
        if row is None:
            raise not_found(LABEL[kind], key)
        if row.body.get("status") == "ARCHIVED" and target != "ARCHIVED":
            raise invalid_operation(f"{LABEL[kind]} {row.reference!r} is archived")
        row = change.put(Resource(row.id, kind, row.reference, {**row.body, "status": target}, 0, 0))
        return View(environment, change.resources, change.catalog()), row


def _users(change: ConfigChange, row: Resource) -> list[str]:
    found = []
    if row.kind == CATEGORY:
        found += [f"product {p.reference!r}" for p in change.resources.of_kind(PRODUCT)
                  if p.body.get("category_id") == row.id]
    if row.kind == PRODUCT:
        found += [f"product item {i.reference!r}" for i in change.resources.of_kind(ITEM)
                  if i.body.get("product_id") == row.id]
    for pricing in change.resources.of_kind("pricing"):
        body = pricing.body
        named = set(body.get("product_ids") or [])
        for item in body.get("items") or []:
            named.update(item.get("product_item_ids") or [])
        if row.id in named:
            found.append(f"pricing {pricing.id!r}")
    return found


def delete(store: Store, environment: str, now: datetime, kind: str, key: str) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(kind, key)
        if row is None:
            raise not_found(LABEL[kind], key)
        users = _users(change, row)
        if users:
            raise invalid_operation(f"{LABEL[kind]} {row.reference!r} is still used by {', '.join(users[:3])}")
        change.delete(row.id)
        return View(environment, change.resources, change.catalog()), row
