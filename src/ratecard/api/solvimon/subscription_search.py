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

MAX_FIELDS = 20
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


def _matches(value: str | None, wanted: str, field: dict[str, Any]) -> bool:
    if value is None:
        return False
    if field.get("ignore_case"):
        value, wanted = value.lower(), wanted.lower()
    start, end = bool(field.get("wildcard_start")), bool(field.get("wildcard_end"))
    if start and end:
        return wanted in value
    if start:
        return value.endswith(wanted)
    if end:
        return value.startswith(wanted)
    return value == wanted


def _list(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = body.get(name) or []
    if not isinstance(items, list) or len(items) > MAX_FIELDS or not all(isinstance(i, dict) for i in items):
        raise invalid(name, f"{name} must be a list of at most {MAX_FIELDS} objects")
    return items


def _text(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise invalid(where, f"{where} must be a string of 1 to {MAX_TEXT} characters")
    return value


def _custom_field(item: Any, reference: str, wanted: set[str]) -> bool:
    fields = item.row.body.get("custom_fields") if item.row is not None else None
    for field in fields or []:
        if field.get("reference") == reference and (
                field.get("value") in wanted or any(v in wanted for v in field.get("values") or [])):
            return True
    return False


def search(snap: Snapshot, body: dict[str, Any], items: list[Any], now: datetime) -> list[Any]:
    for name in body:
        if name not in ("search_fields", "filter_fields") and body[name] is not None:
            raise invalid(name[:80], f"{name[:80]}: ratecard searches subscriptions by search_fields and "
                                     "filter_fields")
    texts, filters = _texts(snap, now), _filters(snap, now)
    for index, field in enumerate(_list(body, "search_fields")):
        name = _text(field, "name", f"search_fields.{index}.name")
        if name not in texts:
            raise invalid(f"search_fields.{index}.name", f"search_fields.{index}.name must be one of "
                                                         f"{', '.join(texts)}")
        wanted = _text(field, "value", f"search_fields.{index}.value")
        items = [item for item in items if _matches(texts[name](item), wanted, field)]
    for index, field in enumerate(_list(body, "filter_fields")):
        name = _text(field, "name", f"filter_fields.{index}.name")
        if name not in (*filters, "custom_field"):
            raise invalid(f"filter_fields.{index}.name", f"filter_fields.{index}.name must be one of "
                                                         f"{', '.join((*filters, 'custom_field'))}")
        values = field.get("values") if field.get("values") is not None else [field.get("value")]
        if not isinstance(values, list) or not values or len(values) > MAX_VALUES or \
                not all(isinstance(v, str) and 0 < len(v) <= MAX_TEXT for v in values):
            raise invalid(f"filter_fields.{index}.value", f"filter_fields.{index}: value or values must be 1 to "
                                                          f"{MAX_VALUES} strings")
        wanted = set(values)
        if name == "custom_field":
            reference = _text(field, "reference", f"filter_fields.{index}.reference")
            items = [item for item in items if _custom_field(item, reference, wanted)]
        elif name == "pricing_plan_subscription_group_id":
            groups = {snap.view.resources.find(GROUP, v) for v in wanted}
            ids = {g.id for g in groups if g is not None}
            items = [item for item in items if filters[name](item) in ids]
        else:
            items = [item for item in items if filters[name](item) in wanted]
    return items
