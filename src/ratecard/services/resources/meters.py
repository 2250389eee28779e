"""Meters: the schema of one event stream (its reference is what events send as
meter_reference), listing the meter values and properties its events carry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...domain.instants import to_micros
from ...outputs import csv_text, download_name
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
from .model import METER, PREFIX, PROPERTY, VALUE, View, refuse_rename, users_of
from .vocabulary import vocabulary_fields

LINKS = {VALUE: "meter_values", PROPERTY: "meter_properties"}
DATA_FILE_COLUMNS = ("customer_reference", "pricing_plan_subscription_reference", "reference", "timestamp",
                     "meter_reference")


def data_file(view: View, row: Resource) -> tuple[str, str]:
    """Solvimon's CSV upload template for the meter's events: its file name and its header row (the
    fixed columns, then one per meter value and property). The references are the caller's: each is
    a CSV cell (quoted when it holds a comma or a quote, never a spreadsheet formula), and the file
    name keeps only characters a header can carry."""
    columns = [*DATA_FILE_COLUMNS, *(linked.reference for linked, _ in view.linked(row, VALUE)),
               *(linked.reference for linked, _ in view.linked(row, PROPERTY))]
    return download_name(row.reference, "csv"), csv_text(columns, [])


def _links(change: ConfigChange, kind: str, raw: Any) -> list[dict[str, Any]]:
    """Resolve `meter_values` / `meter_properties` of a request: each names an existing value or
    property by id or reference, or embeds one as `object` (created when missing)."""
    key = LINKS[kind]
    if not isinstance(raw, list):
        raise invalid(key, f"{key} must be a list")
    links: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        where = f"{key}.{index}"
        if not isinstance(item, dict):
            raise invalid(where, f"{where} must be an object")
        required = item.get("required", False)
        if not isinstance(required, bool):
            raise invalid(f"{where}.required", "required must be true or false")
        embedded = item.get("object")
        if embedded is not None and not isinstance(embedded, dict):
            raise invalid(f"{where}.object", "object must be an object")
        target = None
        if item.get("id") is not None:
            target = change.resources.find(kind, item["id"])
            if target is None:
                raise invalid(f"{where}.id", f"there is no {kind.replace('_', ' ')} with id {item['id']!r}")
        reference = item.get("reference") or (embedded or {}).get("reference")
        if target is None and reference is not None:
            check_reference(reference, f"{where}.reference")
            target = change.resources.by_reference.get((kind, reference))
            if target is None and embedded is not None:
                fields = vocabulary_fields(kind, {"name": reference, "type": "NUMBER" if kind == VALUE else "STRING",
                                                  "status": "ACTIVE", **embedded}, None)
                target = change.put(Resource(change.new_id(PREFIX[kind], kind, reference), kind, reference,
                                             fields, 0, 0))
            if target is None:
                raise invalid(f"{where}.reference", f"there is no {kind.replace('_', ' ')} {reference!r}")
        if target is None:
            raise missing(f"{where}.reference", f"{where} needs an id or a reference")
        if any(link["id"] == target.id for link in links):
            raise invalid(where, f"{target.reference!r} is listed twice")
        links.append({"id": target.id, "required": required})
    return links


def meter_fields(change: ConfigChange, data: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    body = dict(current or {})
    if "name" in data:
        body["name"] = check_text(data["name"], "name")
    if "description" in data:
        body["description"] = check_text(data["description"], "description")
    if data.get("status") is not None:
        body["status"] = check_choice(data["status"], "status", CONFIG_STATUSES)
    body.setdefault("status", "DRAFT")
    for kind, key in LINKS.items():
        if data.get(key) is not None:
            body[key] = _links(change, kind, data[key])
        body.setdefault(key, [])
    return body


def _keep_calculation_links(view: View, meter: Resource, fields: dict[str, Any]) -> None:
    """A value or property a calculation of this meter reads must stay on the meter."""
    kept = {link["id"] for key in LINKS.values() for link in fields[key]}
    for calculation in view.resources.of_kind("calculation"):
        body = calculation.body
        if body.get("meter_id") != meter.id or view.catalog_meter(calculation.reference) is None:
            continue
        for used in (body.get("meter_value_id"), body.get("meter_property_id")):
            if used and used not in kept:
                name = view.resources.by_id[used].reference if used in view.resources.by_id else used
                raise invalid_operation(f"meter value calculation {calculation.reference!r} reads {name!r}; "
                                        "it cannot be removed from the meter")


def create(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[View, Resource]:
    """A new meter from a request's fields (values and properties named, or embedded and created)."""
    if data.get("reference") is None:
        raise missing("reference")
    reference = check_reference(data["reference"])
    with config_change(store, environment, to_micros(now)) as change:
        if (METER, reference) in change.resources.by_reference:
            raise already_exists("meter", reference)
        fields = meter_fields(change, data, None)
        row = change.put(Resource(change.new_id(PREFIX[METER], METER, reference), METER, reference, fields, 0, 0))
        return View(environment, change.resources, None), row


def update(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> tuple[View, Resource]:
    """Change the fields given (lists given replace the previous ones); what a calculation reads stays."""
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(METER, key)
        if row is None:
            raise not_found("meter", key)
        view = View(environment, change.resources, change.catalog())
        reference = row.reference
        if data.get("reference") is not None and data["reference"] != row.reference:
            reference = check_reference(data["reference"])
            if (METER, reference) in change.resources.by_reference:
                raise already_exists("meter", reference)
            refuse_rename(view, row)
        fields = meter_fields(change, data, row.body)
        _keep_calculation_links(view, row, fields)
        row = change.put(Resource(row.id, METER, reference, fields, 0, 0))
        return View(environment, change.resources, None), row


def delete(store: Store, environment: str, now: datetime, key: str) -> tuple[View, Resource]:
    """Delete a meter no calculation uses; returns it as it was."""
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(METER, key)
        if row is None:
            raise not_found("meter", key)
        view = View(environment, change.resources, change.catalog())
        users = users_of(view, row)
        if users:
            raise invalid_operation(f"meter {row.reference!r} is still used by {', '.join(users)}")
        change.delete(row.id)
    return view, row
