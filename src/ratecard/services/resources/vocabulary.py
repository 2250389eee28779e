"""Meter values and meter properties: the vocabulary events and meters use (create, change, delete)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...domain.instants import to_micros
from ...store import Store
from ...store.resources import Resource, config_change
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
from .model import LABEL, PREFIX, PROPERTY, VALUE, View, refuse_rename, users_of

TYPES = {VALUE: ("NUMBER", "AMOUNT"), PROPERTY: ("NUMBER", "ENUM", "STRING")}
MAX_ENUM_VALUES = 300


def _enum_values(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid("enum_values", "enum_values must be a list of strings")
    if len(value) > MAX_ENUM_VALUES:
        raise invalid("enum_values", f"enum_values holds at most {MAX_ENUM_VALUES} values")
    return list(dict.fromkeys(value))


def vocabulary_fields(kind: str, data: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The stored body of a value or property from a create (current None) or patch request."""
    body = dict(current or {})
    for name in ("name", "type") if current is None else ():
        if data.get(name) is None:
            raise missing(name)
    if "name" in data and data["name"] is not None:
        body["name"] = check_text(data["name"], "name")
    if "description" in data:
        body["description"] = check_text(data["description"], "description")
    if data.get("type") is not None:
        body["type"] = check_choice(data["type"], "type", TYPES[kind])
    if data.get("status") is not None:
        body["status"] = check_choice(data["status"], "status", CONFIG_STATUSES)
    body.setdefault("status", "DRAFT")  # Solvimon creates configuration as DRAFT unless told
    if kind == PROPERTY:
        if data.get("enum_values") is not None:
            values = _enum_values(data["enum_values"])
            if current is not None and current.get("status") == "ACTIVE" and current.get("type") == "ENUM":
                removed = [v for v in current.get("enum_values") or [] if v not in values]
                if removed:
                    raise invalid_operation(f"an ACTIVE ENUM property's values can only be added to; "
                                            f"{removed[0]!r} cannot be removed", "enum_values")
            body["enum_values"] = values
        if body.get("type") != "ENUM":
            body.pop("enum_values", None)
    return body


def create(store: Store, environment: str, now: datetime, kind: str, data: dict[str, Any]) -> Resource:
    """A new value or property (`kind`) from a request's fields; its reference must be new."""
    if data.get("reference") is None:
        raise missing("reference")
    reference = check_reference(data["reference"])
    fields = vocabulary_fields(kind, data, None)
    with config_change(store, environment, to_micros(now)) as change:
        if (kind, reference) in change.resources.by_reference:
            raise already_exists(LABEL[kind], reference)
        return change.put(Resource(change.new_id(PREFIX[kind], kind, reference), kind, reference, fields, 0, 0))


def update(store: Store, environment: str, now: datetime, kind: str, key: str, data: dict[str, Any]) -> Resource:
    """Change the fields given; a reference events already carry cannot change while a calculation reads it."""
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(kind, key)
        if row is None:
            raise not_found(LABEL[kind], key)
        reference = row.reference
        if data.get("reference") is not None and data["reference"] != row.reference:
            reference = check_reference(data["reference"])
            other = change.resources.by_reference.get((kind, reference))
            if other is not None:
                raise already_exists(LABEL[kind], reference)
            refuse_rename(View(environment, change.resources, change.catalog()), row)
        fields = vocabulary_fields(kind, data, row.body)
        return change.put(Resource(row.id, kind, reference, fields, 0, 0))


def delete(store: Store, environment: str, now: datetime, kind: str, key: str) -> Resource:
    """Delete a value or property no meter or calculation uses; returns it as it was."""
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(kind, key)
        if row is None:
            raise not_found(LABEL[kind], key)
        users = users_of(View(environment, change.resources, change.catalog()), row)
        if users:
            raise invalid_operation(f"{LABEL[kind]} {row.reference!r} is still used by {', '.join(users)}")
        change.delete(row.id)
    return row
