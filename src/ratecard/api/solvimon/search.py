"""Solvimon's `POST /v1/<resource>/search` (a `Search` body: search_fields, filter_fields), one
implementation for every resource that has it: the route gives the items and, per field name,
how to read that field of an item; this module checks the body and keeps the items that match.

- search_fields: each {name, value, wildcard_start, wildcard_end, ignore_case} keeps the items
  whose field equals the value, or starts with it (wildcard_end), ends with it (wildcard_start),
  contains it (both); ignore_case compares case-folded. Several search fields all apply.
- filter_fields: each {name, value or values} keeps the items whose field is one of the values
  (whole values; a status or type is compared upper-cased, as the SDK's enums write them).
- selection_rule_fields: refused (ratecard has no selection rules); an unknown field name is a
  400 naming the fields the resource knows. The body is optional (the SDK sends none without one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request

from ..errors import invalid
from .common import json_body

Item = TypeVar("Item")
MAX_FIELDS = 20
MAX_VALUES = 100
MAX_TEXT = 256


@dataclass(frozen=True)
class Field:
    """One searchable field: how to read it from an item (None: the item has no value)."""

    read: Callable[[Any], str | None]
    enum: bool = False  # filter values are compared upper-cased (statuses, types)


async def search_body(request: Request) -> dict[str, Any]:
    """The Search body; an empty body is an empty search (every item). A FastAPI dependency, so
    the search itself runs in a plain (threaded) route: it reads the store."""
    if not (await request.body()).strip():
        return {}
    body = await json_body(request)
    if not isinstance(body, dict):
        raise invalid(None, "the body must be a JSON object {search_fields, filter_fields}")
    for name, value in body.items():
        if name == "selection_rule_fields" and value:
            raise invalid(name, "selection_rule_fields: ratecard has no selection rules; use search_fields "
                                "and filter_fields")
        if name not in ("search_fields", "filter_fields", "selection_rule_fields") and value is not None:
            raise invalid(name, f"{name} is not a field of a search (search_fields, filter_fields)")
    return body


def _list(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = body.get(name) or []
    if not isinstance(items, list) or len(items) > MAX_FIELDS or not all(isinstance(i, dict) for i in items):
        raise invalid(name, f"{name} must be a list of at most {MAX_FIELDS} objects")
    return items


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise invalid(where, f"{where} must be a string of at most {MAX_TEXT} characters")
    return value


def _name(item: dict[str, Any], where: str, fields: dict[str, Field]) -> Field:
    name = _text(item.get("name"), f"{where}.name")
    if name not in fields:
        raise invalid(f"{where}.name", f"{where}.name must be one of {', '.join(fields)}, got {name[:40]!r}")
    return fields[name]


def _flag(item: dict[str, Any], key: str, where: str) -> bool:
    value = item.get(key)
    if value is not None and not isinstance(value, bool):
        raise invalid(f"{where}.{key}", f"{where}.{key} must be true or false")
    return bool(value)


def text_matches(value: str, wanted: str, start: bool, end: bool, ignore_case: bool) -> bool:
    if ignore_case:
        value, wanted = value.casefold(), wanted.casefold()
    if start and end:
        return wanted in value
    if start:
        return value.endswith(wanted)
    if end:
        return value.startswith(wanted)
    return value == wanted


def search(items: Iterable[Item], body: dict[str, Any], fields: dict[str, Field],
           filters: dict[str, Field] | None = None) -> list[Item]:
    """The items matching every search field and every filter field of the body. `filters`:
    the names filter_fields may use (default: the same as search_fields)."""
    found: Sequence[Item] = list(items)
    for index, item in enumerate(_list(body, "search_fields")):
        where = f"search_fields.{index}"
        field = _name(item, where, fields)
        wanted = _text(item.get("value"), f"{where}.value")
        start, end = _flag(item, "wildcard_start", where), _flag(item, "wildcard_end", where)
        ignore_case = _flag(item, "ignore_case", where)
        found = [i for i in found if (value := field.read(i)) is not None
                 and text_matches(value, wanted, start, end, ignore_case)]
    for index, item in enumerate(_list(body, "filter_fields")):
        where = f"filter_fields.{index}"
        field = _name(item, where, filters if filters is not None else fields)
        values = item.get("values") if item.get("values") is not None else [item.get("value")]
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_VALUES:
            raise invalid(f"{where}.values", f"{where}: give value, or values (1 to {MAX_VALUES} strings)")
        wanted = {_text(v, f"{where}.values").upper() if field.enum else _text(v, f"{where}.values") for v in values}
        found = [i for i in found if (value := field.read(i)) is not None
                 and (value.upper() if field.enum else value) in wanted]
    return list(found)
