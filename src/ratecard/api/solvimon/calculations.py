"""/v1/meter-value-calculations: billable metrics. Each calculation IS a catalog meter:
code = the calculation's reference, source = its meter's reference (the event stream),
field = its meter value's reference (the property for UNIQUE), aggregation from its type
(SUM→sum, MAX→max, MIN→min, AVERAGE→average, UNIQUE→unique_count, COUNT→count). Creating,
changing or deleting one stores a new catalog version; catalog meters applied as YAML are
listed here too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...catalog.schema import CatalogDocument
from ...catalog.schema import Meter as CatalogMeter
from ...services.resources.checks import check_choice, check_reference, check_text
from ...services.resources.model import (
    AGGREGATION_TYPES,
    CALCULATION,
    CALCULATION_TYPES,
    METER,
    PREFIX,
    PROPERTY,
    SDK_CALCULATION_TYPES,
    VALUE,
    View,
    calculation_meter,
    save_document,
)
from ...store.resources import ConfigChange, Resource, config_change
from ..context import Caller, current_caller
from ..errors import already_exists, invalid, missing, not_found
from ..pagination import Page, paginate, solvimon_page
from .common import OBJECT_BODY, json_body, json_response, multi, wire_instant
from .config import snapshot
from .meters import render as render_meter
from .vocabulary import render as render_vocabulary
from .vocabulary import require_object

router = APIRouter(tags=["meter-value-calculations"])
MAX_CODE = 200  # catalog meter codes


def _parts(view: View, meter: CatalogMeter, row: Resource | None) -> tuple[Resource | None, ...]:
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


def render(view: View, meter: CatalogMeter, row: Resource | None, expand: list[str] | None = None) -> dict[str, Any]:
    """COUNT and ratecard-only aggregations are never sent as calculation_type (the SDK refuses
    values outside its enum): `ratecard_aggregation` always says what the meter does."""
    body = row.body if row is not None else {}
    kind = AGGREGATION_TYPES.get(meter.aggregation)
    meter_row, value_row, property_row = _parts(view, meter, row)
    wanted = set(expand or [])
    out: dict[str, Any] = {
        "object_type": "METER_VALUE_CALCULATION",
        "id": view.calculation_id(meter.code),
        "reference": meter.code,
        "name": meter.name if meter.name is not None else body.get("name"),
        "description": body.get("description"),
        "calculation_type": kind if kind in SDK_CALCULATION_TYPES else None,
        "persist": bool(body.get("persist", False)),
        "meter_id": meter_row.id if meter_row is not None else None,
        "meter_value_id": value_row.id if value_row is not None else None,
        "meter_property_id": property_row.id if property_row is not None else None,
        "created_at": wire_instant(row.created_at) if row is not None else None,
        "updated_at": wire_instant(row.updated_at) if row is not None else None,
        "ratecard_aggregation": meter.aggregation,
        "ratecard_meter": {"code": meter.code, "source": meter.source or meter.code, "field": meter.field,
                           "filters": {k: [str(v) for v in values] for k, values in meter.filters.items()}},
    }
    if "meter_id" in wanted and meter_row is not None:
        out["meter"] = render_meter(view, meter_row)
    if "meter_value_id" in wanted and value_row is not None:
        out["meter_value"] = render_vocabulary(value_row)
    if "meter_property_id" in wanted and property_row is not None:
        out["meter_property"] = render_vocabulary(property_row)
    return {key: value for key, value in out.items() if value is not None}


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


@router.get("/v1/meter-value-calculations", summary="List meter value calculations (the catalog's meters)")
def list_calculations(request: Request, page: Page = Depends(solvimon_page),
                      expand: list[str] | None = Query(None, alias="expand[]"),
                caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    expanded = multi(request, "expand")
    items = [(index, meter, view.resources.by_reference.get((CALCULATION, meter.code)))
             for index, meter in enumerate(view.meters())]
    sort_keys = {"created_at": lambda item: (item[2].created_at if item[2] else 0, item[0]),
                 "reference": lambda item: item[1].code, "id": lambda item: view.calculation_id(item[1].code)}
    return json_response(paginate(request, items, page, lambda item: render(view, item[1], item[2], expanded),
                                  sort_keys))


@router.post("/v1/meter-value-calculations", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Create a meter value calculation (a new catalog meter, in a new catalog version)")
def create_calculation(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    if data.get("reference") is None:
        raise missing("reference")
    reference = check_reference(data["reference"], max_length=MAX_CODE)
    with config_change(caller.store, caller.environment, caller.now_us) as change:
        document = _document(change)
        view = View(caller.environment, change.resources, document)
        if view.catalog_meter(reference) is not None:
            raise already_exists("meter value calculation (catalog meter)", reference)
        fields = calculation_fields(change, data, None)
        meter = calculation_meter(view, fields, reference, None)
        document = document.model_copy(update={"meters": [*document.meters, meter]})
        save_document(change, document, f"creating calculation {reference!r}")
        row = change.put(Resource(change.new_id(PREFIX[CALCULATION], CALCULATION, reference), CALCULATION,
                                  reference, fields, 0, 0))
        view = View(caller.environment, change.resources, change.catalog())
        return json_response(render(view, view.catalog_meter(reference) or meter, row), 201)


def _find(view: View, key: str) -> tuple[CatalogMeter, Resource | None]:
    found = view.find_calculation(key)
    if found is None:
        raise not_found("meter value calculation", key)
    return found


@router.get("/v1/meter-value-calculations/{key:path}", summary="Get a meter value calculation by id or reference")
def get_calculation(key: str, request: Request, expand: list[str] | None = Query(None, alias="expand[]"),
                    caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    meter, row = _find(view, key)
    return json_response(render(view, meter, row, multi(request, "expand")))


def _body_of_catalog_meter(view: View, meter: CatalogMeter) -> dict[str, Any]:
    """A row body for a catalog meter that has none yet (it was applied as YAML)."""
    meter_row, value_row, property_row = _parts(view, meter, None)
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


@router.patch("/v1/meter-value-calculations/{key:path}", openapi_extra=OBJECT_BODY,
               summary="Update a meter value calculation")
def update_calculation(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    with config_change(caller.store, caller.environment, caller.now_us) as change:
        document = _document(change)
        view = View(caller.environment, change.resources, document)
        meter, row = _find(view, key)
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
        view = View(caller.environment, change.resources, change.catalog())
        return json_response(render(view, rebuilt, row))


@router.delete("/v1/meter-value-calculations/{key:path}",
               summary="Delete a meter value calculation (removes its catalog meter; refused while a plan uses it)")
def delete_calculation(key: str, caller: Caller = Depends(current_caller)) -> Response:
    with config_change(caller.store, caller.environment, caller.now_us) as change:
        document = _document(change)
        view = View(caller.environment, change.resources, document)
        meter, row = _find(view, key)
        rendered = render(view, meter, row)
        meters = [m for m in document.meters if m.code != meter.code]
        save_document(change, document.model_copy(update={"meters": meters}), f"deleting calculation {meter.code!r}")
        if row is not None:
            change.delete(row.id)
    return json_response(rendered)
