"""/v1/ingest/meter-data…: Solvimon's event ingestion over ratecard events.

An event's `reference` (10–256 characters) is its ratecard id and idempotency key: a repeated
reference still answers 201 and takes effect once (the repeat is kept as a DUPLICATE record,
never billed). Events are stored even when they cannot be billed yet (NOT_MATCHED: unknown
customer, unknown meter, no subscription) under DYNAMIC validation, the default; STATIC
refuses an unknown meter, meter value or meter property with 400 and stores nothing. A batch
(1–50 events) is validated whole first: one invalid event refuses the batch (400 naming its
index), while duplicates inside it are fine. `meter_values[].number` is a decimal string and
stays exact. The same routes are served under /v1/events/… (the SDK's second family).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...domain.instants import to_micros
from ...golive.monitor import record_batch, record_rejection
from ...ingest.records import RawEvent, Rejection
from ...ingest.validate import EventValidator
from ...store.meter_data import MeterDataRow, NewEvent, get_meter_data, insert_meter_data, list_meter_data, soft_delete
from ...store.resources import ConfigChange, Resource, config_change
from ..context import Caller, current_caller
from ..errors import ApiError, invalid, invalid_operation, missing, not_found
from ..pagination import Page, envelope, solvimon_page
from .common import (
    aware,
    check_choice,
    check_reference,
    decimal_text,
    json_body,
    json_response,
    multi,
    param,
    parse_decimal,
    wire_instant,
)
from .config import METER, PREFIX, PROPERTY, VALUE, View, snapshot
from .customers import render as render_customer

router = APIRouter(tags=["ingest"])

VALIDATIONS = ("STATIC", "DYNAMIC")
PROCESSED_TYPES = ("DEFAULT", "NOT_MATCHED", "DUPLICATE")
VARIANTS = {"unknown_customer": "UNKNOWN_CUSTOMER", "unknown_meter": "UNKNOWN_METER",
            "no_subscription": "NO_SUBSCRIPTION", "invalid_value": "INVALID_VALUE"}
MIN_REFERENCE, MAX_REFERENCE = 10, 256
MAX_BATCH = 50
_decode = msgspec.json.Decoder(float_hook=Decimal).decode  # stored properties: numbers exact
_LINE = re.compile(r"^line \d+: ")


# ---------------------------------------------------------------- reading requests


@dataclass
class ValueIn:
    reference: str
    number: Decimal
    is_amount: bool
    settings: dict[str, Any]


@dataclass
class PropertyIn:
    reference: str
    value: str
    settings: dict[str, Any]


@dataclass
class Prepared:
    prefix: str
    reference: str
    customer: str
    meter: str
    meter_field: str
    timestamp: datetime
    values: list[ValueIn] = field(default_factory=list)
    properties: list[PropertyIn] = field(default_factory=list)

    def raw(self, line: int) -> RawEvent:
        data: dict[str, Any] = {v.reference: v.number for v in self.values}
        data.update({p.reference: p.value for p in self.properties})
        return RawEvent(self.reference, self.customer, self.meter, self.timestamp.isoformat(), data, line)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise invalid(where, f"{where} must be a string")
    return value


def _settings(raw: Any, where: str, types: tuple[str, ...]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid(where, f"{where} must be an object")
    settings: dict[str, Any] = {}
    if raw.get("type") is not None:
        settings["type"] = check_choice(raw["type"], f"{where}.type", types)
    if raw.get("required") is not None:
        if not isinstance(raw["required"], bool):
            raise invalid(f"{where}.required", "required must be true or false")
        settings["required"] = raw["required"]
    return settings


def _reference_of(item: dict[str, Any], kind: str, where: str, view: View) -> str:
    if item.get("reference") is not None:
        return check_reference(item["reference"], f"{where}.reference")
    if item.get("id") is not None:
        row = view.find(kind, _string(item["id"], f"{where}.id"))
        if row is None:
            raise invalid(f"{where}.id", f"there is no {kind.replace('_', ' ')} with id {item['id']!r}")
        return row.reference
    raise missing(f"{where}.reference", f"{where} needs a reference (or an id)")


def prepare(data: Any, prefix: str, view: View, moment: datetime) -> Prepared:
    """Check one event's shape, references and numbers; resolve ids to references."""
    where = prefix.rstrip(".") or None
    if not isinstance(data, dict):
        raise invalid(where, f"{where or 'the body'} must be a meter data object")
    if data.get("reference") is None:
        raise missing(f"{prefix}reference", f"{prefix}reference is required: it identifies the event, once")
    reference = check_reference(data["reference"], f"{prefix}reference", MAX_REFERENCE, MIN_REFERENCE)

    if data.get("customer_reference") is not None:
        customer = check_reference(data["customer_reference"], f"{prefix}customer_reference")
    elif data.get("customer_id") is not None:
        customer = view.customer_reference(check_reference(data["customer_id"], f"{prefix}customer_id"))
    else:
        raise missing(f"{prefix}customer_reference", "customer_reference (or customer_id) is required")

    if data.get("meter_reference") is not None:
        meter, meter_field = check_reference(data["meter_reference"], f"{prefix}meter_reference"), "meter_reference"
    elif data.get("meter_id") is not None:
        meter = view.meter_reference(check_reference(data["meter_id"], f"{prefix}meter_id"))
        meter_field = "meter_id"
    else:
        raise missing(f"{prefix}meter_reference", "meter_reference (or meter_id) is required")

    for name in ("pricing_plan_subscription_reference", "pricing_plan_subscription_id"):
        if data.get(name) is not None:
            _string(data[name], f"{prefix}{name}")  # accepted; events match by customer and time

    timestamp = moment
    if data.get("timestamp") is not None:
        text = _string(data["timestamp"], f"{prefix}timestamp").strip()
        try:
            timestamp = aware(datetime.fromisoformat(text.replace("z", "Z")))
        except ValueError:
            raise invalid(f"{prefix}timestamp", f"timestamp {text[:60]!r} is not an ISO 8601 date-time") from None

    event = Prepared(prefix, reference, customer, meter, meter_field, timestamp)
    seen: set[str] = set()
    raw_values = data.get("meter_values")
    if raw_values is not None:
        if not isinstance(raw_values, list):
            raise invalid(f"{prefix}meter_values", "meter_values must be a list")
        for index, item in enumerate(raw_values):
            at = f"{prefix}meter_values.{index}"
            if not isinstance(item, dict):
                raise invalid(at, f"{at} must be an object")
            ref = _reference_of(item, VALUE, at, view)
            if item.get("number") is not None:
                number, is_amount = parse_decimal(item["number"], f"{at}.number"), False
            elif item.get("amount") is not None:
                if not isinstance(item["amount"], dict) or item["amount"].get("quantity") is None:
                    raise missing(f"{at}.amount.quantity", "an amount needs a quantity")
                number, is_amount = parse_decimal(item["amount"]["quantity"], f"{at}.amount.quantity"), True
            else:
                raise missing(f"{at}.number", f"{at} needs a number (or an amount)")
            if item.get("count") is not None:
                parse_decimal(item["count"], f"{at}.count")
            if ref in seen:
                raise invalid(f"{at}.reference", f"{ref!r} appears twice in the event")
            seen.add(ref)
            event.values.append(ValueIn(ref, number, is_amount,
                                        _settings(item.get("dynamic_validation_settings"),
                                                  f"{at}.dynamic_validation_settings", ("NUMBER", "AMOUNT"))))
    raw_properties = data.get("meter_properties")
    if raw_properties is not None:
        if not isinstance(raw_properties, list):
            raise invalid(f"{prefix}meter_properties", "meter_properties must be a list")
        for index, item in enumerate(raw_properties):
            at = f"{prefix}meter_properties.{index}"
            if not isinstance(item, dict):
                raise invalid(at, f"{at} must be an object")
            ref = _reference_of(item, PROPERTY, at, view)
            value = item.get("value")
            if value is None:
                raise missing(f"{at}.value", f"{at} needs a value")
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (int, Decimal)):
                value = decimal_text(value)
            elif not isinstance(value, str):
                raise invalid(f"{at}.value", "a property value must be a string")
            if ref in seen:
                raise invalid(f"{at}.reference", f"{ref!r} appears twice in the event")
            seen.add(ref)
            event.properties.append(PropertyIn(ref, value, _settings(item.get("dynamic_validation_settings"),
                                                                     f"{at}.dynamic_validation_settings",
                                                                     ("NUMBER", "ENUM", "STRING"))))
    return event


def check_static(event: Prepared, view: View) -> None:
    """meter_validation=STATIC: the meter, its values and properties must already exist."""
    prefix = event.prefix
    meter_row = view.resources.by_reference.get((METER, event.meter))
    streams = view.catalog_streams()
    if meter_row is None and event.meter not in streams:
        raise invalid(f"{prefix}{event.meter_field}", f"meter {event.meter!r} does not exist "
                      "(meter_validation=STATIC; send DYNAMIC, the default, to store it as NOT_MATCHED)")
    known_values = set(streams.get(event.meter, ()))
    linked_values = view.linked(meter_row, VALUE) if meter_row is not None else []
    linked_properties = view.linked(meter_row, PROPERTY) if meter_row is not None else []
    known_values |= {row.reference for row, _ in linked_values}
    for index, value in enumerate(event.values):
        if value.reference not in known_values:
            raise invalid(f"{prefix}meter_values.{index}.reference",
                          f"meter {event.meter!r} has no meter value {value.reference!r} (meter_validation=STATIC)")
    if meter_row is not None:
        properties = {row.reference: row for row, _ in linked_properties}
        for index, prop in enumerate(event.properties):
            row = properties.get(prop.reference)
            at = f"{prefix}meter_properties.{index}"
            if row is None:
                raise invalid(f"{at}.reference", f"meter {event.meter!r} has no meter property {prop.reference!r} "
                                                 "(meter_validation=STATIC)")
            kind = row.body.get("type")
            if kind == "ENUM" and prop.value not in (row.body.get("enum_values") or []):
                raise invalid(f"{at}.value", f"{prop.value!r} is not one of the values of ENUM property "
                                             f"{prop.reference!r}")
            if kind == "NUMBER":
                parse_decimal(prop.value, f"{at}.value")
        given = {v.reference for v in event.values} | {p.reference for p in event.properties}
        for row, required in linked_values + linked_properties:
            if required and row.reference not in given:
                key = "meter_values" if row.kind == VALUE else "meter_properties"
                raise missing(f"{prefix}{key}", f"meter {event.meter!r} requires {row.kind.replace('_', ' ')} "
                                                f"{row.reference!r}")


def _dynamic_needs(events: list[Prepared], view: View) -> bool:
    for event in events:
        meter_row = view.resources.by_reference.get((METER, event.meter))
        if meter_row is None:
            return True
        values = {row.reference for row, _ in view.linked(meter_row, VALUE)}
        properties = {row.reference: row for row, _ in view.linked(meter_row, PROPERTY)}
        if any(v.reference not in values for v in event.values):
            return True
        for prop in event.properties:
            row = properties.get(prop.reference)
            if row is None or (row.body.get("type") == "ENUM" and prop.value not in row.body.get("enum_values", [])):
                return True
    return False


def create_dynamic(change: ConfigChange, events: list[Prepared]) -> None:
    """meter_validation=DYNAMIC: create what the events name and does not exist yet (meter,
    values, properties, all ACTIVE), link it to the meter as not required, and add new values of
    an ENUM property. dynamic_validation_settings set type and required of what is created."""
    resources = change.resources
    for event in events:
        meter_row = resources.by_reference.get((METER, event.meter))
        meter_body = dict(meter_row.body) if meter_row is not None else {
            "name": event.meter, "status": "ACTIVE", "meter_values": [], "meter_properties": []}
        dirty = meter_row is None
        for kind, items in ((VALUE, event.values), (PROPERTY, event.properties)):
            key = "meter_values" if kind == VALUE else "meter_properties"
            links = list(meter_body.get(key, []))
            for item in items:
                row = resources.by_reference.get((kind, item.reference))
                created = row is None
                if created:
                    if kind == VALUE:
                        kind_type = item.settings.get("type") or ("AMOUNT" if item.is_amount else "NUMBER")
                        body: dict[str, Any] = {"name": item.reference, "status": "ACTIVE", "type": kind_type}
                    else:
                        kind_type = item.settings.get("type") or "STRING"
                        body = {"name": item.reference, "status": "ACTIVE", "type": kind_type}
                        if kind_type == "ENUM":
                            body["enum_values"] = [item.value]
                    row = change.put(Resource(change.new_id(PREFIX[kind], kind, item.reference), kind,
                                              item.reference, body, 0, 0))
                elif kind == PROPERTY and row.body.get("type") == "ENUM" and \
                        item.value not in (row.body.get("enum_values") or []):
                    values = [*(row.body.get("enum_values") or []), item.value]
                    if len(values) <= 300:
                        row = change.put(Resource(row.id, kind, row.reference, {**row.body, "enum_values": values},
                                                  0, 0))
                if not any(link["id"] == row.id for link in links):
                    links.append({"id": row.id, "required": bool(item.settings.get("required", False))
                                  if created else False})
                    dirty = True
            meter_body[key] = links
        if dirty:
            meter_id = meter_row.id if meter_row is not None else change.new_id(PREFIX[METER], METER, event.meter)
            change.put(Resource(meter_id, METER, event.meter, meter_body, 0, 0))


def _rejection_error(rejection: Rejection, prefix: str) -> ApiError:
    message = _LINE.sub("", rejection.message)
    if rejection.reason in ("future_timestamp", "invalid_timestamp"):
        return invalid(f"{prefix}timestamp", message)
    if rejection.reason == "missing_field":
        return missing(f"{prefix}meter_values", message)
    return invalid(f"{prefix}meter_values", message)


# ---------------------------------------------------------------- rendering


def _split_properties(text: str) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    """Stored properties -> (meter values: the numbers, meter properties: everything else)."""
    try:
        data = _decode(text)
    except msgspec.DecodeError:
        return [], []
    values, properties = [], []
    for key, value in (data.items() if isinstance(data, dict) else ()):
        if isinstance(value, bool):
            properties.append((key, "true" if value else "false"))
        elif isinstance(value, (int, Decimal)):
            values.append((key, value))
        elif isinstance(value, str):
            properties.append((key, value))
        elif value is not None:
            properties.append((key, msgspec.json.encode(value).decode()))
    return values, properties


def render(view: View, row: MeterDataRow, expand: list[str] | None = None) -> dict[str, Any]:
    values, properties = _split_properties(row.properties)
    if row.source == "duplicate":
        processed: dict[str, Any] = {"type": "DUPLICATE", "duplicate_of_meter_data_id": row.id,
                                     "duplicate": {"of_meter_data_id": row.id}}
    elif row.status in VARIANTS:
        processed = {"type": "NOT_MATCHED", "not_matched": {"variant": VARIANTS[row.status]}}
    else:
        processed = {"type": "DEFAULT"}
    customer = view.find_customer(row.customer)
    meter_row = view.resources.by_reference.get((METER, row.meter))
    out: dict[str, Any] = {
        "object_type": "METER_DATA",
        "id": row.resource_id,
        "reference": row.id,
        "type": "INGEST",
        "customer_id": view.customer_id(row.customer) if customer is not None else None,
        "customer_reference": row.customer,
        "meter_id": meter_row.id if meter_row is not None else None,
        "meter_reference": row.meter,
        "timestamp": wire_instant(row.ts),
        "created_at": wire_instant(row.received_at),
        "meter_values": [_value(view, key, number) for key, number in values],
        "meter_properties": [_property(view, key, text) for key, text in properties],
        "processed_details": processed,
        "deleted": row.deleted_at is not None,
        "late": bool(row.late),
    }
    if customer is not None and expand and "customer_id" in expand:
        out["customer"] = render_customer(view, *customer)
    return {key: value for key, value in out.items() if value is not None}


def _value(view: View, reference: str, number: Any) -> dict[str, Any]:
    row = view.resources.by_reference.get((VALUE, reference))
    item: dict[str, Any] = {"reference": reference, "number": decimal_text(number)}
    if row is not None:
        item["id"] = row.id
    return item


def _property(view: View, reference: str, text: str) -> dict[str, Any]:
    row = view.resources.by_reference.get((PROPERTY, reference))
    item: dict[str, Any] = {"reference": reference, "value": text}
    if row is not None:
        item["id"] = row.id
    return item


# ---------------------------------------------------------------- ingestion


def _validation(value: str | None) -> str:
    return "DYNAMIC" if value is None else check_choice(value, "meter_validation", VALIDATIONS)


def ingest(caller: Caller, items: list[Any], prefixes: list[str], validation: str) -> list[dict[str, Any]]:
    """Validate every event (all or nothing), create DYNAMIC resources, store, render."""
    store, env, moment = caller.store, caller.environment, caller.now
    snap = snapshot(caller)
    events = [prepare(item, prefix, snap.view, moment) for item, prefix in zip(items, prefixes, strict=True)]
    if validation == "STATIC":
        for event in events:
            check_static(event, snap.view)
    if snap.catalog_state is not None:
        validator = snap.catalog_state.validator
        validator.set_now(moment)
    else:
        validator = EventValidator(None, moment)  # no catalog: every event is NOT_MATCHED (unknown customer)
    checked = []
    for index, event in enumerate(events):
        result = validator.check(event.raw(index + 1))
        if isinstance(result, Rejection):
            record_rejection(store, env, moment, result.reason)  # per-minute ingestion figures
            raise _rejection_error(result, event.prefix)
        checked.append(NewEvent(result.id, result.customer, result.meter, result.ts, result.properties,
                                result.status, result.late))
    received = to_micros(moment)
    view = snap.view
    if validation == "DYNAMIC" and _dynamic_needs(events, snap.view):
        with config_change(store, env, received) as change:
            create_dynamic(change, events)
            view = View(env, change.resources, snap.view.document)
    outcome = insert_meter_data(store, env, checked, received)
    record_batch(store, env, moment, checked, outcome)  # per-minute ingestion figures
    duplicates = sum(1 for seq in outcome if seq is not None)
    unmatched = sum(1 for event, seq in zip(checked, outcome, strict=True) if seq is None and event.status != "matched")
    caller.metrics.observe_import(len(checked), duplicates, unmatched, {})
    rendered = []
    for event, seq in zip(checked, outcome, strict=True):
        row = MeterDataRow("duplicate" if seq is not None else "event", event.id, seq, event.customer, event.meter,
                           event.ts, event.properties, received, event.status if seq is None else "duplicate",
                           event.late if seq is None else False, None)
        rendered.append(render(view, row))
    return rendered


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
    rendered = await run_in_threadpool(ingest, caller, [data], [""], validation)
    return json_response(rendered[0], 201)


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
    rendered = await run_in_threadpool(ingest, caller, items, prefixes, validation)
    return json_response({"meter_datas": rendered}, 201)


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
    total, rows = list_meter_data(
        caller.store, caller.environment, reference=reference,
        customer=view.customer_reference(customer_id) if customer_id is not None else None,
        meter=view.meter_reference(meter_id) if meter_id is not None else None,
        deleted=deleted, processed=processed_details_type, limit=page.limit, offset=page.offset)
    expanded = multi(request, "expand")
    return json_response(envelope(request, [render(view, row, expanded) for row in rows], total, page))


def get_one(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    row = get_meter_data(caller.store, caller.environment, param(key, "resourceIdOrReference") or key)
    if row is None:
        raise not_found("meter data", key)
    return json_response(render(snapshot(caller).view, row))


def _delete(caller: Caller, key: str) -> Response:
    row = get_meter_data(caller.store, caller.environment, param(key, "resourceIdOrReference") or key)
    if row is None:
        raise not_found("meter data", key)
    if row.source == "duplicate":
        raise invalid_operation(f"{key!r} is a DUPLICATE record, which never takes effect; delete the event "
                                f"{row.id!r} itself")
    deleted = soft_delete(caller.store, caller.environment, row.id, caller.now_us)
    assert deleted is not None
    return json_response(render(snapshot(caller).view, deleted))


def delete_by_path(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    return _delete(caller, key)


async def delete_by_body(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    data = await json_body(request)
    if not isinstance(data, dict):
        raise invalid(None, "the body must be an object {\"reference\": ...}")
    key = data.get("reference") if data.get("reference") is not None else data.get("id")
    if key is None:
        raise missing("reference")
    return await run_in_threadpool(_delete, caller, _string(key, "reference"))


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
    router.add_api_route(f"{base}/{{key:path}}/delete", delete_by_path, methods=["POST"],
                         summary="Soft-delete an event (it leaves usage; idempotent)")
    router.add_api_route(f"{base}/{{key:path}}", get_one, methods=["GET"],
                         summary="Get an event by id or reference")
