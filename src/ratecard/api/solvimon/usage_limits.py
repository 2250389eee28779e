"""/v1/usage-limits: a customer's cap on a meter's usage over the current period, and whether it is
reached (services.usage_limits; a usage limit overrides the customer's usage-limited features)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...domain.instants import to_micros
from ...services import usage_limits
from ...services.resources.model import View
from ...store.resources import Resource
from ..context import Caller, current_caller
from ..errors import invalid, missing
from ..pagination import Page, paginate, solvimon_page
from .common import OBJECT_BODY, customer_of, decimal_text, json_body, json_response, named, stored, wire_instant
from .config import snapshot
from .vocabulary import require_object

router = APIRouter(tags=["usage limits"])


def render(view: View, row: Resource) -> dict[str, Any]:
    body = row.body
    return {"object_type": "USAGE_LIMIT", "id": row.id, "status": body["status"],
            "customer_id": view.customer_id(body["customer"]),
            "meter_value_calculation_id": view.calculation_id(body["meter"]), "scope": body["scope"],
            "limit": {"number": body["limit"]}, "created_at": wire_instant(row.created_at),
            "updated_at": wire_instant(row.updated_at),
            "ratecard": {"customer_reference": body["customer"], "meter": body["meter"]}}


def _meter(view: View, key: Any) -> str:
    return str(named(key, "meter_value_calculation_id", "meter value calculation", view.find_calculation).code)


@router.get("/v1/usage-limits", summary="List usage limits (customer_id filters)")
def list_limits(request: Request, page: Page = Depends(solvimon_page), customer_id: str | None = Query(None),
                caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    customer = customer_of(view, customer_id) if customer_id is not None else None
    rows = usage_limits.listed(caller.store, caller.environment, customer)
    return json_response(paginate(request, rows, page, lambda row: render(view, row),
                                  {"created_at": lambda row: (row.created_at, row.id),
                                   "updated_at": lambda row: (row.updated_at, row.id)}))


@router.post("/v1/usage-limits", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Cap a customer's usage of a meter (overrides its usage-limited features)")
def create_limit(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    view = snapshot(caller).view
    for name in ("customer_id", "meter_value_calculation_id", "limit"):
        if data.get(name) is None:
            raise missing(name, f"{name} is required")
    row = usage_limits.create(caller.store, caller.environment, caller.now, view.document,
                              customer_of(view, data["customer_id"]), _meter(view, data["meter_value_calculation_id"]),
                              data)
    return json_response(render(view, row), 201)


@router.get("/v1/usage-limits/status", summary="Whether each ACTIVE limit of a customer is reached, this period")
def limits_status(customer_id: str | None = Query(None), include_children: bool | None = Query(None),
                  caller: Caller = Depends(current_caller)) -> Response:
    if customer_id is None:
        raise missing("customer_id", "customer_id is required")
    if include_children:
        raise invalid("include_children", "include_children: ratecard customers have no child customers")
    view = snapshot(caller).view
    customer = customer_of(view, customer_id)
    state = caller.catalog()
    if state is None:
        return json_response({"data": []})
    found = usage_limits.statuses(caller.store, caller.environment, state.catalog, state.version, customer,
                                  caller.now)
    data = [{"customer_id": view.customer_id(customer),
             "meter_value_calculation_id": view.calculation_id(item.limit.body["meter"]),
             "scope": item.limit.body["scope"], "limit": {"number": item.limit.body["limit"]},
             "consumed": {"number": decimal_text(item.consumed)}, "percentage": decimal_text(item.percentage),
             "ratecard": {"usage_limit_id": item.limit.id, "reached": item.reached, "measured": item.measured}}
            for item in found]
    out: dict[str, Any] = {"data": data}
    starts = [item.period_start for item in found if item.period_start is not None]
    ends = [item.period_end for item in found if item.period_end is not None]
    if starts:
        out["period_start"] = wire_instant(to_micros(min(starts)))
    if ends:
        out["period_end"] = wire_instant(to_micros(min(ends)))
    return json_response(out)


@router.get("/v1/usage-limits/{key}", summary="Get a usage limit")
def get_limit(key: str, caller: Caller = Depends(current_caller)) -> Response:
    row = _find(caller, key)
    return json_response(render(snapshot(caller).view, row))


def _find(caller: Caller, key: str) -> Resource:
    return stored(caller, usage_limits.find, key, "usage limit")


@router.patch("/v1/usage-limits/{key}", openapi_extra=OBJECT_BODY, summary="Change a usage limit's number or status")
def update_limit(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    view = snapshot(caller).view
    _find(caller, key)
    customer = customer_of(view, data["customer_id"]) if data.get("customer_id") is not None else None
    meter = _meter(view, data["meter_value_calculation_id"]) \
        if data.get("meter_value_calculation_id") is not None else None
    row = usage_limits.update(caller.store, caller.environment, caller.now, key, data, customer, meter)
    return json_response(render(view, row))


@router.post("/v1/usage-limits/{key}/status", openapi_extra=OBJECT_BODY,
             summary="Set a usage limit's status (only ACTIVE limits apply)")
def set_limit_status(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    extra = [name for name in data if name != "status"]
    if extra:
        raise invalid(str(extra[0])[:60], f"{str(extra[0])[:60]}: this action takes status only")
    if data.get("status") is None:
        raise missing("status", "status is required")
    _find(caller, key)
    row = usage_limits.update(caller.store, caller.environment, caller.now, key, {"status": data["status"]})
    return json_response(render(snapshot(caller).view, row))


@router.delete("/v1/usage-limits/{key}", summary="Delete a usage limit (the plans' values apply again)")
def delete_limit(key: str, caller: Caller = Depends(current_caller)) -> Response:
    _find(caller, key)
    row = usage_limits.delete(caller.store, caller.environment, caller.now, key)
    return json_response(render(snapshot(caller).view, row))
