"""/v1/pricing-plan-schedules: a subscription's plan over time (one schedule per set of terms: the
start's, then each change of plan's). Creating one goes through services.resources.subscriptions
.attach_schedule: a DRAFT subscription (made by the SDK's plain create, which cannot carry a
schedule) starts billing on the plan; one that bills already changes plan at start_at, prorated.
See docs/solvimon-compat.md §14.9."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...services.errors import ServiceError
from ...services.resources import subscriptions as service
from ...services.resources.subscriptions import SUBSCRIPTION
from ..context import Caller, current_caller
from ..errors import invalid, missing, not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, expansions, json_body, json_response, param
from .config import snapshot
from .subscriptions import render as render_subscription
from .subscriptions import schedules
from .vocabulary import require_object

router = APIRouter(tags=["pricing plan schedules"])
EXPANDABLE = ("pricing_plan_subscription_id",)
STATUSES = ("DRAFT", "ACTIVE")
# what a schedule request may carry; anything else (discounts, pricing overrides, coupons, ...)
# has no place in ratecard's subscription terms and is refused with its path, never dropped
ACCEPTED = {"object_type", "id", "type", "status", "pricing_plan_subscription_id", "pricing_plan_id",
            "pricing_plan_version_id", "start_at", "end_at", "pricing_currency", "billing_period", "seats_values",
            "is_current", "created_at", "updated_at"}
DRAFT_PREFIX = "pricing_plan_schedules.0."


def _all(caller: Caller) -> list[dict[str, Any]]:
    """Every schedule of every catalog subscription, in catalog order."""
    snap = snapshot(caller)
    catalog = snap.catalog
    if catalog is None:
        return []
    view = snap.view
    out = []
    for entry in catalog.document.subscriptions:
        spec = catalog.subscriptions[entry.reference]
        row = view.resources.by_reference.get((SUBSCRIPTION, entry.reference))
        out.extend(schedules(view.environment, spec, row, caller.now))
    return out


def _shown(caller: Caller, schedule: dict[str, Any], expand: tuple[str, ...]) -> dict[str, Any]:
    if "pricing_plan_subscription_id" not in expand:
        return schedule
    snap = snapshot(caller)
    assert snap.catalog is not None
    return {**schedule, "pricing_plan_subscription": render_subscription(
        snap, snap.catalog, schedule["pricing_plan_subscription_id"], caller.now)}


def _find(caller: Caller, key: str) -> dict[str, Any]:
    found = next((s for s in _all(caller) if s["id"] == key), None)
    if found is None:
        raise not_found("pricing plan schedule", key)
    return found


@router.get("/v1/pricing-plan-schedules", summary="List pricing plan schedules (the catalog subscriptions' terms)")
def list_schedules(request: Request, page: Page = Depends(solvimon_page),
                   pricing_plan_subscription_id: str | None = Query(None), status: str | None = Query(None),
                   caller: Caller = Depends(current_caller)) -> Response:
    param(pricing_plan_subscription_id, "pricing_plan_subscription_id")
    if status is not None and status not in STATUSES:
        raise invalid("status", f"status must be one of {', '.join(STATUSES)}")
    expand = expansions(request, EXPANDABLE)
    items = [s for s in _all(caller)
             if (pricing_plan_subscription_id is None or s["pricing_plan_subscription_id"] == pricing_plan_subscription_id)
             and (status is None or s["status"] == status)]
    if request.query_params.get("order_direction") is None:
        page.descending = False  # a timeline: each subscription's schedules oldest first (the SDK cannot order)
    sort_keys = {"start_at": lambda s: sortable(s["start_at"]), "id": lambda s: s["id"]}
    return json_response(paginate(request, items, page, lambda s: _shown(caller, s, expand), sort_keys))


@router.post("/v1/pricing-plan-schedules", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Give a subscription a schedule: a DRAFT starts billing, an active one changes plan")
def create_schedule(request: Request, body: Any = Depends(json_body),
                    set_previous_end_at: bool | None = Query(None, description="accepted: the previous schedule "
                                                             "always ends where the new one starts"),
                    set_next_start_at: bool | None = Query(None, description="refused when true: ratecard's "
                                                           "schedules only ever run to the subscription's end"),
                    caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    expand = expansions(request, EXPANDABLE)
    if set_previous_end_at and set_next_start_at:
        raise invalid("set_next_start_at", "set_previous_end_at and set_next_start_at are mutually exclusive")
    if set_next_start_at:
        raise invalid("set_next_start_at", "a new schedule runs from start_at until the subscription ends: there is "
                                           "no later schedule to move")
    for name, value in data.items():
        if name not in ACCEPTED and value is not None:
            raise invalid(name[:80], f"{name[:80]} does not map onto ratecard's subscription terms (docs/solvimon-"
                                     "compat.md §14.9)")
    key = data.get("pricing_plan_subscription_id")
    if key is None:
        raise missing("pricing_plan_subscription_id", "pricing_plan_subscription_id is required (the subscription "
                                                      "the schedule belongs to)")
    if not isinstance(key, str):
        raise invalid("pricing_plan_subscription_id", "pricing_plan_subscription_id must be a string")
    param(key, "pricing_plan_subscription_id")
    if data.get("status") not in (None, "ACTIVE"):
        raise invalid("status", "a schedule bills from its start: it is ACTIVE (a DRAFT subscription is one without "
                                "a schedule)")
    row = snapshot(caller).view.resources.by_reference.get((SUBSCRIPTION, key))
    catalog = snapshot(caller).catalog
    draft = service.is_draft(row, catalog.document if catalog is not None else None)
    if not draft and (catalog is None or key not in catalog.subscriptions):
        raise not_found("pricing plan subscription", key)
    if not draft:
        for name, allowed in (("end_at", (None,)), ("type", (None, "DEFAULT"))):
            if data.get(name) not in allowed:
                raise invalid(name, f"{name} is only taken by a DRAFT subscription's first schedule: a change of "
                                    "plan runs until the subscription ends (cancel it to end it)")
        if data.get("pricing_currency") is not None:
            raise invalid("pricing_currency", "a change of plan bills in the new plan's currency: leave "
                                              "pricing_currency out")
    schedule = {name: value for name, value in data.items() if name != "pricing_plan_subscription_id"}
    try:
        found = service.attach_schedule(caller.store, caller.environment, caller.now, key, schedule)
    except ServiceError as exc:
        if exc.field and exc.field.startswith(DRAFT_PREFIX):
            exc.field = exc.field[len(DRAFT_PREFIX):]  # the request's own path to the field at fault
        elif exc.field and exc.field.startswith("subscriptions["):  # the catalog's check of the new terms
            leaf = exc.field.rsplit(".", 1)[-1]
            exc.field = {"plan": "pricing_plan_id", "at": "start_at", "quantity": "seats_values"}.get(leaf, exc.field)
        raise
    fresh = Caller(caller.store, caller.environment, caller.now, caller.catalogs, caller.solvimon, caller.metrics)
    reference = found.terms["reference"]
    mine = [s for s in _all(fresh) if s["pricing_plan_subscription_id"] == reference]
    return json_response(_shown(fresh, mine[-1], expand), 201)


@router.get("/v1/pricing-plan-schedules/{key}", summary="Get a pricing plan schedule by id")
def get_schedule(key: str, request: Request, include_combined_pricing_plan_version: bool | None = Query(None),
                 caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    return json_response(_shown(caller, _find(caller, key), expansions(request, EXPANDABLE)))
