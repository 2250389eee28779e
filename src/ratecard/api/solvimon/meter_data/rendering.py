"""A stored event (or DUPLICATE record) in Solvimon's METER_DATA shape."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from ....services.meter_data import CURRENCY_SUFFIX
from ....services.resources.model import METER, PROPERTY, VALUE, View
from ....store.meter_data import MeterDataRow
from ..common import (
    decimal_text,
    wire_instant,
)
from ..customers import render as render_customer

VARIANTS = {"unknown_customer": "UNKNOWN_CUSTOMER", "unknown_meter": "UNKNOWN_METER",
            "no_subscription": "NO_SUBSCRIPTION", "invalid_value": "INVALID_VALUE"}
_decode = msgspec.json.Decoder(float_hook=Decimal).decode  # stored properties: numbers exact


def split_properties(text: str) -> tuple[list[tuple[str, Any, str | None]], list[tuple[str, str]]]:
    """Stored properties -> (meter values: the numbers, with the currency of an AMOUNT value;
    meter properties: everything else)."""
    try:
        data = _decode(text)
    except msgspec.DecodeError:
        return [], []
    if not isinstance(data, dict):
        return [], []
    values: list[tuple[str, Any, str | None]] = []
    properties = []
    for key, value in data.items():
        if key.endswith(CURRENCY_SUFFIX) and isinstance(data.get(key[:-len(CURRENCY_SUFFIX)]), (int, Decimal)) \
                and isinstance(value, str):
            continue  # the currency of the AMOUNT value before the suffix
        if isinstance(value, bool):
            properties.append((key, "true" if value else "false"))
        elif isinstance(value, (int, Decimal)):
            currency = data.get(key + CURRENCY_SUFFIX)
            values.append((key, value, currency if isinstance(currency, str) else None))
        elif isinstance(value, str):
            properties.append((key, value))
        elif value is not None:
            properties.append((key, msgspec.json.encode(value).decode()))
    return values, properties


def render(view: View, row: MeterDataRow, expand: list[str] | None = None) -> dict[str, Any]:
    values, properties = split_properties(row.properties)
    if row.source == "duplicate":
        processed: dict[str, Any] = {"type": "DUPLICATE", "duplicate_of_meter_data_id": row.id,
                                     "duplicate": {"of_meter_data_id": row.id}}
    elif row.status in VARIANTS:
        processed = {"type": "NOT_MATCHED", "not_matched": {"variant": VARIANTS[row.status]}}
    else:
        processed = {"type": "DEFAULT"}
    customer = view.find_customer(row.customer)
    meter_row = view.resources.by_reference.get((METER, row.meter))
    out: dict[str, Any] = {
        "object_type": "METER_DATA",
        "id": row.resource_id,
        "reference": row.id,
        "type": "INGEST",
        "customer_id": view.customer_id(row.customer) if customer is not None else None,
        "customer_reference": row.customer,
        "meter_id": meter_row.id if meter_row is not None else None,
        "meter_reference": row.meter,
        # a subscription's id is its reference here, as on invoices
        "pricing_plan_subscription_id": row.subscription,
        "pricing_plan_subscription_reference": row.subscription,
        "timestamp": wire_instant(row.ts),
        "created_at": wire_instant(row.received_at),
        "meter_values": [_value(view, key, number, currency) for key, number, currency in values],
        "meter_properties": [_property(view, key, text) for key, text in properties],
        "processed_details": processed,
        "deleted": row.deleted_at is not None,
        "late": bool(row.late),
    }
    if customer is not None and expand and "customer_id" in expand:
        out["customer"] = render_customer(view, *customer)
    return {key: value for key, value in out.items() if value is not None}


def _value(view: View, reference: str, number: Any, currency: str | None) -> dict[str, Any]:
    """A NUMBER value as `number`; an AMOUNT value (sent with a currency) as `amount`."""
    row = view.resources.by_reference.get((VALUE, reference))
    item: dict[str, Any] = {"reference": reference}
    if currency is None:
        item["number"] = decimal_text(number)
    else:
        item["amount"] = {"quantity": decimal_text(number), "currency": currency}
    if row is not None:
        item["id"] = row.id
    return item


def _property(view: View, reference: str, text: str) -> dict[str, Any]:
    row = view.resources.by_reference.get((PROPERTY, reference))
    item: dict[str, Any] = {"reference": reference, "value": text}
    if row is not None:
        item["id"] = row.id
    return item
