"""/v1/pricing-plans, /v1/pricing-plan-versions, /v1/pricings, /v1/pricing-groups: catalog plans
in Solvimon's shapes. A pricing plan's reference is the plan code; a version is drafted with
pricings and published (status ACTIVE) as a new catalog version (services.resources.pricing_plans).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ...catalog.schema import Plan
from ...services.resources import pricing_plans as plans
from ...services.resources.model import View
from ...services.resources.pricing_charges import config_of, filter_config
from ...services.resources.pricing_plans import GROUP, PRICING, VERSION
from ...store.resources import Resource, stable_id
from ..context import Caller, current_caller
from ..errors import invalid, not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, json_body, json_response, multi, param
from .config import snapshot
from .search import Field, search, search_body
from .vocabulary import require_object

router = APIRouter(tags=["pricing plans"])
VERSION_STATUSES = ("DRAFT", "ACTIVE", "ARCHIVED", "DEPRECATED")

# ---------------------------------------------------------------- rendering


def _version_infos(view: View, code: str, plan: Plan | None) -> list[dict[str, Any]]:
    rows = plans.versions_of(view, plans.plan_id(view.environment, code))
    infos = [{"id": row.id, "version": row.body.get("version"), "status": row.body.get("status")} for row in rows]
    if plan is not None and not any(info["status"] == "ACTIVE" for info in infos):
        # a plan applied as YAML (or changed by a catalog apply since): its catalog plan is version 1
        infos.insert(0, {"id": plans.catalog_version_id(view.environment, code), "version": 1, "status": "ACTIVE"})
    return infos


def render_plan(view: View, code: str, plan: Plan | None, row: Resource | None) -> dict[str, Any]:
    body = row.body if row is not None else {}
    currencies = body.get("pricing_currencies")
    if plan is not None:
        currencies = [plan.currency, *(c for c in plan.currencies if c != plan.currency)]
    out = {"object_type": "PRICING_PLAN", "id": plans.plan_id(view.environment, code), "reference": code,
           "name": (plan.name if plan is not None else None) or body.get("name"),
           "description": body.get("description"), "type": body.get("type") or "STANDARD",
           "amount_type": "EXCLUDING_TAX", "variant": body.get("variant"), "pricing_currencies": currencies,
           "pricing_plan_version_infos": _version_infos(view, code, plan)}
    return {key: value for key, value in out.items() if value is not None}


def _charge_configs(charge: dict[str, Any], currency: str) -> list[dict[str, Any]]:
    config = config_of(charge, currency)
    configs = [config] if config is not None else []
    for item in charge.get("filters") or []:
        shown = filter_config(charge, item, currency)
        if shown is not None:
            configs.append(shown)
    return configs


def render_item(view: View, item: dict[str, Any], currency: str) -> dict[str, Any]:
    charge = item["charge"]
    out: dict[str, Any] = {"object_type": "PRICING_ITEM", "id": item["id"],
                           "product_item_ids": item.get("product_item_ids"),
                           "configs": _charge_configs(charge, currency)}
    if item.get("currencies"):
        out["pricing_currency_configs"] = [
            {"currency": other, "configs": _charge_configs({**charge, **fields}, other)}
            for other, fields in item["currencies"].items()]
    if item.get("display_order") is not None:
        out["display_order"] = item["display_order"]
    return out


def render_pricing(view: View, row: Resource) -> dict[str, Any]:
    body = row.body
    version = view.resources.by_id.get(body.get("pricing_plan_version_id", ""))
    currency = version.body.get("currency", "EUR") if version is not None else "EUR"
    out = {"object_type": "PRICING", "id": row.id, "pricing_plan_version_id": body.get("pricing_plan_version_id"),
           "pricing_group_id": body.get("pricing_group_id"), "name": body.get("name"),
           "product_type": body.get("product_type") or "DEFAULT", "product_ids": body.get("product_ids"),
           "display_order": body.get("display_order"),
           "items": [render_item(view, item, currency) for item in body.get("items") or []]}
    return {key: value for key, value in out.items() if value is not None}


def render_group(view: View, row: Resource) -> dict[str, Any]:
    body = row.body
    pricings = [render_pricing(view, p) for p in plans.children(view, PRICING, body.get("pricing_plan_version_id", ""))
                if p.body.get("pricing_group_id") == row.id]
    out = {"object_type": "PRICING_GROUP", "id": row.id, "pricing_plan_version_id": body.get("pricing_plan_version_id"),
           "name": body.get("name"), "product_type": body.get("product_type"),
           "selection_constraint": body.get("selection_constraint"), "display_order": body.get("display_order"),
           "pricings": pricings}
    return {key: value for key, value in out.items() if value is not None}


def _settings(currency: str, currencies: list[str], interval: str) -> dict[str, Any]:
    return {"pricing_currency_settings": {"default_pricing_currency": currency, "pricing_currencies": currencies},
            "billing_period_settings": {"billing_periods": [{"period": plans.billing_period(interval)}]}}


def render_version(view: View, row: Resource) -> dict[str, Any]:
    body = row.body
    currency = body.get("currency", "EUR")
    pricings = [render_pricing(view, p) for p in plans.children(view, PRICING, row.id)
                if not p.body.get("pricing_group_id")]
    groups = [render_group(view, g) for g in plans.children(view, GROUP, row.id)]
    out = {"object_type": "PRICING_PLAN_VERSION", "id": row.id, "pricing_plan_id": body.get("pricing_plan_id"),
           "version": body.get("version"), "status": body.get("status"),
           **_settings(currency, body.get("currencies") or [currency], body.get("interval", "month")),
           "copied_from_pricing_plan_version_id": body.get("copied_from_pricing_plan_version_id"),
           "pricing_categories": [{"object_type": "PRICING_CATEGORY", "pricings": pricings, "pricing_groups": groups}]}
    return {key: value for key, value in out.items() if value is not None}


def render_catalog_version(view: View, plan: Plan) -> dict[str, Any]:
    """The one version a plan applied as YAML shows: its charges as pricings (no products)."""
    pid = plans.plan_id(view.environment, plan.code)
    vid = plans.catalog_version_id(view.environment, plan.code)
    pricings = []
    for charge in plan.charges:
        fields = charge.model_dump(mode="json", exclude_none=True)
        item: dict[str, Any] = {"id": stable_id("pitc_", view.environment, "charge", f"{plan.code}/{charge.code}"),
                                "charge": fields}
        others = {code: prices.charges.get(charge.code, {}) for code, prices in plan.currencies.items()}
        if others:
            item["currencies"] = others
        pricings.append({"object_type": "PRICING", "id": stable_id("prc_", view.environment, "charge",
                                                                   f"{plan.code}/{charge.code}"),
                         "pricing_plan_version_id": vid, "name": charge.description or charge.code,
                         "product_type": "DEFAULT", "items": [render_item(view, item, plan.currency)]})
    currencies = [plan.currency, *(c for c in plan.currencies if c != plan.currency)]
    return {"object_type": "PRICING_PLAN_VERSION", "id": vid, "pricing_plan_id": pid, "version": 1,
            "status": "ACTIVE", **_settings(plan.currency, currencies, plan.interval),
            "pricing_categories": [{"object_type": "PRICING_CATEGORY", "pricings": pricings, "pricing_groups": []}]}


# ---------------------------------------------------------------- pricing plans

PLAN_SORT = {"reference": lambda p: p[0], "name": lambda p: sortable((p[1].name if p[1] else None) or
                                                                     (p[2].body.get("name") if p[2] else None))}


@router.get("/v1/pricing-plans", summary="List pricing plans (the catalog's plans, and those not yet published)")
def list_plans(request: Request, page: Page = Depends(solvimon_page),
               caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    found = plans.plans(view)
    kind = param(request.query_params.get("type"), "type")
    if kind is not None:
        found = [p for p in found if ((p[2].body.get("type") if p[2] else None) or "STANDARD") == kind]
    statuses = multi(request, "statuses")
    for status in statuses:
        if status not in VERSION_STATUSES:
            raise invalid("statuses[]", f"statuses[] must be one of {', '.join(VERSION_STATUSES)}")
    if statuses:
        found = [p for p in found if any(i["status"] in statuses for i in _version_infos(view, p[0], p[1]))]
    variants = multi(request, "variants")
    if variants:
        found = [p for p in found if ((p[2].body.get("variant") if p[2] else None) or "DEFAULT") in variants]
    if request.query_params.get("customer_id") is not None:
        found = []  # ratecard has no customer-specific plans
    return json_response(paginate(request, found, page, lambda p: render_plan(view, *p), PLAN_SORT, everything=True))


def _plan_field(name: str) -> Any:
    def read(found: tuple[str, Plan | None, Resource | None]) -> str | None:
        code, plan, row = found
        body = row.body if row is not None else {}
        if name == "name":
            return (plan.name if plan is not None else None) or body.get("name")
        return body.get(name) or {"type": "STANDARD", "variant": "DEFAULT"}.get(name)
    return read


PLAN_SEARCH = {"reference": Field(lambda p: p[0]), "name": Field(_plan_field("name")),
               "description": Field(_plan_field("description")), "type": Field(_plan_field("type"), enum=True),
               "variant": Field(_plan_field("variant"), enum=True)}


@router.post("/v1/pricing-plans/search", openapi_extra=OBJECT_BODY,
             summary="Search pricing plans (search_fields, filter_fields); paged like the list")
def search_plans(request: Request, body: dict[str, Any] = Depends(search_body),
                 page: Page = Depends(solvimon_page), caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    fields = {"id": Field(lambda p: plans.plan_id(view.environment, p[0])), **PLAN_SEARCH}
    found = search(plans.plans(view), body, fields)
    return json_response(paginate(request, found, page, lambda p: render_plan(view, *p), PLAN_SORT, everything=True))


@router.put("/v1/pricing-plans", status_code=201, openapi_extra=OBJECT_BODY,
            summary="Create or update a pricing plan found by its reference (the plan code)")
def upsert_plan(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    reference = data.get("reference")
    if not isinstance(reference, str):
        raise invalid("reference", "reference is required: a pricing plan is found by its reference (the plan code)")
    found = plans.find_plan(snapshot(caller).view, param(reference, "reference") or reference)
    if found is None:
        if data.get("id") is not None:
            raise invalid("id", "id: a new pricing plan's id is derived from its reference; leave id out")
        view, row = plans.create_plan(caller.store, caller.environment, caller.now, data)
        return json_response(render_plan(view, row.reference, None, row), 201)
    if data.get("id") not in (None, plans.plan_id(caller.environment, found[0])):
        raise invalid("id", f"id does not match pricing plan {reference[:100]!r}")
    view, row = plans.update_plan(caller.store, caller.environment, caller.now, found[0],
                                  {k: v for k, v in data.items() if k != "id"})
    again = plans.find_plan(view, row.reference)
    assert again is not None
    return json_response(render_plan(view, *again), 201)


@router.post("/v1/pricing-plans", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Create a pricing plan (a catalog plan once a version of it is published)")
def create_plan(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, row = plans.create_plan(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(render_plan(view, row.reference, None, row), 201)


@router.get("/v1/pricing-plans/{key}", summary="Get a pricing plan by id or reference (the plan code)")
def get_plan(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    found = plans.find_plan(view, param(key, "resourceIdOrReference") or key)
    if found is None:
        raise not_found("pricing plan", key)
    return json_response(render_plan(view, *found))


@router.patch("/v1/pricing-plans/{key}", openapi_extra=OBJECT_BODY, summary="Update a pricing plan's name and details")
def update_plan(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, row = plans.update_plan(caller.store, caller.environment, caller.now, param(key, "key") or key,
                                  require_object(body))
    found = plans.find_plan(view, row.reference)
    assert found is not None
    return json_response(render_plan(view, *found))


@router.delete("/v1/pricing-plans/{key}", summary="Delete a pricing plan no subscription is on")
def delete_plan(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view, code, plan, row = plans.delete_plan(caller.store, caller.environment, caller.now, param(key, "key") or key)
    return json_response(render_plan(view, code, plan, row))


# ---------------------------------------------------------------- versions


def _version(view: View, key: str, expand: list[str]) -> dict[str, Any]:
    row = view.resources.find(VERSION, key)
    out = None
    if row is not None:
        out = render_version(view, row)
    for plan in view.document.plans if view.document and out is None else []:
        if plans.catalog_version_id(view.environment, plan.code) == key:
            out = render_catalog_version(view, plan)
    if out is None:
        raise not_found("pricing plan version", key)
    if "pricing_plan" in " ".join(expand):
        found = plans.find_plan(view, out["pricing_plan_id"])
        if found is not None:
            out["pricing_plan"] = render_plan(view, *found)
    return out


@router.post("/v1/pricing-plan-versions", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Create a DRAFT version of a pricing plan (optionally copied from another version)")
def create_version(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, row = plans.create_version(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(render_version(view, row), 201)


@router.put("/v1/pricing-plan-versions", status_code=201, openapi_extra=OBJECT_BODY,
            summary="Update the version named by id (or pricing_plan_id and version), else create a DRAFT")
def upsert_version(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    view = snapshot(caller).view
    existing = None
    if data.get("id") is not None:
        key = data["id"]
        existing = view.resources.find(VERSION, param(key, "id") if isinstance(key, str) else None)
        if existing is None:
            raise not_found("pricing plan version", str(key)[:100])
    elif isinstance(data.get("pricing_plan_id"), str) and data.get("version") is not None:
        found = plans.find_plan(view, param(data["pricing_plan_id"], "pricing_plan_id") or "")
        pid = plans.plan_id(view.environment, found[0]) if found is not None else None
        existing = next((row for row in plans.versions_of(view, pid or "")
                         if row.body.get("version") == data["version"]), None)
    if existing is None:
        if data.get("version") is not None:
            raise invalid("version", "version: a new version is numbered by ratecard (the next number); leave "
                                     "version out, or name an existing one")
        view, row = plans.create_version(caller.store, caller.environment, caller.now, data)
        return json_response(render_version(view, row), 201)
    if data.get("pricing_plan_id") is not None:
        found = plans.find_plan(view, str(data["pricing_plan_id"]))
        if found is None or plans.plan_id(view.environment, found[0]) != existing.body.get("pricing_plan_id"):
            raise invalid("pricing_plan_id", "pricing_plan_id does not match the version's pricing plan")
    if data.get("version") not in (None, existing.body.get("version")):
        raise invalid("version", "version: a version's number does not change")
    changes = {k: v for k, v in data.items() if k not in ("id", "pricing_plan_id", "version")}
    view, row = plans.update_version(caller.store, caller.environment, caller.now, existing.id, changes)
    return json_response(render_version(view, row), 201)


@router.get("/v1/pricing-plan-versions/{key}", summary="Get a pricing plan version with its pricings")
def get_version(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    return json_response(_version(snapshot(caller).view, param(key, "resourceId") or key,
                                  multi(request, "expand")))


@router.patch("/v1/pricing-plan-versions/{key}", openapi_extra=OBJECT_BODY,
              summary="Update a DRAFT version; status ACTIVE publishes it as a new catalog version")
def update_version(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, row = plans.update_version(caller.store, caller.environment, caller.now, param(key, "key") or key,
                                     require_object(body))
    return json_response(render_version(view, row))


@router.delete("/v1/pricing-plan-versions/{key}", summary="Delete a DRAFT version")
def delete_version(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view, row = plans.delete_version(caller.store, caller.environment, caller.now, param(key, "key") or key)
    return json_response(render_version(view, row))


# ---------------------------------------------------------------- pricings and groups


@router.post("/v1/pricings", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Price product items in a DRAFT version (each item becomes a charge)")
def create_pricing(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, row = plans.create_pricing(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(render_pricing(view, row), 201)


@router.patch("/v1/pricings/{key}", openapi_extra=OBJECT_BODY, summary="Update a pricing of a DRAFT version")
def update_pricing(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, row = plans.update_pricing(caller.store, caller.environment, caller.now, param(key, "key") or key,
                                     require_object(body))
    return json_response(render_pricing(view, row))


@router.delete("/v1/pricings/{key}", summary="Delete a pricing of a DRAFT version")
def delete_pricing(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view, row = plans.delete_child(caller.store, caller.environment, caller.now, PRICING, param(key, "key") or key)
    return json_response(render_pricing(view, row))


@router.post("/v1/pricing-groups", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Group pricings of a DRAFT version (ratecard bills every pricing of a group)")
def create_group(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, row = plans.create_group(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(render_group(view, row), 201)


@router.get("/v1/pricing-groups/{key}", summary="Get a pricing group with its pricings")
def get_group(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    row = view.resources.find(GROUP, param(key, "resourceId") or key)
    if row is None:
        raise not_found("pricing group", key)
    return json_response(render_group(view, row))


@router.patch("/v1/pricing-groups/{key}", openapi_extra=OBJECT_BODY, summary="Update a pricing group")
def update_group(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    view, row = plans.update_group(caller.store, caller.environment, caller.now, param(key, "key") or key,
                                   require_object(body))
    return json_response(render_group(view, row))


@router.delete("/v1/pricing-groups/{key}", summary="Delete an empty pricing group of a DRAFT version")
def delete_group(key: str, caller: Caller = Depends(current_caller)) -> Response:
    view, row = plans.delete_child(caller.store, caller.environment, caller.now, GROUP, param(key, "key") or key)
    return json_response(render_group(view, row))
