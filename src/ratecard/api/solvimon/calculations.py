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

from ...catalog.schema import Meter as CatalogMeter
from ...services.resources import calculations
from ...services.resources.model import (
    AGGREGATION_TYPES,
    CALCULATION,
    SDK_CALCULATION_TYPES,
    View,
)
from ...store.resources import Resource
from ..context import Caller, current_caller
from ..pagination import Page, paginate, solvimon_page
from .common import OBJECT_BODY, json_body, json_response, multi, wire_instant
from .config import snapshot
from .meters import render as render_meter
from .vocabulary import render as render_vocabulary
from .vocabulary import require_object

router = APIRouter(tags=["meter-value-calculations"])


def render(view: View, meter: CatalogMeter, row: Resource | None, expand: list[str] | None = None) -> dict[str, Any]:
    """COUNT and ratecard-only aggregations are never sent as calculation_type (the SDK refuses
    values outside its enum): `ratecard_aggregation` always says what the meter does."""
    body = row.body if row is not None else {}
    kind = AGGREGATION_TYPES.get(meter.aggregation)
    meter_row, value_row, property_row = calculations.parts(view, meter, row)
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
    view, meter, row = calculations.create(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(render(view, meter, row), 201)


@router.get("/v1/meter-value-calculations/{key:path}", summary="Get a meter value calculation by id or reference")
def get_calculation(key: str, request: Request, expand: list[str] | None = Query(None, alias="expand[]"),
                    caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    meter, row = calculations.find(view, key)
    return json_response(render(view, meter, row, multi(request, "expand")))


@router.patch("/v1/meter-value-calculations/{key:path}", openapi_extra=OBJECT_BODY,
               summary="Update a meter value calculation")
def update_calculation(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, meter, row = calculations.update(caller.store, caller.environment, caller.now, key, require_object(body))
    return json_response(render(view, meter, row))


@router.delete("/v1/meter-value-calculations/{key:path}",
               summary="Delete a meter value calculation (removes its catalog meter; refused while a plan uses it)")
def delete_calculation(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return json_response(calculations.delete(caller.store, caller.environment, caller.now, key, render))
