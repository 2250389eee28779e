"""/v1/meters: event schemas. A meter's reference is what events send as meter_reference (the
ratecard event stream); it lists the meter values and properties its events carry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...services.resources import meters
from ...services.resources.checks import CONFIG_STATUSES, check_choice
from ...services.resources.model import METER, VALUE, View
from ...store.resources import Resource
from ..context import Caller, current_caller
from ..errors import not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, json_body, json_response, multi, wire_instant
from .config import snapshot
from .vocabulary import render as render_vocabulary
from .vocabulary import require_object

router = APIRouter(tags=["meters"])


def render(view: View, row: Resource, expand: list[str] | None = None) -> dict[str, Any]:
    body = row.body
    wanted = " ".join(expand or [])
    out: dict[str, Any] = {"object_type": "METER", "id": row.id, "reference": row.reference,
                           "name": body.get("name"), "description": body.get("description"),
                           "status": body.get("status"), "created_at": wire_instant(row.created_at),
                           "updated_at": wire_instant(row.updated_at)}
    for kind, key in meters.LINKS.items():
        links = []
        for linked, required in view.linked(row, kind):
            link: dict[str, Any] = {"id": linked.id, "reference": linked.reference, "required": required}
            if ("value" if kind == VALUE else "propert") in wanted:
                link["object"] = render_vocabulary(linked)
            links.append(link)
        out[key] = links
    return {key: value for key, value in out.items() if value is not None}


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
    view, row = meters.create(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(render(view, row), 201)


@router.get("/v1/meters/{key:path}/meter-data-file",
            summary="Solvimon's CSV upload template for this meter's events (header row)")
def meter_data_file(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    row = view.find(METER, key)
    if row is None:
        raise not_found("meter", key)
    file_name, text = meters.data_file(view, row)
    return Response(text, media_type="text/csv", headers={"content-disposition": f'attachment; filename="{file_name}"'})


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
    view, row = meters.update(caller.store, caller.environment, caller.now, key, require_object(body))
    return json_response(render(view, row))


@router.delete("/v1/meters/{key:path}", summary="Delete a meter no calculation uses")
def delete_meter(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view, row = meters.delete(caller.store, caller.environment, caller.now, key)
    return json_response(render(view, row))
