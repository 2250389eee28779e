"""Usage limits (Solvimon's UsageLimitsApi): a cap on one customer's usage of one meter over its
subscriptions' current billing period, with a status that says whether the cap is reached.

In ratecard a usage limit is a customer-level override of the usage-limited features: the NUMBER
features of the catalog whose `meter` is the limit's meter (the catalog's own "usage limits",
granted per plan). While ACTIVE, it replaces the number those features grant to the customer
(services.entitlement_overrides), so `GET /v1/customers/{ref}/entitlements` shows it with
`override: true`; DRAFT, ARCHIVED and DEPRECATED limits are kept and apply nothing. Its status is
measured as the entitlements are: the meter's usage in the current period, from the process's
entitlements cache, which the ingest path keeps fresh (services.entitlements).

Rules (each refusal names the field): the meter must be one a NUMBER feature of the catalog is
limited on (otherwise no entitlement would show the limit); the scope is SELF (ratecard customers
have no children); the limit is a `number` (ratecard's features grant no amounts or credits); one
ACTIVE limit per customer and meter.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from ..catalog import Catalog
from ..catalog.features import NUMBER
from ..catalog.schema import CatalogDocument
from ..domain.instants import to_micros
from ..domain.money import MoneyError, to_decimal
from ..domain.numbers import number_problem
from ..store import Store
from ..store.resources import Resource, config_change, rows_of_kinds
from .entitlement_overrides import USAGE_LIMIT, forget
from .entitlements import ENTITLEMENTS
from .errors import Conflict, InvalidInput, MissingInput, NotFound
from .resources.checks import choice_or_default

PREFIX = "ul_"
# a percentage of any usage over any limit the API accepts (down to 1e-19), to two decimals
_PERCENT = Context(prec=200)
STATUSES = ("DRAFT", "ACTIVE", "ARCHIVED", "DEPRECATED")
FIELDS = ("object_type", "id", "status", "customer_id", "meter_value_calculation_id", "scope", "limit", "created_at",
          "updated_at")


@dataclass(frozen=True)
class LimitStatus:
    limit: Resource
    consumed: Decimal
    measured: bool  # some active subscription's invoices measure the meter (else consumed is 0)
    period_start: datetime | None
    period_end: datetime | None

    @property
    def number(self) -> Decimal:
        return Decimal(self.limit.body["limit"])

    @property
    def reached(self) -> bool:
        return self.consumed >= self.number

    @property
    def percentage(self) -> Decimal:
        """consumed / limit in percent, two decimals (a limit of 0 is 100 % reached)."""
        if self.number == 0:
            return Decimal(100)
        # exact: a tiny limit (1e-19) and a large usage overflow the 28 default digits
        return _PERCENT.divide(_PERCENT.multiply(self.consumed, 100), self.number).quantize(
            Decimal("0.01"), ROUND_HALF_UP, context=_PERCENT)


def _limited_meters(document: CatalogDocument | None) -> set[str]:
    return {f.meter for f in (document.features if document is not None else []) if f.type == NUMBER and f.meter}


def check_number(value: Any, field: str = "limit.number") -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidInput(f"{field} must be a number written as a string, such as \"10000\"", field=field)
    try:
        number = to_decimal(value, bound=number_problem)
    except MoneyError as exc:
        raise InvalidInput(f"{field}: {exc}", field=field) from None
    if number < 0:
        raise InvalidInput(f"{field} must be a number of 0 or more", field=field)
    if not number:
        number = number.copy_abs()  # -0 is the limit 0, written without its sign
    return format(number.normalize() if number == number.to_integral() else number, "f")


def _limit(data: dict[str, Any]) -> str:
    value = data.get("limit")
    if not isinstance(value, dict):
        raise InvalidInput("limit must be an object with number", field="limit")
    for other in ("amount", "credits"):
        if value.get(other) is not None:
            raise InvalidInput(f"limit.{other}: ratecard's usage limits cap a meter's usage (a number); its features "
                               "grant no amounts or credits", field=f"limit.{other}")
    if value.get("number") is None:
        raise MissingInput("limit.number is required", field="limit.number")
    return check_number(value["number"])


def _scope(value: Any) -> str:
    if value not in (None, "SELF"):
        raise InvalidInput("scope must be SELF: ratecard customers have no child customers", field="scope")
    return "SELF"



def _unknown_fields(data: dict[str, Any]) -> None:
    for name in data:
        if name not in FIELDS:
            raise InvalidInput(f"{str(name)[:60]} is not a field of a usage limit", field=str(name)[:60])


def _no_other_active(rows: list[Resource], customer: str, meter: str, but: str | None = None) -> None:
    for row in rows:
        if row.id != but and row.body.get("status") == "ACTIVE" and row.body.get("customer") == customer \
                and row.body.get("meter") == meter:
            raise Conflict(f"customer {customer!r} has an ACTIVE usage limit on {meter!r} already ({row.id}): change "
                           "it, or archive it first", field="meter_value_calculation_id")


def create(store: Store, environment: str, now: datetime, document: CatalogDocument | None, customer: str,
           meter: str, data: dict[str, Any]) -> Resource:
    """`customer` and `meter` are the references the request's ids name (checked here)."""
    _unknown_fields(data)
    if document is None or not any(c.reference == customer for c in document.customers):
        raise InvalidInput(f"customer_id: no customer {customer[:60]!r}", field="customer_id")
    if meter not in _limited_meters(document):
        raise InvalidInput(f"meter_value_calculation_id: no NUMBER feature is limited on {meter[:60]!r}; a usage "
                           "limit overrides such a feature (create one with meter_value_calculation_id first)",
                           field="meter_value_calculation_id")
    body = {"customer": customer, "meter": meter, "limit": _limit(data), "scope": _scope(data.get("scope")),
            "status": choice_or_default(data.get("status"), "status", STATUSES, "ACTIVE")}
    with config_change(store, environment, to_micros(now)) as change:
        if body["status"] == "ACTIVE":
            _no_other_active(change.resources.of_kind(USAGE_LIMIT), customer, meter)
        row_id = f"{PREFIX}{secrets.token_hex(10)}"
        row = change.put(Resource(row_id, USAGE_LIMIT, row_id, body, 0, 0))
    forget(environment, customer)
    return row


def listed(store: Store, environment: str, customer: str | None = None) -> list[Resource]:
    return [row for row in rows_of_kinds(store, environment, (USAGE_LIMIT,))
            if customer is None or row.body.get("customer") == customer]


def _existing(row: Resource | None, key: str) -> Resource:
    """The usage limit found by `key` (NotFound when none is, or the row is of another kind)."""
    if row is None or row.kind != USAGE_LIMIT:
        raise NotFound(f"usage limit {key[:80]!r} does not exist")
    return row


def find(store: Store, environment: str, key: str) -> Resource:
    return _existing(next((row for row in listed(store, environment) if row.id == key), None), key)


def update(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any],
           customer: str | None = None, meter: str | None = None) -> Resource:
    """Change the limit, scope or status; `customer`/`meter` (the references the request named, if
    any) must be the limit's own: a limit on something else is another limit."""
    _unknown_fields(data)
    with config_change(store, environment, to_micros(now)) as change:
        row = _existing(change.resources.by_id.get(key), key)
        body = dict(row.body)
        if customer is not None and customer != body["customer"]:
            raise InvalidInput("customer_id cannot change: create a usage limit for the other customer",
                               field="customer_id")
        if meter is not None and meter != body["meter"]:
            raise InvalidInput("meter_value_calculation_id cannot change: create a usage limit on the other meter",
                               field="meter_value_calculation_id")
        if data.get("limit") is not None:
            body["limit"] = _limit(data)
        if "scope" in data:
            body["scope"] = _scope(data["scope"])
        body["status"] = choice_or_default(data.get("status"), "status", STATUSES, body["status"])
        if body["status"] == "ACTIVE":
            _no_other_active(change.resources.of_kind(USAGE_LIMIT), body["customer"], body["meter"], but=row.id)
        row = change.put(Resource(row.id, USAGE_LIMIT, row.reference, body, 0, 0))
    forget(environment, body["customer"])
    return row


def delete(store: Store, environment: str, now: datetime, key: str) -> Resource:
    with config_change(store, environment, to_micros(now)) as change:
        row = _existing(change.resources.by_id.get(key), key)
        change.delete(row.id)
    forget(environment, row.body["customer"])
    return row


def statuses(store: Store, environment: str, catalog: Catalog, catalog_version: int, customer: str,
             now: datetime) -> list[LimitStatus]:
    """Each ACTIVE limit of the customer with the meter's usage in the current period, summed over
    the customer's active subscriptions whose invoices measure the meter (the entitlements'
    measure, from their cache)."""
    active = [row for row in listed(store, environment, customer) if row.body.get("status") == "ACTIVE"]
    if not active:
        return []
    answer = ENTITLEMENTS.get(store, environment, catalog, catalog_version, customer, now)
    out = []
    for row in active:
        consumed, measured = Decimal(0), False
        start = end = None
        for subscription in answer.subscriptions:
            item = next((g for g in subscription.granted if g.feature.meter == row.body["meter"]
                         and g.usage is not None), None)
            if item is not None:
                consumed += item.usage or Decimal(0)
                measured = True
            start = start or subscription.period_start
            end = end or subscription.period_end
        out.append(LimitStatus(row, consumed, measured, start, end))
    return out
