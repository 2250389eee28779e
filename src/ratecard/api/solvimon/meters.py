"""/v1/meters: event schemas. A meter's reference is what events send as meter_reference (the
ratecard event stream); it lists the meter values and properties its events carry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...services.resources.checks import CONFIG_STATUSES, check_choice, check_reference, check_text
from ...services.resources.model import METER, PREFIX, PROPERTY, VALUE, View, refuse_rename, users_of
from ...store.resources import ConfigChange, Resource, config_change
from ..context import Caller, current_caller
from ..errors import already_exists, invalid, invalid_operation, missing, not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, json_body, json_response, multi, wire_instant
from .config import snapshot
from .vocabulary import render as render_vocabulary
from .vocabulary import require_object, vocabulary_fields

router = APIRouter(tags=["meters"])
LINKS = {VALUE: "meter_values", PROPERTY: "meter_properties"}


def render(view: View, row: Resource, expand: list[str] | None = None) -> dict[str, Any]:
    body = row.body
    wanted = " ".join(expand or [])
    out: dict[str, Any] = {"object_type": "METER", "id": row.id, "reference": row.reference,
                           "name": body.get("name"), "description": body.get("description"),
                           "status": body.get("status"), "created_at": wire_instant(row.created_at),
                           "updated_at": wire_instant(row.updated_at)}
    for kind, key in LINKS.items():
        links = []
        for linked, required in view.linked(row, kind):
            link: dict[str, Any] = {"id": linked.id, "reference": linked.reference, "required": required}
            if ("value" if kind == VALUE else "propert") in wanted:
                link["object"] = render_vocabulary(linked)
            links.append(link)
        out[key] = links
    return {key: value for key, value in out.items() if value is not None}


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


def _expand(request: Request) -> list[str]:
    return multi(request, "expand")


SORT_KEYS = {"created_at": lambda r: (r.created_at, r.id), "updated_at": lambda r: (r.updated_at, r.id),
             "reference": lambda r: r.reference, "id": lambda r: r.id,
             "name": lambda r: sortable(r.body.get("name")), "status": lambda r: sortable(r.body.get("status"))}


@router.get("/v1/meters", summary="List meters (every one; filter with statuses[])")
def list_meters(request: Request, page: Page = Depends(solvimon_page),
                statuses: list[str] | None = Query(None, alias="statuses[]"),
                expand: list[str] | None = Query(None, alias="expand[]"),
                caller: Caller = Depends(current_caller)) -> Response:
    wanted = multi(request, "statuses")
    for status in wanted:
        check_choice(status, "statuses[]", CONFIG_STATUSES)
    view = snapshot(caller).view
    rows = [r for r in view.resources.of_kind(METER) if not wanted or r.body.get("status") in wanted]
    expanded = _expand(request)
    return json_response(paginate(request, rows, page, lambda r: render(view, r, expanded), SORT_KEYS,
                                  everything=True))


@router.post("/v1/meters", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Create a meter (the schema of one event stream)")
def create_meter(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    if data.get("reference") is None:
        raise missing("reference")
    reference = check_reference(data["reference"])
    with config_change(caller.store, caller.environment, caller.now_us) as change:
        if (METER, reference) in change.resources.by_reference:
            raise already_exists("meter", reference)
        fields = meter_fields(change, data, None)
        row = change.put(Resource(change.new_id(PREFIX[METER], METER, reference), METER, reference, fields, 0, 0))
        view = View(caller.environment, change.resources, None)
        return json_response(render(view, row), 201)


@router.get("/v1/meters/{key:path}/meter-data-file",
            summary="Solvimon's CSV upload template for this meter's events (header row)")
def meter_data_file(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    row = view.find(METER, key)
    if row is None:
        raise not_found("meter", key)
    columns = ["customer_reference", "pricing_plan_subscription_reference", "reference", "timestamp",
               "meter_reference"]
    columns += [linked.reference for linked, _ in view.linked(row, VALUE)]
    columns += [linked.reference for linked, _ in view.linked(row, PROPERTY)]
    return Response(",".join(columns) + "\n", media_type="text/csv",
                    headers={"content-disposition": f'attachment; filename="{row.reference}.csv"'})


@router.get("/v1/meters/{key:path}", summary="Get a meter by id or reference")
def get_meter(key: str, request: Request, expand: list[str] | None = Query(None, alias="expand[]"),
              caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    row = view.find(METER, key)
    if row is None:
        raise not_found("meter", key)
    return json_response(render(view, row, _expand(request)))


@router.patch("/v1/meters/{key:path}", openapi_extra=OBJECT_BODY,
              summary="Update a meter (given lists replace the previous ones)")
def update_meter(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    with config_change(caller.store, caller.environment, caller.now_us) as change:
        row = change.resources.find(METER, key)
        if row is None:
            raise not_found("meter", key)
        view = View(caller.environment, change.resources, change.catalog())
        reference = row.reference
        if data.get("reference") is not None and data["reference"] != row.reference:
            reference = check_reference(data["reference"])
            if (METER, reference) in change.resources.by_reference:
                raise already_exists("meter", reference)
            refuse_rename(view, row)
        fields = meter_fields(change, data, row.body)
        _keep_calculation_links(view, row, fields)
        row = change.put(Resource(row.id, METER, reference, fields, 0, 0))
        return json_response(render(View(caller.environment, change.resources, None), row))


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


@router.delete("/v1/meters/{key:path}", summary="Delete a meter no calculation uses")
def delete_meter(key: str, caller: Caller = Depends(current_caller)) -> Response:
    with config_change(caller.store, caller.environment, caller.now_us) as change:
        row = change.resources.find(METER, key)
        if row is None:
            raise not_found("meter", key)
        view = View(caller.environment, change.resources, change.catalog())
        users = users_of(view, row)
        if users:
            raise invalid_operation(f"meter {row.reference!r} is still used by {', '.join(users)}")
        rendered = render(view, row)
        change.delete(row.id)
    return json_response(rendered)
