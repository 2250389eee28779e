"""/v1/ingest/meter-data…: Solvimon's event ingestion over ratecard events.

An event's `reference` (10–256 characters) is its ratecard id and idempotency key: a repeated
reference still answers 201 and takes effect once (the repeat is kept as a DUPLICATE record,
never billed). Events are stored even when they cannot be billed yet (NOT_MATCHED: unknown
customer, no subscription); meter_validation=STATIC, the default as in Solvimon, refuses an
unknown meter, meter value or meter property with 400 and stores nothing, DYNAMIC creates them. A batch
(1–50 events) is validated whole first: one invalid event refuses the batch (400 naming its
index), while duplicates inside it are fine. `meter_values[].number` is a decimal string and
stays exact. The same routes are served under /v1/events/… (the SDK's second family).

The routes live in routes.py; reading.py checks an event, checking.py applies STATIC and
turns rejections into errors, recording.py calls services.meter_data (checking the batch whole,
creating what DYNAMIC needs, storing), and rendering.py shapes a stored event for the wire.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ....services import meter_data
from ....services.resources.checks import check_choice
from ...context import Caller, current_caller
from ...errors import ApiError, invalid, missing, not_found
from ...pagination import Page, envelope, solvimon_page
from ..common import OBJECT_BODY, json_body, json_response, multi, param
from ..config import snapshot
from .reading import string_field
from .recording import delete_event, record_events
from .rendering import render
from .tracing import calculate, trace

router = APIRouter(tags=["ingest"])

VALIDATIONS = ("STATIC", "DYNAMIC")
PROCESSED_TYPES = ("DEFAULT", "NOT_MATCHED", "DUPLICATE")
MAX_BATCH = 50


def _validation(value: str | None) -> str:
    return "STATIC" if value is None else check_choice(value, "meter_validation", VALIDATIONS)


INGEST_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["reference"],
    "properties": {"reference": {"type": "string", "minLength": 10, "maxLength": 256},
                   "customer_reference": {"type": "string"}, "meter_reference": {"type": "string"},
                   "timestamp": {"type": "string", "format": "date-time"},
                   "meter_values": {"type": "array", "items": {"type": "object"}},
                   "meter_properties": {"type": "array", "items": {"type": "object"}}}}}}}}
BATCH_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["meter_datas"],
    "properties": {"meter_datas": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                                   "items": {"type": "object"}}}}}}}}


async def post_one(request: Request, meter_validation: str | None = Query(None, description="STATIC | DYNAMIC"),
                   cost_prediction: bool | None = Query(None), clickhouse: bool | None = Query(None),
                   caller: Caller = Depends(current_caller)) -> Response:
    validation = _validation(meter_validation)
    data = await json_body(request)
    rendered = await run_in_threadpool(record_events, caller, [data], [""], validation)
    return json_response(_predicted(rendered, cost_prediction)[0], 201)


async def post_many(request: Request, meter_validation: str | None = Query(None, description="STATIC | DYNAMIC"),
                    cost_prediction: bool | None = Query(None), clickhouse: bool | None = Query(None),
                    caller: Caller = Depends(current_caller)) -> Response:
    validation = _validation(meter_validation)
    data = await json_body(request)
    if not isinstance(data, dict):
        raise invalid(None, "the body must be an object {\"meter_datas\": [...]}")
    items = data.get("meter_datas")
    if items is None:
        raise missing("meter_datas")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise invalid("meter_datas", f"meter_datas must list 1 to {MAX_BATCH} events")
    prefixes = [f"meter_datas.{index}." for index in range(len(items))]
    rendered = await run_in_threadpool(record_events, caller, items, prefixes, validation)
    return json_response({"meter_datas": _predicted(rendered, cost_prediction)}, 201)


def _predicted(rendered: list[dict[str, Any]], cost_prediction: bool | None) -> list[dict[str, Any]]:
    """cost_prediction=true: ratecard prices usage per billing period, not per event, so each event
    answers Solvimon's `NOT_SUPPORTED` (the SDK's own value for it) rather than a made-up cost."""
    if cost_prediction:
        for item in rendered:
            item["cost_prediction"] = {"response": "NOT_SUPPORTED"}
    return rendered


def list_data(request: Request, page: Page = Depends(solvimon_page), customer_id: str | None = Query(None),
              reference: str | None = Query(None), meter_id: str | None = Query(None),
              deleted: bool | None = Query(None),
              processed_details_type: str | None = Query(None, description="DEFAULT | NOT_MATCHED | DUPLICATE"),
              expand: list[str] | None = Query(None, alias="expand[]"),
                caller: Caller = Depends(current_caller)) -> Response:
    if processed_details_type is not None:
        check_choice(processed_details_type, "processed_details_type", PROCESSED_TYPES)
    for name, value in (("customer_id", customer_id), ("reference", reference), ("meter_id", meter_id)):
        param(value, name)
    view = snapshot(caller).view
    total, rows = meter_data.find_events(
        caller.store, caller.environment, reference=reference,
        customer=view.customer_reference(customer_id) if customer_id is not None else None,
        meter=view.meter_reference(meter_id) if meter_id is not None else None,
        deleted=deleted, processed=processed_details_type, limit=page.limit, offset=page.offset)
    expanded = multi(request, "expand")
    return json_response(envelope(request, [render(view, row, expanded) for row in rows], total, page))


def get_one(key: str, caller: Caller = Depends(current_caller)) -> Response:
    row = meter_data.find_event(caller.store, caller.environment, param(key, "resourceIdOrReference") or key)
    if row is None:
        raise not_found("meter data", key)
    return json_response(render(snapshot(caller).view, row))


def delete_by_path(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return json_response(delete_event(caller, param(key, "resourceIdOrReference") or key))


async def delete_by_body(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    data = await json_body(request)
    if not isinstance(data, dict):
        raise invalid(None, "the body must be an object {\"reference\": ...}")
    key = data.get("reference") if data.get("reference") is not None else data.get("id")
    if key is None:
        raise missing("reference")
    # json_body has refused NUL characters already
    return json_response(await run_in_threadpool(delete_event, caller, string_field(key, "reference")))


def event_trace(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return json_response(trace(caller, param(key, "resourceIdOrReference") or key))


async def post_calculate(request: Request,
                         meter_validation: str | None = Query(None, description="STATIC | DYNAMIC"),
                         cost_prediction: bool | None = Query(None), clickhouse: bool | None = Query(None),
                         caller: Caller = Depends(current_caller)) -> Response:
    """The event as ingestion would make it, stored nowhere (200, type CALCULATION)."""
    validation = _validation(meter_validation)
    data = await json_body(request)
    rendered = await run_in_threadpool(calculate, caller, data, validation)
    return json_response(_predicted([rendered], cost_prediction)[0])


PERSIST_REQUIRED = ("customer_id", "pricing_id", "pricing_item_id", "pricing_item_config_id",
                    "pricing_plan_subscription_id")


async def post_persist_data(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    """Solvimon's persist-data writes usage totals (usage, included or rolled-over volume) of one
    pricing item straight into a subscription's period. ratecard keeps no such totals: a period's
    usage is always computed from its stored events, so a valid request is refused with
    INVALID_OPERATION saying how to change usage instead."""
    data = await json_body(request)
    if not isinstance(data, dict):
        raise invalid(None, "the body must be a persist data object")
    for name in PERSIST_REQUIRED:
        if data.get(name) is None:
            raise missing(name)
        string_field(data[name], name)
    raise ApiError(400, "INVALID_OPERATION", "ratecard stores no usage totals: a period's usage is computed from its "
                   "events; send events (POST /v1/ingest/meter-data), delete wrong ones, and reprocess")


DELETE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"reference": {"type": "string"}, "id": {"type": "string"}}}}}}}

for base, one, many in (("/v1/ingest/meter-data", "/v1/ingest/meter-data", ("/v1/ingest/meter-datas",)),
                        ("/v1/events", "/v1/events/ingest", ("/v1/events/ingest-batch", "/v1/events/ingest-list"))):
    router.add_api_route(one, post_one, methods=["POST"], status_code=201, openapi_extra=INGEST_BODY,
                         summary="Ingest one event (201, also for a repeated reference)")
    for path in many:
        router.add_api_route(path, post_many, methods=["POST"], status_code=201, openapi_extra=BATCH_BODY,
                             summary="Ingest 1 to 50 events, all or nothing for invalid ones")
    router.add_api_route(base, list_data, methods=["GET"], summary="List events and DUPLICATE records, newest first")
    router.add_api_route(f"{base}/delete", delete_by_body, methods=["POST"], openapi_extra=DELETE_BODY,
                         summary="Soft-delete an event named in the body")
    router.add_api_route(f"{base}/{{key:path}}/event_trace", event_trace, methods=["GET"],
                         summary="How an event was received, matched and invoiced")
    router.add_api_route(f"{base}/{{key:path}}/delete", delete_by_path, methods=["POST"],
                         summary="Soft-delete an event (it leaves usage; idempotent)")
    router.add_api_route(f"{base}/{{key:path}}", get_one, methods=["GET"],
                         summary="Get an event by id or reference")
router.add_api_route("/v1/events/calculate", post_calculate, methods=["POST"], openapi_extra=INGEST_BODY,
                     summary="Validate and match an event as ingestion would, storing nothing (200)")
router.add_api_route("/v1/ingest/persist-data", post_persist_data, methods=["POST"], openapi_extra=OBJECT_BODY,
                     summary="Persisted usage totals: refused (ratecard computes usage from events)")
