"""/v1/pricing-plan-schedules: a subscription's plan over time (one schedule per set of terms: the
start's, then each change of plan's). Creating one goes through services.resources.subscriptions
.attach_schedule: a DRAFT subscription (made by the SDK's plain create, which cannot carry a
schedule) starts billing on the plan; one that bills already changes plan at start_at, prorated.
A DRAFT schedule waits on the subscription's row until activated (services.resources
.schedule_drafts); PATCH, DELETE, copy and migrate of the others are services.resources
.schedule_edits (a schedule in effect is history: never rewritten nor deleted). See
docs/solvimon-compat.md §14.9."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...services.errors import ServiceError
from ...services.resources import schedule_drafts as drafts
from ...services.resources import schedule_edits as edits
from ...services.resources import subscriptions as service
from ...services.resources.subscriptions import SUBSCRIPTION
from ...store.resources import stable_id
from ..context import Caller, current_caller
from ..errors import ApiError, invalid, missing, not_found
from ..pagination import SOLVIMON, Page, envelope, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, expansions, json_body, json_response, param
from .config import snapshot
from .on_demand import one_off_pricings
from .subscriptions import draft_schedules, schedule_id, schedules
from .subscriptions import one as subscription_body
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
# what PATCH hands on to the edit (the rest of ACCEPTED is checked against the schedule as it is)
EDITABLE_FIELDS = ("pricing_plan_id", "pricing_plan_version_id", "start_at", "end_at", "seats_values", "billing_period")


def _all(caller: Caller) -> list[dict[str, Any]]:
    """Every schedule of every catalog subscription, in catalog order (each one's DRAFT schedules
    after its others), then the DRAFT schedules of DRAFT subscriptions."""
    snap = snapshot(caller)
    catalog = snap.catalog
    if catalog is None:
        return []
    view = snap.view
    out = []
    for entry in catalog.document.subscriptions:
        spec = catalog.subscriptions[entry.reference]
        row = view.resources.by_reference.get((SUBSCRIPTION, entry.reference))
        out.extend(schedules(view.environment, spec, row, caller.now, catalog.plans))
    for row in view.resources.of_kind(SUBSCRIPTION):
        if service.is_draft(row, catalog.document):
            out.extend(draft_schedules(view.environment, row.reference, row, catalog.plans))
    return out


@dataclass
class Located:
    """Where a schedule id points: a catalog subscription's set of terms (index), or a DRAFT."""

    reference: str
    index: int | None
    schedule: dict[str, Any]


def _locate(caller: Caller, key: str) -> Located:
    param(key, "resourceId")
    snap = snapshot(caller)
    catalog = snap.catalog
    if catalog is not None:
        for entry in catalog.document.subscriptions:
            spec = catalog.subscriptions[entry.reference]
            for index in range(len(spec.phases())):
                if schedule_id(snap.view.environment, entry.reference, index) == key:
                    row = snap.view.resources.by_reference.get((SUBSCRIPTION, entry.reference))
                    shown = schedules(snap.view.environment, spec, row, caller.now, catalog.plans)[index]
                    return Located(entry.reference, index, shown)
    found = next((s for s in _all(caller) if s["id"] == key and s["status"] == "DRAFT"), None)
    if found is None:
        raise not_found("pricing plan schedule", key)
    return Located(found["pricing_plan_subscription_id"], None, found)


def _fresh(caller: Caller) -> Caller:
    """A new view of the store for a request that read before it wrote."""
    return Caller(caller.store, caller.environment, caller.now, caller.catalogs, caller.solvimon, caller.metrics)


def _schedule_at(caller: Caller, reference: str, index: int) -> dict[str, Any]:
    snap = snapshot(caller)
    assert snap.catalog is not None
    spec = snap.catalog.subscriptions[reference]
    row = snap.view.resources.by_reference.get((SUBSCRIPTION, reference))
    return schedules(snap.view.environment, spec, row, caller.now, snap.catalog.plans)[index]


def _draft_shown(caller: Caller, reference: str, schedule: str) -> dict[str, Any]:
    return next(s for s in _all(caller) if s["id"] == schedule and s["pricing_plan_subscription_id"] == reference)


def _refuse_unmapped(data: dict[str, Any]) -> None:
    for name, value in data.items():
        if name not in ACCEPTED and value is not None:
            raise invalid(name[:80], f"{name[:80]} does not map onto ratecard's subscription terms (docs/solvimon-"
                                     "compat.md §14.9)")


def _shown(caller: Caller, schedule: dict[str, Any], expand: tuple[str, ...]) -> dict[str, Any]:
    if "pricing_plan_subscription_id" not in expand:
        return schedule
    return {**schedule, "pricing_plan_subscription": subscription_body(caller, schedule["pricing_plan_subscription_id"])}


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
    _refuse_unmapped(data)
    key = data.get("pricing_plan_subscription_id")
    if key is None:
        raise missing("pricing_plan_subscription_id", "pricing_plan_subscription_id is required (the subscription "
                                                      "the schedule belongs to)")
    if not isinstance(key, str):
        raise invalid("pricing_plan_subscription_id", "pricing_plan_subscription_id must be a string")
    param(key, "pricing_plan_subscription_id")
    if data.get("status") not in (None, "ACTIVE", "DRAFT"):
        raise invalid("status", "status must be ACTIVE (it bills from its start) or DRAFT (kept until activated)")
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
    schedule = {name: value for name, value in data.items() if name not in ("pricing_plan_subscription_id", "status")}
    if data.get("status") == "DRAFT":
        with _request_fields():
            entry = drafts.add(caller.store, caller.environment, caller.now, key, schedule)
        fresh = _fresh(caller)
        return json_response(_shown(fresh, _draft_shown(fresh, key, entry["id"]), expand), 201)
    with _request_fields():
        found = service.attach_schedule(caller.store, caller.environment, caller.now, key, schedule)
    fresh = _fresh(caller)
    reference = found.terms["reference"]
    mine = [s for s in _all(fresh) if s["pricing_plan_subscription_id"] == reference and s["status"] == "ACTIVE"]
    return json_response(_shown(fresh, mine[-1], expand), 201)


@contextmanager
def _request_fields() -> Iterator[None]:
    """A service error names the request's own field, not the path of the schedule list or of the
    catalog check it went through."""
    try:
        yield
    except ServiceError as exc:
        if exc.field and exc.field.startswith(DRAFT_PREFIX):
            exc.field = exc.field[len(DRAFT_PREFIX):]
        elif exc.field and exc.field.startswith("subscriptions["):  # the catalog's check of the new terms
            leaf = exc.field.rsplit(".", 1)[-1]
            exc.field = {"plan": "pricing_plan_id", "at": "start_at", "quantity": "seats_values",
                         "start": "start_at", "end": "end_at"}.get(leaf, exc.field)
        raise


@router.get("/v1/pricing-plan-schedules/{key}", summary="Get a pricing plan schedule by id")
def get_schedule(key: str, request: Request, include_combined_pricing_plan_version: bool | None = Query(None),
                 caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    return json_response(_shown(caller, _find(caller, key), expansions(request, EXPANDABLE)))


@router.patch("/v1/pricing-plan-schedules/{key}", openapi_extra=OBJECT_BODY,
              summary="Update a schedule: any field of a DRAFT; plan, start and seats of one not yet in effect; "
                      "end_at of the last (a cancellation)")
def update_schedule(key: str, request: Request, body: Any = Depends(json_body),
                    set_previous_end_at: bool | None = Query(None, description="accepted: schedules always meet"),
                    set_next_start_at: bool | None = Query(None, description="accepted: schedules always meet"),
                    caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    expand = expansions(request, EXPANDABLE)
    _refuse_unmapped(data)
    located = _locate(caller, key)
    for name in ("pricing_plan_subscription_id", "id"):
        if data.get(name) not in (None, located.reference if name != "id" else key):
            raise invalid(name, f"{name} of a schedule cannot change")
    if data.get("type") not in (None, located.schedule["type"]):
        raise invalid("type", "a schedule's type cannot change")
    if data.get("status") not in (None, located.schedule["status"]):
        raise invalid("status", "a schedule's status changes by activating it (POST …/activate), never by PATCH")
    if data.get("pricing_currency") not in (None, located.schedule.get("pricing_currency")):
        raise invalid("pricing_currency", "a schedule bills in its plan's currency: change the plan instead")
    changes = {k: v for k, v in data.items() if k in EDITABLE_FIELDS}
    with _request_fields():
        if located.index is None:
            drafts.update(caller.store, caller.environment, caller.now, key, changes)
            fresh = _fresh(caller)
            return json_response(_shown(fresh, _draft_shown(fresh, located.reference, key), expand))
        _, placed = edits.update(caller.store, caller.environment, caller.now, located.reference, located.index,
                                 changes)
    fresh = _fresh(caller)
    return json_response(_shown(fresh, _schedule_at(fresh, located.reference, placed), expand))


@router.delete("/v1/pricing-plan-schedules/{key}",
               summary="Delete a schedule not yet in effect (a DRAFT, a change still to come, the first schedule "
                       "of a subscription not started)")
def delete_schedule(key: str, caller: Caller = Depends(current_caller)) -> Response:
    located = _locate(caller, key)
    if located.index is None:
        drafts.delete(caller.store, caller.environment, caller.now, key)
    else:
        edits.delete(caller.store, caller.environment, caller.now, located.reference, located.index)
    return json_response({**located.schedule, "is_current": False})


@router.post("/v1/pricing-plan-schedules/activate",
             summary="Activate every DRAFT schedule of a subscription (earliest start first)")
def activate_schedules(request: Request, pricing_plan_subscription_id: str | None = Query(None),
                       caller: Caller = Depends(current_caller)) -> Response:
    if pricing_plan_subscription_id is None:
        raise missing("pricing_plan_subscription_id", "pricing_plan_subscription_id is required (whose DRAFT "
                                                      "schedules to activate)")
    param(pricing_plan_subscription_id, "pricing_plan_subscription_id")
    with _request_fields():
        reference, done = drafts.activate_all(caller.store, caller.environment, caller.now,
                                              pricing_plan_subscription_id)
    fresh = _fresh(caller)
    mine = [s for s in _all(fresh) if s["pricing_plan_subscription_id"] == reference and s["status"] == "ACTIVE"]
    made = mine[len(mine) - len(done):] if done else []
    return json_response(envelope(request, made, len(made), Page(max(len(made), 1), 1, None, False, False, SOLVIMON)))


@router.post("/v1/pricing-plan-schedules/{key}/activate", summary="Activate a DRAFT schedule (it bills from then on)")
def activate_schedule(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    expand = expansions(request, EXPANDABLE)
    located = _locate(caller, key)
    if located.index is not None:
        raise ApiError(400, "INVALID_OPERATION", f"pricing plan schedule {key!r} is ACTIVE already")
    with _request_fields():
        found, _ = drafts.activate(caller.store, caller.environment, caller.now, key)
    fresh = _fresh(caller)
    mine = [s for s in _all(fresh) if s["pricing_plan_subscription_id"] == found.terms["reference"]
            and s["status"] == "ACTIVE"]
    return json_response(_shown(fresh, mine[-1], expand))


@router.post("/v1/pricing-plan-schedules/{key}/copy", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Copy a schedule's plan and seats from start_at (a change of plan, or a DRAFT)")
def copy_schedule(key: str, request: Request, body: Any = Depends(json_body),
                  set_previous_end_at: bool | None = Query(None, description="accepted: schedules always meet"),
                  set_next_start_at: bool | None = Query(None, description="refused when true"),
                  caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    expand = expansions(request, EXPANDABLE)
    if set_next_start_at:
        raise invalid("set_next_start_at", "a copied schedule runs until the subscription ends: there is no later "
                                           "schedule to move")
    return _from_billed(caller, key, data, expand, edits.copy,
                        "a DRAFT schedule is copied by posting another DRAFT schedule with its fields")


@router.post("/v1/pricing-plan-schedules/{key}/migrate", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Move the subscription to an ACTIVE pricing plan version from start_at (a prorated change of "
                     "plan)")
def migrate_schedule(key: str, request: Request, body: Any = Depends(json_body),
                     set_previous_end_at: bool | None = Query(None, description="accepted: schedules always meet"),
                     caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    expand = expansions(request, EXPANDABLE)
    return _from_billed(caller, key, data, expand, edits.migrate,
                        "a DRAFT schedule bills nothing yet: PATCH its pricing_plan_id instead")


def _from_billed(caller: Caller, key: str, data: dict[str, Any], expand: tuple[str, ...],
                 edit: Callable[..., tuple[Any, int | None, dict[str, Any] | None]], draft_refusal: str) -> Response:
    """A new schedule made by `edit` from a billed (non-DRAFT) one: a DRAFT is refused with
    `draft_refusal`, since it has no place in the subscription's schedules to start from."""
    located = _locate(caller, key)
    if located.index is None:
        raise ApiError(400, "INVALID_OPERATION", draft_refusal)
    with _request_fields():
        _found, index, draft = edit(caller.store, caller.environment, caller.now, located.reference, located.index,
                                    data)
    return _made(caller, located.reference, index, draft, expand)


def _made(caller: Caller, reference: str, index: int | None, draft: dict[str, Any] | None,
          expand: tuple[str, ...]) -> Response:
    fresh = _fresh(caller)
    if draft is not None:
        return json_response(_shown(fresh, _draft_shown(fresh, reference, draft["id"]), expand), 201)
    assert index is not None
    return json_response(_shown(fresh, _schedule_at(fresh, reference, index), expand), 201)


@router.get("/v1/pricing-plan-schedules/{key}/on-demand-pricing-items",
            summary="The schedule's one-off charges (ratecard's on-demand pricings), as pricing categories")
def on_demand_pricing_items(key: str, timestamp: str | None = Query(None, description="accepted: a schedule has "
                                                                    "one plan version"),
                            caller: Caller = Depends(current_caller)) -> Response:
    param(timestamp, "timestamp")
    located = _locate(caller, key)
    snap = snapshot(caller)
    spec = snap.catalog.subscriptions.get(located.reference) if snap.catalog is not None else None
    schedule = located.schedule
    pricings = one_off_pricings(snap.view.environment, spec, located.index, key, schedule.get("pricing_currency") or
                                spec.list_plan.currency) if spec is not None and located.index is not None else []
    out = {"pricing_plan_subscription_id": located.reference, "pricing_plan_schedule_id": key,
           "pricing_plan_version_id": schedule.get("pricing_plan_version_id"),
           "pricing_categories": [{"object_type": "PRICING_CATEGORY",
                                   "id": stable_id("pcat_", snap.view.environment, "one_off", key),
                                   "pricings": pricings, "display_order": 0}] if pricings else []}
    return json_response({k: v for k, v in out.items() if v is not None})
