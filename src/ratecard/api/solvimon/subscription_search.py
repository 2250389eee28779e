"""POST /v1/pricing-plan-subscriptions/search: Solvimon's SearchCreateRequest over the
subscriptions. `search_fields` match text (exactly, or with `wildcard_start` / `wildcard_end` /
`ignore_case`), `filter_fields` match one of `value` / `values`; every field given must match
(AND). A field name ratecard does not know is a 400 naming it, never ignored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...services.resources.subscriptions import GROUP
from ..errors import invalid
from .config import Snapshot
from .search import Field
from .search import search as shared_search

MAX_VALUES = 100
MAX_TEXT = 256


def _texts(snap: Snapshot, now: datetime) -> dict[str, Callable[[Any], str | None]]:
    view = snap.view

    def body(item: Any, name: str) -> str | None:
        value = item.row.body.get(name) if item.row is not None else None
        return value if isinstance(value, str) else None

    return {
        "id": lambda item: item.reference,
        "reference": lambda item: item.reference,
        "name": lambda item: body(item, "name"),
        "description": lambda item: body(item, "description"),
        "purchase_order_number": lambda item: body(item, "purchase_order_number"),
        "customer_reference": lambda item: item.customer,
        "customer_id": lambda item: view.customer_id(item.customer),
    }


def _filters(snap: Snapshot, now: datetime) -> dict[str, Callable[[Any], str | None]]:
    from .subscriptions import _plan_now

    view = snap.view

    def group(item: Any) -> str | None:
        key = item.row.body.get("group_id") if item.row is not None else None
        return key if isinstance(key, str) else None

    return {
        **_texts(snap, now),
        "status": lambda item: item.status,
        "pricing_plan_id": lambda item: _plan_now(item.spec, now) if item.spec is not None else None,
        "pricing_plan_subscription_group_id": group,
        "payment_method_id": lambda item: item.row.body.get("payment_method_id") if item.row is not None else None,
        "customer_id": lambda item: view.customer_id(item.customer),
    }


def _text(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise invalid(where, f"{where} must be a string of 1 to {MAX_TEXT} characters")
    return value


def _values(field: dict[str, Any], where: str) -> set[str]:
    values = field.get("values") if field.get("values") is not None else [field.get("value")]
    if not isinstance(values, list) or not values or len(values) > MAX_VALUES or \
            not all(isinstance(v, str) and 0 < len(v) <= MAX_TEXT for v in values):
        raise invalid(f"{where}.value", f"{where}: value or values must be 1 to {MAX_VALUES} strings")
    return set(values)


def _custom_field(item: Any, reference: str, wanted: set[str]) -> bool:
    fields = item.row.body.get("custom_fields") if item.row is not None else None
    for field in fields or []:
        if field.get("reference") == reference and (
                field.get("value") in wanted or any(v in wanted for v in field.get("values") or [])):
            return True
    return False


def search(snap: Snapshot, body: dict[str, Any], items: list[Any], now: datetime) -> list[Any]:
    """The subscriptions matching the body: the shared search (search.py) for the plain fields,
    then the two filters it cannot express: a custom field (by its reference) and a group (by id
    or reference)."""
    for name in body:
        if name not in ("search_fields", "filter_fields") and body[name] is not None:
            raise invalid(name[:80], f"{name[:80]}: ratecard searches subscriptions by search_fields and "
                                     "filter_fields")
    texts = {name: Field(read) for name, read in _texts(snap, now).items()}
    filters = {name: Field(read) for name, read in _filters(snap, now).items()}
    filters["custom_field"] = Field(lambda item: None)  # named here, applied below
    special = ("custom_field", "pricing_plan_subscription_group_id")
    given = body.get("filter_fields") or []
    plain = [f for f in given if not (isinstance(f, dict) and f.get("name") in special)] \
        if isinstance(given, list) else given
    items = shared_search(items, {"search_fields": body.get("search_fields"), "filter_fields": plain}, texts, filters)
    for index, field in enumerate(given):
        where = f"filter_fields.{index}"
        if field.get("name") == "custom_field":
            reference = _text(field, "reference", f"{where}.reference")
            wanted = _values(field, where)
            items = [item for item in items if _custom_field(item, reference, wanted)]
        elif field.get("name") == "pricing_plan_subscription_group_id":
            groups = {snap.view.resources.find(GROUP, v) for v in _values(field, where)}
            ids = {g.id for g in groups if g is not None}
            read = filters["pricing_plan_subscription_group_id"].read
            items = [item for item in items if read(item) in ids]
    return items
