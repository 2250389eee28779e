"""/v1/pricing-plan-subscriptions and /v1/pricing-plan-subscription-groups: ratecard's catalog
subscriptions in Solvimon's shape (the edits are services.resources.subscriptions, over the
functions behind `ratecard subscriptions create|change|cancel`). A subscription's id is its
reference. See docs/solvimon-compat.md §14."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...catalog import Catalog, SubscriptionSpec
from ...domain.instants import to_micros
from ...domain.periods import to_local
from ...services.resources import subscription_actions as actions
from ...services.resources import subscriptions as service
from ...services.resources.model import View
from ...services.resources.subscriptions import GROUP, INTERVAL_PERIODS, SUBSCRIPTION
from ...store.resources import Resource, stable_id
from ..context import Caller, current_caller
from ..errors import invalid, not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from . import subscription_search
from .common import OBJECT_BODY, expansions, json_body, json_response, multi, param, wire_instant
from .config import Snapshot, snapshot
from .customers import render as render_customer
from .vocabulary import require_object

router = APIRouter(tags=["pricing plan subscriptions"])
EXPANDABLE = ("customer_id", "pricing_plan_subscription_group_id", "pricing_plan_id")
LIST_STATUSES = ("DRAFT", "ACTIVE", "VOID", "ARCHIVED", "CANCELLED")

# ---------------------------------------------------------------- rendering


async def optional_body(request: Request) -> Any:
    """The JSON body, or {} when there is none (the SDK sends no body for an optional request model)."""
    if not (await request.body()).strip():
        return {}
    return await json_body(request)


def _instant(moment: Any, zone: ZoneInfo) -> str | None:
    return None if moment is None else wire_instant(to_micros(to_local(moment, zone)))


def schedule_id(environment: str, reference: str, index: int) -> str:
    """A schedule (one phase of the subscription's terms) has a stable id from (subscription, index)."""
    return stable_id("pps_", environment, "schedule", f"{reference}\0{index}")


def status_of(spec: SubscriptionSpec, row: Resource | None, now: datetime) -> str:
    if row is not None and row.body.get("status") == "ARCHIVED":
        return "ARCHIVED"
    zone = ZoneInfo(spec.timezone)
    if spec.end is not None and to_local(spec.end, zone) <= now:
        return "CANCELLED"
    return "ACTIVE"


def schedules(environment: str, spec: SubscriptionSpec, row: Resource | None, now: datetime,
              catalog_plans: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One PricingPlanSchedule per set of terms (the start's, then each change's), then the DRAFT
    schedules (`catalog_plans`: the catalog's plans by code, to show a DRAFT's currency and period)."""
    catalog_plans = catalog_plans or {}
    zone = ZoneInfo(spec.timezone)
    phases = spec.phases()
    versions = (row.body.get("versions") if row is not None else None) or []
    plan_period = INTERVAL_PERIODS[spec.list_plan.interval]
    out = []
    for index, phase in enumerate(phases):
        ends = phases[index + 1].at if index + 1 < len(phases) else spec.end
        start = to_local(phase.at, zone)
        end = to_local(ends, zone) if ends is not None else None
        out.append({
            "object_type": "PRICING_PLAN_SCHEDULE", "id": schedule_id(environment, spec.reference, index),
            "type": "DEFAULT", "status": "ACTIVE", "pricing_plan_subscription_id": spec.reference,
            "pricing_plan_id": phase.plan_code,
            "pricing_plan_version_id": versions[index] if index < len(versions) else None,
            "start_at": _instant(phase.at, zone), "end_at": _instant(ends, zone),
            "pricing_currency": phase.list_plan.currency,
            "billing_period": {"type": plan_period[0], "value": plan_period[1]},
            "seats_values": [{"number": str(phase.quantity)}],
            "is_current": start <= now and (end is None or now < end),
            "ratecard": {"proration": phase.proration if index else None, "quantity": phase.quantity},
        })
    return out + draft_schedules(environment, spec.reference, row, catalog_plans)


def draft_schedules(environment: str, reference: str, row: Resource | None,
                    plans: dict[str, Any]) -> list[dict[str, Any]]:
    """The subscription's DRAFT schedules (kept on its row until activated), after its others."""
    out = []
    for entry in (row.body.get("draft_schedules") or []) if row is not None else []:
        listed = plans.get(entry["pricing_plan_id"])
        period = INTERVAL_PERIODS[listed.interval] if listed is not None else None
        shown = {
            "object_type": "PRICING_PLAN_SCHEDULE", "id": entry["id"], "type": entry.get("type", "DEFAULT"),
            "status": "DRAFT", "pricing_plan_subscription_id": reference, "pricing_plan_id": entry["pricing_plan_id"],
            "pricing_plan_version_id": entry.get("pricing_plan_version_id"), "start_at": entry.get("start_at"),
            "end_at": entry.get("end_at"), "pricing_currency": listed.currency if listed is not None else None,
            "billing_period": {"type": period[0], "value": period[1]} if period is not None else None,
            "seats_values": [{"number": str(entry["quantity"])}] if entry.get("quantity") is not None else None,
            "is_current": False}
        out.append({key: value for key, value in shown.items() if value is not None})
    return out


def render(snap: Snapshot, catalog: Catalog, reference: str, now: datetime,
           expand: tuple[str, ...] = ()) -> dict[str, Any]:
    view = snap.view
    spec = catalog.subscriptions[reference]
    row = view.resources.by_reference.get((SUBSCRIPTION, reference))
    body = row.body if row is not None else {}
    zone = ZoneInfo(spec.timezone)
    plan_period = INTERVAL_PERIODS[spec.list_plan.interval]
    infos = []
    for schedule in schedules(view.environment, spec, row, now, catalog.plans):
        info = {"id": schedule["id"], "pricing_plan_id": schedule["pricing_plan_id"],
                "pricing_plan_version_id": schedule.get("pricing_plan_version_id"),
                "start_at": schedule.get("start_at"), "end_at": schedule.get("end_at"), "status": schedule["status"]}
        if "pricing_plan_id" in expand:
            listed = catalog.document.plans
            plan = next((p for p in listed if p.code == schedule["pricing_plan_id"]), None)
            info["pricing_plan"] = {"object_type": "PRICING_PLAN", "id": schedule["pricing_plan_id"],
                                    "reference": schedule["pricing_plan_id"],
                                    "name": (plan.name or plan.code)[:256] if plan is not None else None,
                                    "pricing_currencies": [plan.currency] if plan is not None else None}
        infos.append(info)
    group = view.resources.by_id.get(body.get("group_id") or "")
    customer_found = view.find_customer(spec.customer)
    trial_end = spec.trial_end()
    out: dict[str, Any] = {
        "object_type": "PRICING_PLAN_SUBSCRIPTION", "id": reference, "reference": reference,
        "status": status_of(spec, row, now),
        "created_at": wire_instant(row.created_at) if row is not None else None,
        "updated_at": wire_instant(row.updated_at) if row is not None else None,
        "activated_at": _instant(spec.start, zone),
        "name": body.get("name"), "description": body.get("description"),
        "purchase_order_number": body.get("purchase_order_number"),
        "customer_id": view.customer_id(spec.customer), "customer_reference": spec.customer,
        "billing_period": {"type": plan_period[0], "value": plan_period[1]},
        "billing_currency": spec.list_plan.currency, "type": "BILLING", "variant": "DEFAULT",
        "initial_term": body.get("initial_term"), "renewal_term": body.get("renewal_term"),
        "auto_renewal": body.get("auto_renewal"), "custom_fields": body.get("custom_fields"),
        "payment_method_id": body.get("payment_method_id"), "pricing_plan_schedule_infos": infos,
        "pricing_plan_subscription_group_id": group.id if group is not None else None,
        "ratecard": {"plan_now": _plan_now(spec, now), "quantity": spec.quantity,
                     "requires_reference": spec.requires_reference,
                     "trial_days": spec.trial_days, "trial_end": _instant(trial_end, zone),
                     "end": _instant(spec.end, zone), "end_proration": spec.end_proration,
                     "cancellation": body.get("cancellation")},
    }
    if "customer_id" in expand and customer_found is not None:
        out["customer"] = render_customer(view, *customer_found)
    if "pricing_plan_subscription_group_id" in expand and group is not None:
        out["pricing_plan_subscription_group"] = render_group(view, group)
    return {key: value for key, value in out.items() if value is not None}


def void_schedules(environment: str, row: Resource) -> list[dict[str, Any]]:
    """A VOID subscription's schedules as they were when it was voided (it is out of the catalog)."""
    record = row.body.get("void") or {}
    phases = record.get("phases") or []
    zone = ZoneInfo(record.get("timezone") or "UTC")
    versions = row.body.get("versions") or []
    out = []
    for index, phase in enumerate(phases):
        ends = phases[index + 1]["at"] if index + 1 < len(phases) else record.get("end")
        out.append({"id": schedule_id(environment, row.reference, index), "pricing_plan_id": phase["plan"],
                    "pricing_plan_version_id": versions[index] if index < len(versions) else None,
                    "start_at": _instant(_document_moment(phase["at"]), zone),
                    "end_at": _instant(_document_moment(ends), zone) if ends is not None else None,
                    "status": "ACTIVE"})
    return out


def _document_moment(value: Any) -> Any:
    from ...catalog.edits import parse_moment

    return parse_moment(value)


def render_draft(view: View, row: Resource, expand: tuple[str, ...] = ()) -> dict[str, Any]:
    """A subscription created without a schedule: DRAFT, billing nothing until it gets one; or one
    voided: VOID, with the schedules it had."""
    body = row.body
    group = view.resources.by_id.get(body.get("group_id") or "")
    voided = body.get("status") == "VOID"
    plans = {p.code: p for p in view.document.plans} if view.document is not None else {}
    infos = void_schedules(view.environment, row) if voided else [
        {key: schedule.get(key) for key in ("id", "pricing_plan_id", "pricing_plan_version_id", "start_at", "end_at",
                                            "status")}
        for schedule in draft_schedules(view.environment, row.reference, row, plans)]
    out: dict[str, Any] = {
        "object_type": "PRICING_PLAN_SUBSCRIPTION", "id": row.reference, "reference": row.reference,
        "status": "VOID" if voided else "DRAFT", "created_at": wire_instant(row.created_at),
        "updated_at": wire_instant(row.updated_at), "payment_method_id": body.get("payment_method_id"),
        "name": body.get("name"), "description": body.get("description"),
        "purchase_order_number": body.get("purchase_order_number"),
        "customer_id": view.customer_id(body["customer"]), "customer_reference": body["customer"],
        "type": "BILLING", "variant": "DEFAULT", "initial_term": body.get("initial_term"),
        "renewal_term": body.get("renewal_term"), "auto_renewal": body.get("auto_renewal"),
        "custom_fields": body.get("custom_fields"),
        "pricing_plan_schedule_infos": [{k: v for k, v in info.items() if v is not None} for info in infos],
        "pricing_plan_subscription_group_id": group.id if group is not None else None,
        "ratecard": {"voided_at": body.get("voided_at"), "copied_from": body.get("copied_from")}
        if voided or body.get("copied_from") else None,
    }
    customer_found = view.find_customer(body["customer"])
    if "customer_id" in expand and customer_found is not None:
        out["customer"] = render_customer(view, *customer_found)
    if "pricing_plan_subscription_group_id" in expand and group is not None:
        out["pricing_plan_subscription_group"] = render_group(view, group)
    return {key: value for key, value in out.items() if value is not None}


def _plan_now(spec: SubscriptionSpec, now: datetime) -> str:
    zone = ZoneInfo(spec.timezone)
    current = spec.phases()[0]
    for phase in spec.phases()[1:]:
        if to_local(phase.at, zone) <= now:
            current = phase
    return current.plan_code


def render_group(view: View, row: Resource) -> dict[str, Any]:
    owner = row.body.get("owner")
    out = {"object_type": "PRICING_PLAN_SUBSCRIPTION_GROUP", "id": row.id, "reference": row.reference,
           "name": row.body.get("name"), "description": row.body.get("description"),
           "owner_customer_id": view.customer_id(owner) if owner is not None else None,
           "pricing_plan_subscription_ids": service.group_members(view, row),
           "created_at": wire_instant(row.created_at), "updated_at": wire_instant(row.updated_at)}
    return {key: value for key, value in out.items() if value is not None}


def _current(caller: Caller) -> tuple[Snapshot, Catalog]:
    snap = snapshot(caller)
    if snap.catalog is None:
        raise not_found("pricing plan subscription", "(no catalog has been applied in this environment)")
    return snap, snap.catalog


def one(caller: Caller, reference: str, expand: tuple[str, ...] = ()) -> dict[str, Any]:
    snap, catalog = _current(caller)
    if reference not in catalog.subscriptions:
        row = snap.view.resources.by_reference.get((SUBSCRIPTION, reference))
        if service.is_draft(row, catalog.document) or service.is_void(row, catalog.document):
            assert row is not None
            return render_draft(snap.view, row, expand)
        raise not_found("pricing plan subscription", reference)
    return render(snap, catalog, reference, caller.now, expand)


def _range(value: str | None, field: str) -> tuple[datetime | None, datetime | None] | None:
    """A filter value: one instant or date (that day, UTC) or `[start,end]` (either side may be empty)."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        parts = text[1:-1].split(",")
        if len(parts) != 2:
            raise invalid(field, f"{field} must be an instant or [start,end]")
        low, high = (_when(part.strip(), field) if part.strip() else None for part in parts)
        return low, high
    single = _when(text, field)
    return single, single.replace(hour=23, minute=59, second=59) if len(text) == 10 else single


def _when(text: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(field, f"{field} must hold ISO 8601 instants, got {text[:40]!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _within(micros: int | None, window: tuple[datetime | None, datetime | None] | None) -> bool:
    if window is None:
        return True
    if micros is None:
        return False
    low, high = window
    return (low is None or micros >= to_micros(low)) and (high is None or micros <= to_micros(high))


# ---------------------------------------------------------------- subscriptions


@router.get("/v1/pricing-plan-subscriptions", summary="List pricing plan subscriptions (the catalog's)")
def list_subscriptions(request: Request, page: Page = Depends(solvimon_page),
                       customer_id: str | None = Query(None),
                       pricing_plan_subscription_group_id: str | None = Query(None),
                       reference: str | None = Query(None), type: str | None = Query(None),
                       variant: str | None = Query(None), status: str | None = Query(None),
                       custom_field: str | None = Query(None, description="REFERENCE:VALUE"),
                       start_at: str | None = Query(None), created_at: str | None = Query(None),
                       caller: Caller = Depends(current_caller)) -> Response:
    for value, name in ((customer_id, "customer_id"), (pricing_plan_subscription_group_id,
                        "pricing_plan_subscription_group_id"), (reference, "reference"), (custom_field, "custom_field"),
                        (start_at, "start_at"), (created_at, "created_at")):
        param(value, name)
    expand = expansions(request, EXPANDABLE)
    statuses = multi(request, "statuses") + ([status] if status else [])
    for value in statuses:
        if value not in LIST_STATUSES:
            raise invalid("statuses", f"status must be among {', '.join(LIST_STATUSES)}, got {value[:40]!r}")
    for value, name, allowed in ((type, "type", ("QUOTE", "BILLING", "TEMPLATE")),
                                 (variant, "variant", ("DEFAULT", "FORWARD_BILLING", "SELF_BILLING", "SELLER"))):
        if value is not None and value not in allowed:
            raise invalid(name, f"{name} must be one of {', '.join(allowed)}")
    starts, created = _range(start_at, "start_at"), _range(created_at, "created_at")
    wanted_field = None
    if custom_field is not None:
        if ":" not in custom_field:
            raise invalid("custom_field", "custom_field must be REFERENCE:VALUE")
        wanted_field = tuple(custom_field.split(":", 1))
    snap = snapshot(caller)
    catalog = snap.catalog
    view = snap.view
    items: list[Listed] = []
    if catalog is not None and type in (None, "BILLING") and variant in (None, "DEFAULT"):
        customer = view.customer_reference(customer_id) if customer_id is not None else None
        group = view.resources.find(GROUP, pricing_plan_subscription_group_id) \
            if pricing_plan_subscription_group_id is not None else None
        drafts = [Listed(len(catalog.document.subscriptions) + i, row.reference, row.body["customer"], None, row,
                         "DRAFT" if service.is_draft(row, catalog.document) else "VOID")
                  for i, row in enumerate(view.resources.of_kind(SUBSCRIPTION))
                  if service.is_draft(row, catalog.document) or service.is_void(row, catalog.document)]
        listed = [Listed(index, entry.reference, entry.customer, catalog.subscriptions[entry.reference],
                         row := view.resources.by_reference.get((SUBSCRIPTION, entry.reference)),
                         status_of(catalog.subscriptions[entry.reference], row, caller.now))
                  for index, entry in enumerate(catalog.document.subscriptions)]
        for item in listed + drafts:
            body = item.row.body if item.row is not None else {}
            if customer is not None and item.customer != customer:
                continue
            if reference is not None and item.reference != reference:
                continue
            if pricing_plan_subscription_group_id is not None and (group is None or body.get("group_id") != group.id):
                continue
            if statuses and item.status not in statuses:
                continue
            if wanted_field is not None and not any(
                    f.get("reference") == wanted_field[0] and (f.get("value") == wanted_field[1]
                                                               or wanted_field[1] in (f.get("values") or []))
                    for f in body.get("custom_fields") or []):
                continue
            if starts is not None and not _within(item.start, starts):
                continue
            if not _within(item.row.created_at if item.row is not None else None, created):
                continue
            items.append(item)
    sort_keys = {"created_at": lambda item: (item.row.created_at if item.row else 0, item.index),
                 "reference": lambda item: item.reference, "id": lambda item: item.reference,
                 "start_at": lambda item: sortable(item.start), "status": lambda item: item.status,
                 "name": lambda item: sortable(item.row.body.get("name") if item.row else None)}

    def shown(item: Listed) -> dict[str, Any]:
        if item.spec is None:
            assert item.row is not None
            return render_draft(view, item.row, expand)
        assert catalog is not None
        return render(snap, catalog, item.reference, caller.now, expand)

    return json_response(paginate(request, items, page, shown, sort_keys, default_key="created_at"))


@dataclass
class Listed:
    index: int
    reference: str
    customer: str
    spec: SubscriptionSpec | None
    row: Resource | None
    status: str

    @property
    def start(self) -> int | None:
        if self.spec is None:
            return None
        return to_micros(to_local(self.spec.start, ZoneInfo(self.spec.timezone)))


@router.post("/v1/pricing-plan-subscriptions", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Create a pricing plan subscription (a new catalog version)")
def create_subscription(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    found = service.create(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(one(caller, found.terms["reference"]), 201)


@router.put("/v1/pricing-plan-subscriptions", status_code=201, openapi_extra=OBJECT_BODY,
            summary="Create or update a pricing plan subscription, found by identifier_field (reference)")
def upsert_subscription(body: Any = Depends(json_body), identifier_field: str | None = Query(None),
                        caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    if identifier_field not in (None, "reference", "id"):
        raise invalid("identifier_field", "identifier_field must be reference or id")
    key = data.get("id") if identifier_field == "id" else data.get("reference")
    snap = snapshot(caller)
    if isinstance(key, str) and snap.catalog is not None and key in snap.catalog.subscriptions:
        found = service.update(caller.store, caller.environment, caller.now, key,
                               {k: v for k, v in data.items() if k not in ("id", "pricing_plan_schedule_infos")})
    else:
        found = service.create(caller.store, caller.environment, caller.now, data)
    return json_response(_fresh_one(caller, found.terms["reference"]), 201)


def _fresh_one(caller: Caller, reference: str) -> dict[str, Any]:
    """Render after a write in a request that read before it: a new caller view of the store."""
    fresh = Caller(caller.store, caller.environment, caller.now, caller.catalogs, caller.solvimon, caller.metrics)
    return one(fresh, reference)


@router.post("/v1/pricing-plan-subscriptions/init", openapi_extra=OBJECT_BODY,
             summary="Create the customer (when new), the subscription and its schedule in one call")
def init_subscription(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    found, customer = service.init(caller.store, caller.environment, caller.now, require_object(body))
    reference = found.terms["reference"]
    snap, catalog = _current(caller)
    spec = catalog.subscriptions[reference]
    row = snap.view.resources.by_reference.get((SUBSCRIPTION, reference))
    customer_found = snap.view.find_customer(customer)
    return json_response({
        "customer": render_customer(snap.view, *customer_found) if customer_found is not None else None,
        "pricing_plan_subscription": render(snap, catalog, reference, caller.now),
        "pricing_plan_schedules": schedules(snap.view.environment, spec, row, caller.now, catalog.plans),
    })


@router.post("/v1/pricing-plan-subscriptions/search", openapi_extra=OBJECT_BODY,
             summary="Search subscriptions (search_fields, filter_fields); paged like the list")
def search_subscriptions(request: Request, page: Page = Depends(solvimon_page), body: Any = Depends(optional_body),
                         caller: Caller = Depends(current_caller)) -> Response:
    expand = expansions(request, EXPANDABLE)
    snap = snapshot(caller)
    items = subscription_search.search(snap, require_object(body), _everything(snap, caller.now), caller.now)
    return json_response(paginate(request, items, page, lambda item: _listed_body(snap, item, caller.now, expand),
                                  SORT_KEYS, default_key="created_at"))


def _everything(snap: Snapshot, now: datetime) -> list[Listed]:
    """Every subscription: the catalog's, then the DRAFT and VOID ones (rows only)."""
    catalog = snap.catalog
    if catalog is None:
        return []
    view = snap.view
    listed = [Listed(index, entry.reference, entry.customer, catalog.subscriptions[entry.reference],
                     row := view.resources.by_reference.get((SUBSCRIPTION, entry.reference)),
                     status_of(catalog.subscriptions[entry.reference], row, now))
              for index, entry in enumerate(catalog.document.subscriptions)]
    return listed + [Listed(len(listed) + i, row.reference, row.body["customer"], None, row,
                            "DRAFT" if service.is_draft(row, catalog.document) else "VOID")
                     for i, row in enumerate(view.resources.of_kind(SUBSCRIPTION))
                     if service.is_draft(row, catalog.document) or service.is_void(row, catalog.document)]


def _listed_body(snap: Snapshot, item: Listed, now: datetime, expand: tuple[str, ...]) -> dict[str, Any]:
    if item.spec is None:
        assert item.row is not None
        return render_draft(snap.view, item.row, expand)
    assert snap.catalog is not None
    return render(snap, snap.catalog, item.reference, now, expand)


SORT_KEYS = {"created_at": lambda item: (item.row.created_at if item.row else 0, item.index),
             "reference": lambda item: item.reference, "id": lambda item: item.reference,
             "start_at": lambda item: sortable(item.start), "status": lambda item: item.status,
             "name": lambda item: sortable(item.row.body.get("name") if item.row else None)}


@router.get("/v1/pricing-plan-subscriptions/{key:path}", summary="Get a pricing plan subscription (id = reference)")
def get_subscription(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    return json_response(one(caller, key, expansions(request, EXPANDABLE)))


@router.patch("/v1/pricing-plan-subscriptions/{key:path}", openapi_extra=OBJECT_BODY,
              summary="Update a subscription's descriptive fields, terms, custom fields or group")
def update_subscription(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    found = service.update(caller.store, caller.environment, caller.now, key, require_object(body))
    return json_response(one(caller, found.terms["reference"]))


@router.post("/v1/pricing-plan-subscriptions/{key:path}/change-plan", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Move the subscription to another plan from start_at (a new catalog version)")
def change_plan(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    found, index = service.change_plan(caller.store, caller.environment, caller.now, key, require_object(body))
    snap, catalog = _current(caller)
    reference = found.terms["reference"]
    row = snap.view.resources.by_reference.get((SUBSCRIPTION, reference))
    return json_response(schedules(snap.view.environment, catalog.subscriptions[reference], row, caller.now,
                                   catalog.plans)[index],
                         201)


@router.post("/v1/pricing-plan-subscriptions/{key:path}/cancel", openapi_extra=OBJECT_BODY,
             summary="Cancel (end) the subscription, or undo a cancellation (a new catalog version)")
def cancel_subscription(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    found = service.cancel(caller.store, caller.environment, caller.now, key, require_object(body))
    return json_response(one(caller, found.terms["reference"]))


@router.post("/v1/pricing-plan-subscriptions/{key:path}/archive",
             summary="Archive a cancelled (ended) subscription: a label, billing is unchanged")
def archive_subscription(key: str, caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    found = service.update(caller.store, caller.environment, caller.now, key, {"status": "ARCHIVED"})
    return json_response(one(caller, found.terms["reference"]))


@router.delete("/v1/pricing-plan-subscriptions/{key:path}",
               summary="Delete a DRAFT subscription (never billed); any other is cancelled or voided")
def delete_subscription(key: str, caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    shown = one(caller, key)
    actions.delete_draft(caller.store, caller.environment, caller.now, key)
    return json_response(shown)


@router.post("/v1/pricing-plan-subscriptions/{key:path}/void",
             summary="Void a subscription made in error: out of the catalog, nothing billed (refused once a final "
                     "invoice names it)")
def void_subscription(key: str, caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    found = actions.void(caller.store, caller.environment, caller.now, key)
    return json_response(_fresh_one(caller, found.terms["reference"]))


@router.post("/v1/pricing-plan-subscriptions/{key:path}/copy", openapi_extra=OBJECT_BODY,
             summary="Copy a subscription into a new DRAFT with the plan in force as a DRAFT schedule")
def copy_subscription(key: str, body: Any = Depends(optional_body), caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    data = require_object(body)
    found = actions.copy(caller.store, caller.environment, caller.now, key, data)
    return json_response(_fresh_one(caller, found.terms["reference"]))


@router.post("/v1/pricing-plan-subscriptions/{key:path}/update-payment-method", openapi_extra=OBJECT_BODY,
             summary="Keep the payment method the subscription's invoices are paid with")
def update_payment_method(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    found = actions.set_payment_method(caller.store, caller.environment, caller.now, key, require_object(body))
    return json_response(_fresh_one(caller, found.terms["reference"]))


# ---------------------------------------------------------------- groups


@router.get("/v1/pricing-plan-subscription-groups", summary="List subscription groups")
def list_groups(request: Request, page: Page = Depends(solvimon_page), owner_customer_id: str | None = Query(None),
                start_at: str | None = Query(None, description="accepted; groups have no start"),
                created_at: str | None = Query(None), caller: Caller = Depends(current_caller)) -> Response:
    param(owner_customer_id, "owner_customer_id")
    param(created_at, "created_at")
    _range(start_at, "start_at")
    created = _range(created_at, "created_at")
    expansions(request, ("owner_customer_id",))
    view = snapshot(caller).view
    owner = view.customer_reference(owner_customer_id) if owner_customer_id is not None else None
    rows = [row for row in view.resources.of_kind(GROUP)
            if (owner is None or row.body.get("owner") == owner) and _within(row.created_at, created)]
    sort_keys = {"created_at": lambda row: (row.created_at, row.id), "reference": lambda row: row.reference,
                 "id": lambda row: row.id, "name": lambda row: sortable(row.body.get("name"))}
    return json_response(paginate(request, rows, page, lambda row: _group_out(view, row, request), sort_keys,
                                  default_key="created_at"))


def _group_out(view: View, row: Resource, request: Request) -> dict[str, Any]:
    out = render_group(view, row)
    owner = row.body.get("owner")
    if "owner_customer_id" in expansions(request, ("owner_customer_id",)) and owner is not None:
        found = view.find_customer(owner)
        if found is not None:
            out["owner_customer"] = render_customer(view, *found)
    return out


@router.post("/v1/pricing-plan-subscription-groups", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Create a subscription group (a label over subscriptions)")
def create_group(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    _, row = service.create_group(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(render_group(snapshot(caller).view, row), 201)


@router.get("/v1/pricing-plan-subscription-groups/{key:path}", summary="Get a subscription group by id or reference")
def get_group(key: str, caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    view = snapshot(caller).view
    row = view.resources.find(GROUP, key)
    if row is None:
        raise not_found("subscription group", key)
    return json_response(render_group(view, row))


@router.patch("/v1/pricing-plan-subscription-groups/{key:path}", openapi_extra=OBJECT_BODY,
              summary="Update a subscription group (its members too, with pricing_plan_subscription_ids)")
def update_group(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    _, row = service.update_group(caller.store, caller.environment, caller.now, key, require_object(body))
    return json_response(render_group(snapshot(caller).view, row))


@router.delete("/v1/pricing-plan-subscription-groups/{key:path}", summary="Delete an empty subscription group")
def delete_group(key: str, caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    view, row = service.delete_group(caller.store, caller.environment, caller.now, key)
    out = render_group(view, row)
    out["pricing_plan_subscription_ids"] = []
    return json_response(out)
