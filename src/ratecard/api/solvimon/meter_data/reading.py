"""Reading one Solvimon event from a request body: its shape, references and numbers
checked, ids resolved to references; nothing is stored or looked up beyond the view."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ....domain.money import is_currency
from ....services.meter_data import Prepared, PropertyIn, ValueIn
from ....services.resources.checks import check_choice, check_reference
from ....services.resources.model import PROPERTY, VALUE, View
from ...errors import invalid, missing
from ..common import aware, decimal_text, parse_decimal

MIN_REFERENCE, MAX_REFERENCE = 10, 256


def string_field(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise invalid(where, f"{where} must be a string")
    return value


def _settings(raw: Any, where: str, types: tuple[str, ...]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid(where, f"{where} must be an object")
    settings: dict[str, Any] = {}
    if raw.get("type") is not None:
        settings["type"] = check_choice(raw["type"], f"{where}.type", types)
    if raw.get("required") is not None:
        if not isinstance(raw["required"], bool):
            raise invalid(f"{where}.required", "required must be true or false")
        settings["required"] = raw["required"]
    return settings


def _reference_of(item: dict[str, Any], kind: str, where: str, view: View) -> str:
    if item.get("reference") is not None:
        return check_reference(item["reference"], f"{where}.reference")
    if item.get("id") is not None:
        row = view.find(kind, string_field(item["id"], f"{where}.id"))
        if row is None:
            raise invalid(f"{where}.id", f"there is no {kind.replace('_', ' ')} with id {item['id']!r}")
        return row.reference
    raise missing(f"{where}.reference", f"{where} needs a reference (or an id)")


def prepare(data: Any, prefix: str, view: View, moment: datetime) -> Prepared:
    """Check one event's shape, references and numbers; resolve ids to references."""
    where = prefix.rstrip(".") or None
    if not isinstance(data, dict):
        raise invalid(where, f"{where or 'the body'} must be a meter data object")
    if data.get("reference") is None:
        raise missing(f"{prefix}reference", f"{prefix}reference is required: it identifies the event, once")
    reference = check_reference(data["reference"], f"{prefix}reference", MAX_REFERENCE, MIN_REFERENCE)
    customer = _customer(data, prefix, view)
    meter, meter_field = _meter(data, prefix, view)
    event = Prepared(prefix, reference, customer, meter, meter_field, _timestamp(data, prefix, moment),
                     subscription=_subscription(data, prefix))
    seen: set[str] = set()  # a value and a property may not share a reference either
    event.values.extend(_values(data.get("meter_values"), prefix, view, seen))
    event.properties.extend(_properties(data.get("meter_properties"), prefix, view, seen))
    return event


def _subscription(data: dict[str, Any], prefix: str) -> str | None:
    """The subscription the event names, by reference; a subscription's id is its reference here
    (invoices give it as pricing_plan_subscription_id). Both given must agree."""
    named = {}
    for name in ("pricing_plan_subscription_reference", "pricing_plan_subscription_id"):
        if data.get(name) is not None:
            value = string_field(data[name], f"{prefix}{name}")
            if not 0 < len(value) <= MAX_REFERENCE or not value.strip() or "\x00" in value:
                raise invalid(f"{prefix}{name}", f"{name} must be 1 to {MAX_REFERENCE} characters, not blank, "
                                                 "without NUL")
            named[name] = value
    if len(set(named.values())) > 1:
        raise invalid(f"{prefix}pricing_plan_subscription_id", "pricing_plan_subscription_id and "
                      "pricing_plan_subscription_reference name different subscriptions")
    return next(iter(named.values()), None)


def _customer(data: dict[str, Any], prefix: str, view: View) -> str:
    named = None
    if data.get("customer_reference") is not None:
        named = check_reference(data["customer_reference"], f"{prefix}customer_reference")
    elif data.get("customer_id") is not None:
        named = view.customer_reference(check_reference(data["customer_id"], f"{prefix}customer_id"))
    inline = _inline_customer(data.get("customer"), f"{prefix}customer", view)
    if named is not None and inline is not None and inline != named:
        raise invalid(f"{prefix}customer", f"customer names {inline!r}, customer_reference {named!r}")
    if named is None and inline is None:
        raise missing(f"{prefix}customer_reference", "customer_reference (or customer_id) is required")
    return named if named is not None else str(inline)


def _inline_customer(raw: Any, where: str, view: View) -> str | None:
    """The inline `customer` object names the event's customer (by reference or id); it must
    exist: ratecard does not create customers from events (POST /v1/customers does)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid(where, f"{where} must be an object")
    if raw.get("reference") is not None:
        reference = check_reference(raw["reference"], f"{where}.reference")
    elif raw.get("id") is not None:
        reference = view.customer_reference(check_reference(raw["id"], f"{where}.id"))
    else:
        raise missing(f"{where}.reference", f"{where} needs a reference (or an id)")
    if view.find_customer(reference) is None:
        raise invalid(where, f"customer {reference!r} does not exist: ratecard does not create customers from "
                             "events; create it with POST /v1/customers first")
    return reference


def _meter(data: dict[str, Any], prefix: str, view: View) -> tuple[str, str]:
    """(the meter's reference, the field that named it)."""
    if data.get("meter_reference") is not None:
        return check_reference(data["meter_reference"], f"{prefix}meter_reference"), "meter_reference"
    if data.get("meter_id") is not None:
        return view.meter_reference(check_reference(data["meter_id"], f"{prefix}meter_id")), "meter_id"
    raise missing(f"{prefix}meter_reference", "meter_reference (or meter_id) is required")


def _timestamp(data: dict[str, Any], prefix: str, moment: datetime) -> datetime:
    """The event's timestamp; none given means "now", as Solvimon does."""
    if data.get("timestamp") is None:
        return moment
    text = string_field(data["timestamp"], f"{prefix}timestamp").strip()
    try:
        return aware(datetime.fromisoformat(text.replace("z", "Z")))
    except ValueError:
        raise invalid(f"{prefix}timestamp", f"timestamp {text[:60]!r} is not an ISO 8601 date-time") from None


def _items(raw: Any, name: str, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """(its path, the item) for each object of the list `name`; a non-list or non-object is refused."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid(f"{prefix}{name}", f"{name} must be a list")
    items = []
    for index, item in enumerate(raw):
        at = f"{prefix}{name}.{index}"
        if not isinstance(item, dict):
            raise invalid(at, f"{at} must be an object")
        items.append((at, item))
    return items


def _unique(ref: str, at: str, seen: set[str]) -> str:
    if ref in seen:
        raise invalid(f"{at}.reference", f"{ref!r} appears twice in the event")
    seen.add(ref)
    return ref


def _values(raw: Any, prefix: str, view: View, seen: set[str]) -> list[ValueIn]:
    values = []
    for at, item in _items(raw, "meter_values", prefix):
        ref = _reference_of(item, VALUE, at, view)
        currency = None
        if item.get("number") is not None:
            number, is_amount = parse_decimal(item["number"], f"{at}.number"), False
        elif item.get("amount") is not None:
            if not isinstance(item["amount"], dict) or item["amount"].get("quantity") is None:
                raise missing(f"{at}.amount.quantity", "an amount needs a quantity")
            number, is_amount = parse_decimal(item["amount"]["quantity"], f"{at}.amount.quantity"), True
            currency = _currency(item["amount"].get("currency"), f"{at}.amount.currency")
        else:
            raise missing(f"{at}.number", f"{at} needs a number (or an amount)")
        if item.get("count") is not None:
            parse_decimal(item["count"], f"{at}.count")
        values.append(ValueIn(_unique(ref, at, seen), number, is_amount,
                              _settings(item.get("dynamic_validation_settings"), f"{at}.dynamic_validation_settings",
                                        ("NUMBER", "AMOUNT")), currency))
    return values


def _currency(value: Any, where: str) -> str:
    """An amount's currency: required, an ISO 4217 code (any case; kept upper case)."""
    if value is None:
        raise missing(where, "an amount needs a currency (an ISO 4217 code such as USD)")
    if not isinstance(value, str) or not is_currency(value.upper()):
        raise invalid(where, f"{str(value)[:40]!r} is not an ISO 4217 currency code (such as USD)")
    return value.upper()


def _properties(raw: Any, prefix: str, view: View, seen: set[str]) -> list[PropertyIn]:
    properties = []
    for at, item in _items(raw, "meter_properties", prefix):
        ref = _reference_of(item, PROPERTY, at, view)
        value = item.get("value")
        if value is None:
            raise missing(f"{at}.value", f"{at} needs a value")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, Decimal)):
            value = decimal_text(value)
        elif not isinstance(value, str):
            raise invalid(f"{at}.value", "a property value must be a string")
        properties.append(PropertyIn(_unique(ref, at, seen), value,
                                     _settings(item.get("dynamic_validation_settings"),
                                               f"{at}.dynamic_validation_settings", ("NUMBER", "ENUM", "STRING"))))
    return properties
