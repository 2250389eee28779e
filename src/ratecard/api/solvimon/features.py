"""/v1/features: the catalog's features in Solvimon's shape (services.resources.features)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ...catalog.schema import Feature
from ...services.resources import features
from ...services.resources.model import View
from ..context import Caller, current_caller
from ..errors import invalid, not_found
from ..pagination import Page, paginate, solvimon_page
from .common import OBJECT_BODY, json_body, json_response, param
from .config import snapshot
from .vocabulary import require_object

router = APIRouter(tags=["features"])


def render(view: View, feature: Feature) -> dict[str, Any]:
    out: dict[str, Any] = {"object_type": "FEATURE", "id": features.feature_id(view.environment, feature.code),
                           "reference": feature.code, "name": feature.name or feature.code,
                           "description": feature.description, "type": features.WIRE_TYPES[feature.type]}
    if feature.type == "enum":
        out["enum_values"] = list(feature.values)
    if feature.meter is not None:
        out["meter_value_calculation_id"] = view.calculation_id(feature.meter)
    return {key: value for key, value in out.items() if value is not None}


@router.get("/v1/features", summary="List features (the catalog's)")
def list_features(request: Request, page: Page = Depends(solvimon_page),
                  caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    items = list(view.document.features) if view.document is not None else []
    return json_response(paginate(request, items, page, lambda feature: render(view, feature),
                                  {"reference": lambda feature: feature.code}, everything=True))


@router.post("/v1/features", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Create a feature (added to the catalog as a new version)")
def create_feature(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, feature = features.create(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(render(view, feature), 201)


@router.put("/v1/features", status_code=201, openapi_extra=OBJECT_BODY,
            summary="Create or update a feature found by its reference (a new catalog version)")
def upsert_feature(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    reference = data.get("reference")
    if not isinstance(reference, str):
        raise invalid("reference", "reference is required: a feature is found by its reference")
    existing = features.find(snapshot(caller).view.document, caller.environment, param(reference, "reference") or "")
    if existing is None or existing.code != reference:
        if data.get("id") is not None:
            raise invalid("id", "id: a new feature's id is derived from its reference; leave id out")
        view, feature = features.create(caller.store, caller.environment, caller.now, data)
    else:
        if data.get("id") not in (None, features.feature_id(caller.environment, existing.code)):
            raise invalid("id", f"id does not match feature {reference[:100]!r}")
        view, feature = features.update(caller.store, caller.environment, caller.now, existing.code,
                                        {k: v for k, v in data.items() if k != "id"})
    return json_response(render(view, feature), 201)


@router.get("/v1/features/{key}", summary="Get a feature by id or reference")
def get_feature(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    feature = features.find(view.document, caller.environment, key)
    if feature is None:
        raise not_found("feature", key)
    return json_response(render(view, feature))


@router.patch("/v1/features/{key}", openapi_extra=OBJECT_BODY, summary="Update a feature (a new catalog version)")
def update_feature(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, feature = features.update(caller.store, caller.environment, caller.now, key, require_object(body))
    return json_response(render(view, feature))


@router.delete("/v1/features/{key}", summary="Delete a feature no plan grants")
def delete_feature(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view, feature = features.delete(caller.store, caller.environment, caller.now, key)
    return json_response(render(view, feature))
