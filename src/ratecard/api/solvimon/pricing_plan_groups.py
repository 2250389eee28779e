"""/v1/pricing-plan-groups: named, ordered sets of pricing plans with a lifecycle, in Solvimon's
shape (services.resources.pricing_plan_groups). A group is stored, listed and shown; it does not
change billing (docs/solvimon-compat.md §15.5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ...services.resources import pricing_plan_groups as groups
from ...services.resources.model import View
from ...services.resources.pricing_plans import plan_id
from ...store.resources import Resource
from ..context import Caller, current_caller
from ..errors import not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, json_body, json_response, param, wire_instant
from .config import snapshot
from .vocabulary import require_object

router = APIRouter(tags=["pricing plan groups"])
PATH = "/v1/pricing-plan-groups"


def render(view: View, row: Resource) -> dict[str, Any]:
    body = row.body
    out = {"object_type": "PRICING_PLAN_GROUP", "id": row.id, "reference": row.reference, "name": body.get("name"),
           "status": body.get("status", "DRAFT"),
           **{name: body.get(name) for name in groups.POLICIES},
           "pricing_plans": [{"pricing_plan_id": plan_id(view.environment, code), "order": order}
                             for code, order in groups.members(view, row)],
           "created_at": wire_instant(row.created_at), "updated_at": wire_instant(row.updated_at)}
    return {key: value for key, value in out.items() if value is not None}


SORT = {"created_at": lambda r: (r.created_at, r.id), "updated_at": lambda r: (r.updated_at, r.id),
        "reference": lambda r: r.reference, "id": lambda r: r.id, "name": lambda r: sortable(r.body.get("name")),
        "status": lambda r: r.body.get("status", "")}


@router.get(PATH, summary="List pricing plan groups")
def list_groups(request: Request, page: Page = Depends(solvimon_page),
                caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    return json_response(paginate(request, view.resources.of_kind(groups.KIND), page, lambda r: render(view, r),
                                  SORT, default_key="created_at"))


@router.post(PATH, status_code=201, openapi_extra=OBJECT_BODY,
             summary="Create a pricing plan group (DRAFT unless a status is given)")
def create_group(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, row = groups.create(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(render(view, row), 201)


@router.get(PATH + "/{key}", summary="Get a pricing plan group by id or reference")
def get_group(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    row = view.resources.find(groups.KIND, param(key, "resourceIdOrReference"))
    if row is None:
        raise not_found("pricing plan group", key)
    return json_response(render(view, row))


@router.patch(PATH + "/{key}", openapi_extra=OBJECT_BODY,
              summary="Update a pricing plan group (its members are replaced when pricing_plans is given)")
def update_group(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, row = groups.update(caller.store, caller.environment, caller.now, param(key, "key") or key,
                              require_object(body))
    return json_response(render(view, row))


@router.delete(PATH + "/{key}", summary="Delete a pricing plan group (its plans are untouched)")
def delete_group(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view, row = groups.delete(caller.store, caller.environment, caller.now, param(key, "key") or key)
    return json_response(render(view, row))


def _transition(target: str) -> Any:
    def transition(key: str, caller: Caller = Depends(current_caller)) -> Response:
        view, row = groups.change_status(caller.store, caller.environment, caller.now, param(key, "key") or key,
                                         target)
        return json_response(render(view, row))

    return transition


for _action, _target in (("activate", "ACTIVE"), ("archive", "ARCHIVED"), ("deprecate", "DEPRECATED")):
    router.add_api_route(PATH + "/{key}/" + _action, _transition(_target), methods=["PATCH"],
                         name=f"{_action}_pricing_plan_group", summary=f"Set a pricing plan group's status to {_target}")
