"""Meter value calculations: billable metrics. Each calculation IS a catalog meter: code = the
calculation's reference, source = its meter's reference (the event stream), field = its meter
value's reference (the property for UNIQUE), aggregation from its type. Creating, changing or
deleting one stores a new catalog version (refused when it would leave the catalog invalid)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from ...catalog.schema import CatalogDocument
from ...catalog.schema import Meter as CatalogMeter
from ...domain.instants import to_micros
from ...store import Store
from ...store.resources import ConfigChange, Resource, config_change
from .checks import already_exists, check_choice, check_reference, check_text, invalid, missing, not_found
from .model import (
    AGGREGATION_TYPES,
    CALCULATION,
    CALCULATION_TYPES,
    METER,
    PREFIX,
    PROPERTY,
    VALUE,
    View,
    calculation_meter,
    save_document,
)

MAX_CODE = 200  # catalog meter codes
Shown = TypeVar("Shown")


def parts(view: View, meter: CatalogMeter, row: Resource | None) -> tuple[Resource | None, ...]:
    """The Solvimon meter, value and property a calculation reads (found by reference for
    catalog meters that have no row)."""
    body = row.body if row is not None else {}
    meter_row = view.find(METER, body.get("meter_id")) if body.get("meter_id") else None
    if meter_row is None and row is None:
        meter_row = view.resources.by_reference.get((METER, meter.source or meter.code))
    value_row = view.find(VALUE, body.get("meter_value_id")) if body.get("meter_value_id") else None
    property_row = view.find(PROPERTY, body.get("meter_property_id")) if body.get("meter_property_id") else None
    if row is None and meter.field:
        if meter.aggregation == "unique_count":
            property_row = view.resources.by_reference.get((PROPERTY, meter.field))
        elif meter.aggregation != "count":
            value_row = view.resources.by_reference.get((VALUE, meter.field))
    return meter_row, value_row, property_row


def _resolve(change: ConfigChange, kind: str, key: Any, field: str, meter: Resource) -> Resource:
    if not isinstance(key, str):
        raise invalid(field, f"{field} must be a string")
    found = change.resources.find(kind, key)
    if found is None:
        raise invalid(field, f"there is no {kind.replace('_', ' ')} {key!r}")
    linked = meter.body.get("meter_values" if kind == VALUE else "meter_properties", [])
    if not any(link["id"] == found.id for link in linked):
        raise invalid(field, f"{kind.replace('_', ' ')} {found.reference!r} is not part of meter {meter.reference!r}; "
                             "add it to the meter first")
    return found


def calculation_fields(change: ConfigChange, data: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The stored body of a calculation from a create (current None) or patch request."""
    body = dict(current or {})
    if current is None:
        for name in ("calculation_type", "meter_id"):
            if data.get(name) is None:
                raise missing(name)
    if data.get("calculation_type") is not None:
        body["calculation_type"] = check_choice(data["calculation_type"], "calculation_type", tuple(CALCULATION_TYPES))
        body["aggregation"] = CALCULATION_TYPES[body["calculation_type"]]
    for name in ("name", "description"):
        if name in data:
            body[name] = check_text(data[name], name)
    if data.get("persist") is not None:
        if not isinstance(data["persist"], bool):
            raise invalid("persist", "persist must be true or false")
        if data["persist"]:
            raise invalid("persist", "persist (carrying a rolling aggregate into the next period) is not supported "
                                     "by ratecard")
        body["persist"] = False
    if data.get("meter_id") is not None:
        if not isinstance(data["meter_id"], str):
            raise invalid("meter_id", "meter_id must be a string")
        meter_row = change.resources.find(METER, data["meter_id"])
        if meter_row is None:
            raise invalid("meter_id", f"there is no meter {data['meter_id']!r}")
        body["meter_id"] = meter_row.id
    meter_row = change.resources.by_id.get(body.get("meter_id") or "")
    if meter_row is None:
        raise missing("meter_id", "meter_id is required: the meter whose events are aggregated")
    if data.get("meter_value_id") is not None:
        body["meter_value_id"] = _resolve(change, VALUE, data["meter_value_id"], "meter_value_id", meter_row).id
    if data.get("meter_property_id") is not None:
        body["meter_property_id"] = _resolve(change, PROPERTY, data["meter_property_id"], "meter_property_id",
                                             meter_row).id
    aggregation = body["aggregation"]
    if aggregation == "count":
        body.pop("meter_value_id", None)
        body.pop("meter_property_id", None)
    elif aggregation == "unique_count":
        if body.get("meter_property_id") is None and body.get("meter_value_id") is None:
            raise missing("meter_property_id", "UNIQUE counts the distinct values of a meter property: "
                                               "meter_property_id is required")
        if body.get("meter_property_id") is not None:
            body.pop("meter_value_id", None)
    else:
        body.pop("meter_property_id", None)
        if body.get("meter_value_id") is None:
            raise missing("meter_value_id", f"{body['calculation_type']} aggregates a meter value: "
                                            "meter_value_id is required")
    for name, kind in (("meter_value_id", VALUE), ("meter_property_id", PROPERTY)):
        if body.get(name) is not None and data.get(name) is None and data.get("meter_id") is not None:
            _resolve(change, kind, body[name], name, meter_row)  # still part of the new meter?
    return body


def _document(change: ConfigChange) -> CatalogDocument:
    return change.catalog() or CatalogDocument()


def find(view: View, key: str) -> tuple[CatalogMeter, Resource | None]:
    found = view.find_calculation(key)
    if found is None:
        raise not_found("meter value calculation", key)
    return found


def _body_of_catalog_meter(view: View, meter: CatalogMeter) -> dict[str, Any]:
    """A row body for a catalog meter that has none yet (it was applied as YAML)."""
    meter_row, value_row, property_row = parts(view, meter, None)
    kind = AGGREGATION_TYPES.get(meter.aggregation)
    body: dict[str, Any] = {"aggregation": meter.aggregation, "calculation_type": kind, "persist": False,
                            "name": meter.name}
    if meter_row is not None:
        body["meter_id"] = meter_row.id
    if value_row is not None:
        body["meter_value_id"] = value_row.id
    if property_row is not None:
        body["meter_property_id"] = property_row.id
    return body


def create(store: Store, environment: str, now: datetime,
           data: dict[str, Any]) -> tuple[View, CatalogMeter, Resource]:
    """A new calculation: a new catalog meter, in a new catalog version."""
    if data.get("reference") is None:
        raise missing("reference")
    reference = check_reference(data["reference"], max_length=MAX_CODE)
    with config_change(store, environment, to_micros(now)) as change:
        document = _document(change)
        view = View(environment, change.resources, document)
        if view.catalog_meter(reference) is not None:
            raise already_exists("meter value calculation (catalog meter)", reference)
        fields = calculation_fields(change, data, None)
        meter = calculation_meter(view, fields, reference, None)
        document = document.model_copy(update={"meters": [*document.meters, meter]})
        save_document(change, document, f"creating calculation {reference!r}")
        row = change.put(Resource(change.new_id(PREFIX[CALCULATION], CALCULATION, reference), CALCULATION,
                                  reference, fields, 0, 0))
        view = View(environment, change.resources, change.catalog())
        return view, view.catalog_meter(reference) or meter, row


def update(store: Store, environment: str, now: datetime, key: str,
           data: dict[str, Any]) -> tuple[View, CatalogMeter, Resource]:
    """Change the fields given; its catalog meter is rebuilt (filters kept) in a new catalog version."""
    with config_change(store, environment, to_micros(now)) as change:
        document = _document(change)
        view = View(environment, change.resources, document)
        meter, row = find(view, key)
        current = row.body if row is not None else _body_of_catalog_meter(view, meter)
        if meter.aggregation not in AGGREGATION_TYPES and data.get("calculation_type") is None:
            raise invalid("calculation_type", f"catalog meter {meter.code!r} aggregates {meter.aggregation}, which "
                                              "has no Solvimon calculation type; change it in the catalog")
        reference = meter.code
        if data.get("reference") is not None and data["reference"] != meter.code:
            reference = check_reference(data["reference"], max_length=MAX_CODE)
            if view.catalog_meter(reference) is not None:
                raise already_exists("meter value calculation (catalog meter)", reference)
        fields = calculation_fields(change, data, current)
        rebuilt = calculation_meter(view, fields, reference, meter)
        if rebuilt.source is None:
            rebuilt = rebuilt.model_copy(update={"source": meter.source or meter.code})
        meters = [rebuilt if m.code == meter.code else m for m in document.meters]
        save_document(change, document.model_copy(update={"meters": meters}), f"changing calculation {meter.code!r}")
        row_id = row.id if row is not None else view.calculation_id(meter.code)
        row = change.put(Resource(row_id, CALCULATION, reference, fields, 0, 0))
        return View(environment, change.resources, change.catalog()), rebuilt, row


def delete(store: Store, environment: str, now: datetime, key: str,
           show: Callable[[View, CatalogMeter, Resource | None], Shown]) -> Shown:
    """Delete a calculation and its catalog meter (refused while a plan charges it). `show` shapes
    what the caller returns of it, as it was before it went (its id comes from its row)."""
    with config_change(store, environment, to_micros(now)) as change:
        document = _document(change)
        view = View(environment, change.resources, document)
        meter, row = find(view, key)
        shown = show(view, meter, row)
        meters = [m for m in document.meters if m.code != meter.code]
        save_document(change, document.model_copy(update={"meters": meters}), f"deleting calculation {meter.code!r}")
        if row is not None:
            change.delete(row.id)
    return shown
