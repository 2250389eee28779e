"""Per-customer entitlement overrides: a customer-level value of a feature that replaces what the
plans of the customer's active subscriptions grant (Solvimon's `override`), read by the
entitlements computation (services.entitlements) and so by `GET /v1/customers/{ref}/entitlements`.

Two sources, both api_resources rows (configuration, not catalog: the catalog says what plans
grant, an override is a deal made with one customer):
  - an explicit override of one feature (`ratecard entitlements override`), any type;
  - an ACTIVE usage limit (services.usage_limits, Solvimon's UsageLimitsApi) on a meter: it
    overrides the number of every NUMBER feature limited on that meter.
An explicit override wins over a usage limit on the same feature (it names the feature itself).

A change drops the customer's cached entitlements in this process (the next read computes them);
other processes see it when their entry is refreshed (at most the entitlements TTL later). The
rows themselves are read once per half TTL per process (OverrideRows), not at every computation:
a database round trip would cost more than the rest of an entitlements refresh's overhead.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..catalog.features import NUMBER, value_problem
from ..catalog.schema import CatalogDocument, Feature
from ..domain.instants import to_micros
from ..domain.money import to_decimal
from ..store import Store
from ..store.resources import Resource, config_change, rows_of_kinds
from .errors import InvalidInput, NotFound

OVERRIDE, USAGE_LIMIT = "entitlement_override", "usage_limit"
OVERRIDE_PREFIX = "eov_"


class OverrideRows:
    """Per process: each environment's override and usage-limit rows, read again when older than
    half the entitlements TTL or when this process changed them (`drop`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[int, str], tuple[Store, float, dict[str, list[Resource]]]] = {}
        self._drops = 0  # rows read across a drop are used once, not kept (they may predate the change)

    def of_customer(self, store: Store, environment: str, customer: str) -> list[Resource]:
        key = (id(store), environment)
        with self._lock:
            cached = self._rows.get(key)
        if cached is None or cached[0] is not store or cached[1] <= time.monotonic():
            from .entitlements import ttl_setting

            with self._lock:
                drops = self._drops
            by_customer: dict[str, list[Resource]] = {}
            for row in rows_of_kinds(store, environment, (OVERRIDE, USAGE_LIMIT)):
                by_customer.setdefault(str(row.body.get("customer")), []).append(row)
            cached = (store, time.monotonic() + ttl_setting() / 2, by_customer)
            with self._lock:
                if drops == self._drops:
                    self._rows[key] = cached
        return cached[2].get(customer, [])

    def drop(self, environment: str) -> None:
        with self._lock:
            self._drops += 1
            for key in [key for key in self._rows if key[1] == environment]:
                del self._rows[key]


ROWS = OverrideRows()


def customer_overrides(store: Store, environment: str, document: CatalogDocument,
                       customer: str) -> dict[str, Any]:
    """feature code -> the value the customer gets instead of its plans' (from OverrideRows)."""
    rows = ROWS.of_customer(store, environment, customer)
    if not rows:
        return {}
    features = {feature.code: feature for feature in document.features}
    out: dict[str, Any] = {}
    for row in rows:  # usage limits first: an explicit override of the same feature replaces them
        if row.kind == USAGE_LIMIT and row.body.get("status") == "ACTIVE":
            for feature in features.values():
                if feature.type == NUMBER and feature.meter is not None and feature.meter == row.body.get("meter"):
                    out[feature.code] = Decimal(row.body["limit"])
    for row in rows:
        if row.kind == OVERRIDE and row.body.get("feature") in features:
            out[row.body["feature"]] = _typed(features[row.body["feature"]], row.body["value"])
    return out


def _typed(feature: Feature, value: Any) -> Any:
    if feature.type == NUMBER:
        return Decimal(str(value))
    return value


def forget(environment: str, customer: str) -> None:
    """The customer's cached entitlements are recomputed at their next read in this process."""
    from .entitlements import ENTITLEMENTS

    ROWS.drop(environment)
    ENTITLEMENTS.forget(environment, [customer])


def parse_value(feature: Feature, text: str) -> Any:
    """A value typed on the command line: a number, true/false, or enum values separated by commas."""
    if feature.type == "switch":
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "on", "off", "yes", "no"):
            raise InvalidInput(f"{feature.code} is a switch: give true or false, got {text[:40]!r}", field="value")
        return lowered in ("true", "on", "yes")
    if feature.type == "enum":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text  # a number is read by value_problem, in the one syntax of numbers (no spaces around)


def set_override(store: Store, environment: str, document: CatalogDocument | None, customer: str, feature_code: str,
                 value: Any, now: datetime) -> Resource:
    """Give `customer` this value of the feature instead of its plans' (replaces an earlier override)."""
    feature = _feature(document, feature_code)
    if document is None or not any(c.reference == customer for c in document.customers):
        raise NotFound(f"customer {customer!r} does not exist")
    problem = value_problem(feature, value)
    if problem is not None:
        raise InvalidInput(f"{feature_code}: {problem}", field="value")
    stored = str(to_decimal(value)) if feature.type == NUMBER else value  # value_problem took it
    with config_change(store, environment, to_micros(now)) as change:
        reference = f"{customer}\x1f{feature_code}"
        existing = change.resources.by_reference.get((OVERRIDE, reference))
        row_id = existing.id if existing is not None else f"{OVERRIDE_PREFIX}{secrets.token_hex(10)}"
        row = change.put(Resource(row_id, OVERRIDE, reference,
                                  {"customer": customer, "feature": feature_code, "value": stored}, 0, 0))
    forget(environment, customer)
    return row


def clear_override(store: Store, environment: str, customer: str, feature_code: str, now: datetime) -> bool:
    """Remove the customer's override of the feature; False when there was none."""
    with config_change(store, environment, to_micros(now)) as change:
        existing = change.resources.by_reference.get((OVERRIDE, f"{customer}\x1f{feature_code}"))
        if existing is not None:
            change.delete(existing.id)
    forget(environment, customer)
    return existing is not None


def list_overrides(store: Store, environment: str, customer: str | None = None) -> list[dict[str, Any]]:
    return [row.body for row in rows_of_kinds(store, environment, (OVERRIDE,))
            if customer is None or row.body.get("customer") == customer]


def _feature(document: CatalogDocument | None, code: str) -> Feature:
    found = next((f for f in (document.features if document is not None else []) if f.code == code), None)
    if found is None:
        raise NotFound(f"feature {code!r} does not exist")
    return found
