"""Creating a catalog coupon from Solvimon's coupon request: a new catalog version holding it,
validated whole like every catalog write (services/resources/model.save_document).

Mapping: `reference` is the coupon's code (what subscriptions name, and its promotion code);
discount PERCENTAGE -> percent_off, AMOUNT -> amount_off in the amount's currency; duration
ONE_TIME -> once, FOREVER -> forever, PERIOD -> repeating for `period.value` billing periods of
the subscription; `end_at` -> redeem_by; `maximum_redemptions` -> max_redemptions; `description`
and a `name` other than the code -> description (`<name>: <description>`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ...catalog.schema import CatalogDocument, Coupon
from ...domain.instants import to_micros
from ...store import Store
from ...store.resources import config_change
from .checks import already_exists, invalid, missing
from .model import save_document

DURATIONS = {"ONE_TIME": "once", "FOREVER": "forever", "PERIOD": "repeating"}
# what ratecard's coupons have no place for: refused rather than dropped
UNSUPPORTED = {"limited_to": "a coupon applies to the whole invoice of each subscription that carries it",
               "start_at": "a coupon is redeemable from the catalog version that adds it",
               "id": "a coupon's id is cpn_<reference>", "number_of_redemptions": "counted by ratecard"}


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(field, f"{field} must be an object")
    return value


def coupon_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The catalog coupon's fields from the request (not validated yet)."""
    for name, why in UNSUPPORTED.items():
        if data.get(name) is not None:
            raise invalid(name, f"{name}: {why}")
    known = {"object_type", "name", "reference", "description", "status", "discount", "duration", "end_at",
             "maximum_redemptions", "created_at", "updated_at"}
    for name in data:
        if name not in known and name not in UNSUPPORTED:
            raise invalid(name, f"{name} is not a field of a coupon")
    reference = data.get("reference")
    if reference is None:
        raise missing("reference", "reference is required: it is the coupon's code, which subscriptions name")
    if data.get("status") not in (None, "ACTIVE"):
        raise invalid("status", "status: a coupon is ACTIVE once its catalog version is applied")
    fields: dict[str, Any] = {"code": reference}
    # a catalog coupon has a code and a description, no name: a name other than the code is kept
    # in the description, before it ("Spring sale: 25 % off for three months")
    description, name = data.get("description"), data.get("name")
    if name is not None and not isinstance(name, str):
        raise invalid("name", "name must be a string")
    if name in (None, "", reference, description):
        name = None
    if description is not None and name is not None and isinstance(description, str):
        fields["description"] = f"{name}: {description}"
    elif description is not None or name is not None:
        fields["description"] = description if description is not None else name
    discount = _object(data.get("discount"), "discount") if data.get("discount") is not None else None
    if discount is None:
        raise missing("discount", "discount is required (PERCENTAGE with percentage, or AMOUNT with amount)")
    kind = discount.get("type")
    if kind == "PERCENTAGE":
        fields["percent_off"] = discount.get("percentage")
    elif kind == "AMOUNT":
        amount = _object(discount.get("amount"), "discount.amount")
        fields["amount_off"], fields["currency"] = amount.get("quantity"), amount.get("currency")
    else:
        raise invalid("discount.type", "discount.type must be PERCENTAGE or AMOUNT (USAGE discounts are not "
                                       "coupons in ratecard)")
    duration = _object(data.get("duration"), "duration") if data.get("duration") is not None else {"type": "ONE_TIME"}
    if duration.get("type") not in DURATIONS:
        raise invalid("duration.type", "duration.type must be ONE_TIME, FOREVER or PERIOD")
    fields["duration"] = DURATIONS[duration["type"]]
    if fields["duration"] == "repeating":
        period = _object(duration.get("period"), "duration.period")
        fields["periods"] = period.get("value")
    if data.get("end_at") is not None:
        fields["redeem_by"] = data["end_at"]
    if data.get("maximum_redemptions") is not None:
        fields["max_redemptions"] = data["maximum_redemptions"]
    return fields


# the request's names for the catalog fields, so a refusal names what the caller sent
WIRE_NAMES = {"code": "reference", "percent_off": "discount.percentage", "amount_off": "discount.amount.quantity",
              "currency": "discount.amount.currency", "periods": "duration.period.value", "redeem_by": "end_at",
              "max_redemptions": "maximum_redemptions", "description": "description"}


def _coupon(fields: dict[str, Any]) -> Coupon:
    try:
        return Coupon.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = WIRE_NAMES.get(str(first["loc"][0]) if first["loc"] else "", None)
        message = str(first["msg"]).removeprefix("Value error, ")
        raise invalid(where, f"{where or 'coupon'}: {message}") from None


def create_coupon(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> Coupon:
    """Add the coupon to the catalog as a new version (409 when its code exists)."""
    coupon = _coupon(coupon_fields(data))
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog() or CatalogDocument()
        if any(existing.code == coupon.code for existing in document.coupons):
            raise already_exists("coupon", coupon.code)
        save_document(change, document.model_copy(update={"coupons": [*document.coupons, coupon]}),
                      f"creating coupon {coupon.code!r}")
    return coupon
