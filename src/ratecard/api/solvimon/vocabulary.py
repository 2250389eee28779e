"""Meter values and meter properties: the vocabulary events and meters use. Both resources
behave alike (create, list, get, patch, delete), so their routers are built here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...services.resources.checks import CONFIG_STATUSES, check_choice, check_reference, check_text
from ...services.resources.model import LABEL, PREFIX, PROPERTY, VALUE, View, refuse_rename, users_of
from ...store.resources import Resource, config_change
from ..context import Caller, current_caller
from ..errors import already_exists, invalid, invalid_operation, missing, not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, json_body, json_response, multi, reject_nul, wire_instant
from .config import snapshot

TYPES = {VALUE: ("NUMBER", "AMOUNT"), PROPERTY: ("NUMBER", "ENUM", "STRING")}
OBJECT_TYPES = {VALUE: "METER_VALUE", PROPERTY: "METER_PROPERTY"}
MAX_ENUM_VALUES = 300


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


def _enum_values(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid("enum_values", "enum_values must be a list of strings")
    if len(value) > MAX_ENUM_VALUES:
        raise invalid("enum_values", f"enum_values holds at most {MAX_ENUM_VALUES} values")
    return list(dict.fromkeys(value))


def vocabulary_fields(kind: str, data: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The stored body of a value or property from a create (current None) or patch request."""
    body = dict(current or {})
    for name in ("name", "type") if current is None else ():
        if data.get(name) is None:
            raise missing(name)
    if "name" in data and data["name"] is not None:
        body["name"] = check_text(data["name"], "name")
    if "description" in data:
        body["description"] = check_text(data["description"], "description")
    if data.get("type") is not None:
        body["type"] = check_choice(data["type"], "type", TYPES[kind])
    if data.get("status") is not None:
        body["status"] = check_choice(data["status"], "status", CONFIG_STATUSES)
    body.setdefault("status", "DRAFT")  # Solvimon creates configuration as DRAFT unless told
    if kind == PROPERTY:
        if data.get("enum_values") is not None:
            values = _enum_values(data["enum_values"])
            if current is not None and current.get("status") == "ACTIVE" and current.get("type") == "ENUM":
                removed = [v for v in current.get("enum_values") or [] if v not in values]
                if removed:
                    raise invalid_operation(f"an ACTIVE ENUM property's values can only be added to; "
                                            f"{removed[0]!r} cannot be removed", "enum_values")
            body["enum_values"] = values
        if body.get("type") != "ENUM":
            body.pop("enum_values", None)
    return body


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
        data = require_object(body)
        if data.get("reference") is None:
            raise missing("reference")
        reference = check_reference(data["reference"])
        fields = vocabulary_fields(kind, data, None)
        with config_change(caller.store, caller.environment, caller.now_us) as change:
            if (kind, reference) in change.resources.by_reference:
                raise already_exists(label, reference)
            row = change.put(Resource(change.new_id(PREFIX[kind], kind, reference), kind, reference, fields, 0, 0))
        return json_response(render(row), 201)

    @router.get(path + "/{key:path}", summary=f"Get a {label} by id or reference")
    def get_item(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
        row = snapshot(caller).view.find(kind, key)
        if row is None:
            raise not_found(label, key)
        return json_response(render(row))

    @router.patch(path + "/{key:path}", openapi_extra=OBJECT_BODY, summary=f"Update a {label}")
    def update_item(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
        data = require_object(body)
        with config_change(caller.store, caller.environment, caller.now_us) as change:
            row = change.resources.find(kind, key)
            if row is None:
                raise not_found(label, key)
            reference = row.reference
            if data.get("reference") is not None and data["reference"] != row.reference:
                reference = check_reference(data["reference"])
                other = change.resources.by_reference.get((kind, reference))
                if other is not None:
                    raise already_exists(label, reference)
                refuse_rename(View(caller.environment, change.resources, change.catalog()), row)
            fields = vocabulary_fields(kind, data, row.body)
            row = change.put(Resource(row.id, kind, reference, fields, 0, 0))
        return json_response(render(row))

    @router.delete(path + "/{key:path}", summary=f"Delete a {label} no meter or calculation uses")
    def delete_item(key: str, caller: Caller = Depends(current_caller)) -> Response:
        with config_change(caller.store, caller.environment, caller.now_us) as change:
            row = change.resources.find(kind, key)
            if row is None:
                raise not_found(label, key)
            users = users_of(View(caller.environment, change.resources, change.catalog()), row)
            if users:
                raise invalid_operation(f"{label} {row.reference!r} is still used by {', '.join(users)}")
            change.delete(row.id)
        return json_response(render(row))
    return router
