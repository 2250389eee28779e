"""Meter values and meter properties: the vocabulary events and meters use. Both resources
behave alike (create, list, get, patch, delete), so their routers are built here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...services.resources import vocabulary
from ...services.resources.checks import CONFIG_STATUSES, check_choice
from ...services.resources.model import LABEL, PROPERTY, VALUE
from ...store.resources import Resource
from ..context import Caller, current_caller
from ..errors import invalid, not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, json_body, json_response, multi, reject_nul, wire_instant
from .config import snapshot

OBJECT_TYPES = {VALUE: "METER_VALUE", PROPERTY: "METER_PROPERTY"}


def render(row: Resource) -> dict[str, Any]:
    body = row.body
    out: dict[str, Any] = {"object_type": OBJECT_TYPES[row.kind], "id": row.id, "reference": row.reference,
                           "name": body.get("name"), "description": body.get("description"),
                           "status": body.get("status"), "type": body.get("type"),
                           "created_at": wire_instant(row.created_at), "updated_at": wire_instant(row.updated_at)}
    if row.kind == PROPERTY and body.get("type") == "ENUM":
        out["enum_values"] = list(body.get("enum_values") or [])
    return {key: value for key, value in out.items() if value is not None}


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid(None, "the body must be a JSON object")
    return reject_nul(body)


def _sort_keys() -> dict[str, Callable[[Resource], Any]]:
    return {"created_at": lambda r: (r.created_at, r.id), "updated_at": lambda r: (r.updated_at, r.id),
            "reference": lambda r: r.reference, "id": lambda r: r.id,
            "name": lambda r: sortable(r.body.get("name")), "status": lambda r: sortable(r.body.get("status"))}


def build_router(kind: str, path: str, tag: str) -> APIRouter:
    router = APIRouter(tags=[tag])
    label = LABEL[kind]

    @router.get(path, summary=f"List {label}s (every one; filter with statuses[])")
    def list_items(request: Request, page: Page = Depends(solvimon_page),
                   statuses: list[str] | None = Query(None, alias="statuses[]"),
                   caller: Caller = Depends(current_caller)) -> Response:
        wanted = multi(request, "statuses")
        for status in wanted:
            check_choice(status, "statuses[]", CONFIG_STATUSES)
        view = snapshot(caller).view
        rows = [r for r in view.resources.of_kind(kind) if not wanted or r.body.get("status") in wanted]
        return json_response(paginate(request, rows, page, render, _sort_keys(), everything=True))

    @router.post(path, status_code=201, openapi_extra=OBJECT_BODY, summary=f"Create a {label}")
    def create_item(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
        row = vocabulary.create(caller.store, caller.environment, caller.now, kind, require_object(body))
        return json_response(render(row), 201)

    @router.get(path + "/{key:path}", summary=f"Get a {label} by id or reference")
    def get_item(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
        row = snapshot(caller).view.find(kind, key)
        if row is None:
            raise not_found(label, key)
        return json_response(render(row))

    @router.patch(path + "/{key:path}", openapi_extra=OBJECT_BODY, summary=f"Update a {label}")
    def update_item(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
        row = vocabulary.update(caller.store, caller.environment, caller.now, kind, key, require_object(body))
        return json_response(render(row))

    @router.delete(path + "/{key:path}", summary=f"Delete a {label} no meter or calculation uses")
    def delete_item(key: str, caller: Caller = Depends(current_caller)) -> Response:
        return json_response(render(vocabulary.delete(caller.store, caller.environment, caller.now, kind, key)))
    return router
