"""Pricing plans, their versions (draft -> published), pricings and pricing groups.

A pricing plan is a catalog plan: its reference is the plan's code and its id is derived from the
code (stable across versions, the same for a plan applied as YAML). A version is a row: while
DRAFT it is held outside the catalog with its pricings and groups; publishing it (PATCH status
ACTIVE) turns its pricings into the plan's charges and saves the catalog as a new version, the
version it was published in kept on the row. Its pricings cannot change after that (a new draft
is created, optionally copied from it); the previously published version is ARCHIVED.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ...catalog.schema import CatalogDocument, Plan
from ...catalog.validate import Problem, check_charge, validate_charge
from ...domain.instants import to_micros
from ...domain.money import is_currency
from ...store import Store
from ...store.resources import ConfigChange, Resource, config_change, stable_id
from .checks import (
    already_exists,
    check_choice,
    check_reference,
    check_text,
    invalid,
    invalid_operation,
    missing,
    not_found,
)
from .model import View, save_document
from .pricing_charges import (
    FEE_MODEL_TYPES,
    MAX_FILTERS,
    PERIOD_OF_INTERVAL,
    USAGE_MODEL_TYPES,
    charge_fields,
    filter_of,
    interval_of,
)
from .products import ITEM, PRODUCT, refuse_unsupported

PLAN, VERSION, PRICING, GROUP = "pricing_plan", "pricing_plan_version", "pricing", "pricing_group"
PREFIX = {PLAN: "ppl_", VERSION: "ppv_", PRICING: "prc_", GROUP: "prg_"}
LABEL = {PLAN: "pricing plan", VERSION: "pricing plan version", PRICING: "pricing", GROUP: "pricing group"}
PLAN_TYPES = ("STANDARD", "CUSTOM")
AMOUNT_TYPES = ("EXCLUDING_TAX", "INCLUDING_TAX")
VARIANTS = ("DEFAULT", "RATE_CARD")
PRODUCT_TYPES = ("DEFAULT",)  # ADDON pricings are chosen per subscription: ratecard bills every charge
SELECTIONS = ("ANY", "AT_LEAST_ONE")  # ratecard bills every pricing of a group
MAX_PRICINGS = 300
MAX_ITEMS = 300
MAX_CURRENCIES = 50


def plan_id(environment: str, code: str) -> str:
    return stable_id(PREFIX[PLAN], environment, PLAN, code)


def catalog_version_id(environment: str, code: str) -> str:
    """The id of the one version a plan applied as YAML (never through this API) shows."""
    return stable_id(PREFIX[VERSION], environment, VERSION, f"{code}@catalog")


def _catalog_plan(document: CatalogDocument | None, code: str) -> Plan | None:
    return next((plan for plan in (document.plans if document else []) if plan.code == code), None)


def find_plan(view: View, key: str) -> tuple[str, Plan | None, Resource | None] | None:
    """(code, catalog plan, row) of a pricing plan named by id or reference."""
    row = view.resources.find(PLAN, key)
    if row is not None:
        return row.reference, _catalog_plan(view.document, row.reference), row
    for plan in view.document.plans if view.document else []:
        if key in (plan.code, plan_id(view.environment, plan.code)):
            return plan.code, plan, None
    return None


def plans(view: View) -> list[tuple[str, Plan | None, Resource | None]]:
    """Every pricing plan: the catalog's, then those not published yet."""
    found = [(plan.code, plan, view.resources.by_reference.get((PLAN, plan.code)))
             for plan in (view.document.plans if view.document else [])]
    codes = {code for code, _, _ in found}
    found += [(row.reference, None, row) for row in view.resources.of_kind(PLAN) if row.reference not in codes]
    return found


def versions_of(view: View, pid: str) -> list[Resource]:
    return sorted((row for row in view.resources.of_kind(VERSION) if row.body.get("pricing_plan_id") == pid),
                  key=lambda row: row.body.get("version", 0))


def children(view: View, kind: str, version_id: str) -> list[Resource]:
    rows = [row for row in view.resources.of_kind(kind) if row.body.get("pricing_plan_version_id") == version_id]
    return sorted(rows, key=lambda row: (row.body.get("display_order") or 0, row.created_at, row.id))


# ---------------------------------------------------------------- plans


def _currencies(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_CURRENCIES:
        raise invalid(field, f"{field} must be a list of at most {MAX_CURRENCIES} currency codes")
    out: list[str] = []
    for index, code in enumerate(value):
        if not isinstance(code, str) or not is_currency(code.upper()):
            raise invalid(f"{field}.{index}", f"{field}.{index} is not an ISO 4217 currency code")
        if code.upper() not in out:
            out.append(code.upper())
    return out


def _plan_fields(data: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    refuse_unsupported(data, ("pricing_plan_selection_rules", "custom_fields", "agent_context",
                              "pricing_plan_version_infos"), "pricing plan")
    body = dict(current or {})
    for key in ("name", "description"):
        if key in data:
            body[key] = check_text(data[key], key)
    for key, choices in (("type", PLAN_TYPES), ("amount_type", AMOUNT_TYPES), ("variant", VARIANTS)):
        if data.get(key) is not None:
            body[key] = check_choice(data[key], key, choices)
    if data.get("amount_type") == "INCLUDING_TAX":
        raise invalid("amount_type", "ratecard's prices exclude tax (amount_type EXCLUDING_TAX)")
    if data.get("customer_id") is not None:
        raise invalid("customer_id", "customer-specific plans are not supported: use a subscription's overrides")
    if data.get("pricing_currencies") is not None:
        body["pricing_currencies"] = _currencies(data["pricing_currencies"], "pricing_currencies")
    body.setdefault("type", "STANDARD")
    return body


def create_plan(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[View, Resource]:
    if data.get("reference") is None:
        raise missing("reference")
    code = check_reference(data["reference"], max_length=200)
    with config_change(store, environment, to_micros(now)) as change:
        view = View(environment, change.resources, change.catalog())
        if find_plan(view, code) is not None:
            raise already_exists("pricing plan", code)
        body = _plan_fields(data, None)
        row = change.put(Resource(plan_id(environment, code), PLAN, code, body, 0, 0))
        return View(environment, change.resources, change.catalog()), row


def update_plan(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        view = View(environment, change.resources, change.catalog())
        found = find_plan(view, key)
        if found is None:
            raise not_found("pricing plan", key)
        code, plan, row = found
        if data.get("reference") is not None and data["reference"] != code:
            raise invalid_operation("a pricing plan's reference is its catalog plan code and cannot change",
                                    "reference")
        body = _plan_fields(data, row.body if row else {"name": plan.name if plan else None})
        saved = change.put(Resource(plan_id(environment, code), PLAN, code, body, 0, 0))
        if plan is not None and "name" in data and plan.name != body.get("name"):
            document = change.catalog() or CatalogDocument()
            plans_ = [p.model_copy(update={"name": body.get("name")}) if p.code == code else p for p in document.plans]
            save_document(change, document.model_copy(update={"plans": plans_}), f"renaming plan {code!r}")
        return View(environment, change.resources, change.catalog()), saved


def delete_plan(store: Store, environment: str, now: datetime, key: str) -> tuple[View, str, Plan | None,
                                                                                  Resource | None]:
    """Remove the plan from the catalog (refused while a subscription is on it) and its rows."""
    with config_change(store, environment, to_micros(now)) as change:
        view = View(environment, change.resources, change.catalog())
        found = find_plan(view, key)
        if found is None:
            raise not_found("pricing plan", key)
        code, plan, row = found
        if plan is not None:
            document = change.catalog() or CatalogDocument()
            save_document(change, document.model_copy(update={"plans": [p for p in document.plans if p.code != code]}),
                          f"deleting plan {code!r}")
        pid = plan_id(environment, code)
        for version in versions_of(view, pid):
            for kind in (PRICING, GROUP):
                for child in children(view, kind, version.id):
                    change.delete(child.id)
            change.delete(version.id)
        if row is not None:
            change.delete(row.id)
        return view, code, plan, row


# ---------------------------------------------------------------- versions


def _version_fields(data: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    refuse_unsupported(data, ("pricing_categories", "credit_types", "rate_card", "pricing_plan"),
                       "pricing plan version (create its pricings with POST /v1/pricings)")
    body = dict(current)
    settings = data.get("pricing_currency_settings")
    if settings is not None:
        if not isinstance(settings, dict):
            raise invalid("pricing_currency_settings", "pricing_currency_settings must be an object")
        default = settings.get("default_pricing_currency")
        if default is not None and (not isinstance(default, str) or not is_currency(default.upper())):
            raise invalid("pricing_currency_settings.default_pricing_currency", "not an ISO 4217 currency code")
        others = _currencies(settings.get("pricing_currencies") or [], "pricing_currency_settings.pricing_currencies")
        default = default.upper() if default else (others[0] if others else None)
        if default is None:
            raise missing("pricing_currency_settings.default_pricing_currency")
        body["currency"] = default
        body["currencies"] = [default, *(code for code in others if code != default)]
    periods = data.get("billing_period_settings")
    if periods is not None:
        where = "billing_period_settings.billing_periods"
        options = periods.get("billing_periods") if isinstance(periods, dict) else None
        if not isinstance(options, list) or len(options) != 1 or not isinstance(options[0], dict):
            raise invalid(where, f"{where} must hold exactly one billing period: ratecard bills a plan on one "
                                 "interval")
        body["interval"] = interval_of(options[0].get("period"), f"{where}.0.period")
    return body


def _new_version_number(view: View, pid: str, code: str) -> int:
    numbers = [row.body.get("version", 0) for row in versions_of(view, pid)]
    if not numbers and _catalog_plan(view.document, code) is not None:
        numbers = [1]  # the version a plan applied as YAML shows
    return max(numbers, default=0) + 1


def create_version(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[View, Resource]:
    key = data.get("pricing_plan_id")
    if key is None:
        raise missing("pricing_plan_id")
    if not isinstance(key, str):
        raise invalid("pricing_plan_id", "pricing_plan_id must be a string")
    if data.get("status") not in (None, "DRAFT"):
        raise invalid("status", "a version is created as DRAFT; publish it with status ACTIVE afterwards")
    with config_change(store, environment, to_micros(now)) as change:
        view = View(environment, change.resources, change.catalog())
        found = find_plan(view, key)
        if found is None:
            raise invalid("pricing_plan_id", f"there is no pricing plan {key[:100]!r}")
        code, plan, row = found
        pid = plan_id(environment, code)
        if row is None:  # a plan applied as YAML gets its row now (its name and currencies)
            row = change.put(Resource(pid, PLAN, code, {"name": plan.name if plan else None, "type": "STANDARD"},
                                      0, 0))
        base: dict[str, Any] = {"pricing_plan_id": pid, "status": "DRAFT",
                                "version": _new_version_number(view, pid, code)}
        if plan is not None:
            base.update(currency=plan.currency, currencies=[plan.currency, *plan.currencies], interval=plan.interval)
        source = data.get("copied_from_pricing_plan_version_id")
        copied = None
        if source is not None:
            copied = change.resources.find(VERSION, source) if isinstance(source, str) else None
            if copied is None or copied.body.get("pricing_plan_id") != pid:
                raise invalid("copied_from_pricing_plan_version_id", "there is no such version of this pricing plan")
            base.update({k: copied.body[k] for k in ("currency", "currencies", "interval") if k in copied.body},
                        copied_from_pricing_plan_version_id=copied.id)
        body = _version_fields(data, base)
        body.setdefault("interval", "month")
        if body.get("currency") is None:
            pricing = row.body.get("pricing_currencies") or []
            if not pricing:
                raise missing("pricing_currency_settings.default_pricing_currency",
                              "the version needs a currency: pricing_currency_settings.default_pricing_currency")
            body.update(currency=pricing[0], currencies=pricing)
        reference = f"{code}#{body['version']}"
        version = change.put(Resource(change.new_id(PREFIX[VERSION], VERSION, reference), VERSION, reference,
                                      body, 0, 0))
        if copied is not None:
            groups: dict[str, str] = {}
            for group in children(view, GROUP, copied.id):
                new = _put_child(change, GROUP, {**group.body, "pricing_plan_version_id": version.id})
                groups[group.id] = new.id
            for pricing in children(view, PRICING, copied.id):
                group_id = pricing.body.get("pricing_group_id")
                _put_child(change, PRICING, {**pricing.body, "pricing_plan_version_id": version.id,
                                             "pricing_group_id": groups.get(group_id) if group_id else None})
        return View(environment, change.resources, change.catalog()), version


def _put_child(change: ConfigChange, kind: str, body: dict[str, Any]) -> Resource:
    reference = secrets.token_hex(10)
    return change.put(Resource(change.new_id(PREFIX[kind], kind, reference), kind, reference, body, 0, 0))


def _draft(change: ConfigChange, key: Any, field: str | None = None) -> Resource:
    """A DRAFT version (pricings change only there)."""
    version = change.resources.find(VERSION, key) if isinstance(key, str) else None
    if version is None:
        if field is not None:
            raise invalid(field, f"there is no pricing plan version {str(key)[:100]!r}")
        raise not_found("pricing plan version", str(key))
    if version.body.get("status") != "DRAFT":
        raise invalid_operation(f"pricing plan version {version.id!r} is {version.body.get('status')}: only a DRAFT "
                                "version changes (create a new version copied from it)", field)
    return version


def update_version(store: Store, environment: str, now: datetime, key: str,
                   data: dict[str, Any]) -> tuple[View, Resource]:
    """Change a draft's settings; `status: ACTIVE` publishes it."""
    target = data.get("status")
    if target is not None:
        check_choice(target, "status", ("DRAFT", "ACTIVE", "ARCHIVED", "DEPRECATED"))
    refuse_unsupported(data, ("pricing_categories", "credit_types", "rate_card", "pricing_plan"),
                       "pricing plan version (change its pricings with /v1/pricings)")
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(VERSION, key)
        if row is None:
            raise not_found("pricing plan version", key)
        status = row.body.get("status")
        settings = {k: data[k] for k in ("pricing_currency_settings", "billing_period_settings") if data.get(k)}
        if status != "DRAFT":
            if settings or target not in (None, status, "ARCHIVED", "DEPRECATED") or (
                    target in ("ARCHIVED", "DEPRECATED") and status == "ACTIVE"):
                raise invalid_operation(f"pricing plan version {row.id!r} is {status}: published versions do not "
                                        "change (the plan's current version is replaced by publishing another)")
            if target in ("ARCHIVED", "DEPRECATED"):
                row = change.put(Resource(row.id, VERSION, row.reference, {**row.body, "status": target}, 0, 0))
            return View(environment, change.resources, change.catalog()), row
        body = _version_fields(settings, row.body)
        priced = children(View(environment, change.resources, None), PRICING, row.id)
        if priced and (body.get("currency"), body.get("currencies")) != (row.body.get("currency"),
                                                                         row.body.get("currencies")):
            raise invalid_operation("the version already has pricings in its currencies: delete them before "
                                    "changing pricing_currency_settings", "pricing_currency_settings")
        if target in ("ARCHIVED", "DEPRECATED"):
            raise invalid_operation("a DRAFT version is published (status ACTIVE) or deleted", "status")
        row = change.put(Resource(row.id, VERSION, row.reference, body, 0, 0))
        if target == "ACTIVE":
            row = _publish(change, row)
        return View(environment, change.resources, change.catalog()), row


def delete_version(store: Store, environment: str, now: datetime, key: str) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        version = _draft(change, key)
        view = View(environment, change.resources, change.catalog())
        for kind in (PRICING, GROUP):
            for child in children(view, kind, version.id):
                change.delete(child.id)
        change.delete(version.id)
        return view, version


def plan_of_version(view: View, version: Resource) -> Plan:
    """The catalog plan a version's pricings make (validated as the whole catalog when published)."""
    body = version.body
    plan_row = view.resources.by_id.get(body.get("pricing_plan_id", ""))
    code = plan_row.reference if plan_row is not None else version.reference.rsplit("#", 1)[0]
    currency = body["currency"]
    charges: list[dict[str, Any]] = []
    prices: dict[str, dict[str, Any]] = {}
    for pricing in children(view, PRICING, version.id):
        for item in pricing.body.get("items") or []:
            charges.append(item["charge"])
            for other, fields in (item.get("currencies") or {}).items():
                prices.setdefault(other, {"charges": {}})["charges"][item["charge"]["code"]] = fields
    existing = _catalog_plan(view.document, code)
    kept = existing.model_dump(mode="json", exclude_none=True) if existing is not None else {}
    interval = body.get("interval", "month")
    # the file's amounts stay only in the same currency and over the same period (a 10 EUR monthly
    # minimum is not 10 JPY, nor 10 EUR a year), nor where the version prices other currencies (each
    # would need its own, which no config can give)
    amounts = existing is not None and (existing.currency, existing.interval) == (currency, interval) and not prices
    if existing is not None:
        charges = [_with_file_only_fields(charge, existing, amounts) for charge in charges]
    plan_fields = ("minimum", "maximum", "trial_days", "invoice_threshold", "discounts") if amounts else \
        ("trial_days",)
    document = {**{k: v for k, v in kept.items() if k in plan_fields},
                "code": code, "name": (plan_row.body.get("name") if plan_row else None) or kept.get("name"),
                "currency": currency, "interval": interval, "charges": charges,
                "currencies": prices}
    try:
        return Plan.model_validate({k: v for k, v in document.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise invalid_operation(f"publishing would make an invalid plan {code!r}: {where}: "
                                f"{first['msg'].removeprefix('Value error, ')}") from None


# A charge's fields no Solvimon config can say, set in the catalog file: a version pricing the same
# product item on the same meter keeps them, as the plan keeps its own (minimum, trial days…).
# group_by always; the amounts (a cap per period, the percentage's per-transaction bounds and free
# amount) only in the same currency and period and when the version prices no other currency (a
# price in each would be needed, which no config can give); the percentage's per-event rules only
# while the charge stays a percentage without conditional prices (they price all its events alike).
CARRIED_AMOUNTS = ("maximum",)
PER_EVENT_COUNTS = ("free_units_per_events",)
PER_EVENT_AMOUNTS = ("free_units_per_total_aggregation", "per_transaction_min_amount", "per_transaction_max_amount")


def _with_file_only_fields(charge: dict[str, Any], plan: Plan, amounts: bool) -> dict[str, Any]:
    before = next((c for c in plan.charges if c.code == charge["code"]), None)
    if before is None or before.meter is None or before.meter != charge.get("meter"):
        return charge
    names: tuple[str, ...] = ("group_by",)
    if amounts:
        names += CARRIED_AMOUNTS
    if before.model == charge.get("model") == "percentage" and not charge.get("filters"):
        names += PER_EVENT_COUNTS + (PER_EVENT_AMOUNTS if amounts else ())
    dumped = before.model_dump(mode="json", include=set(names), exclude_none=True)
    return {**charge, **{name: value for name, value in dumped.items() if name not in charge}}


def _publish(change: ConfigChange, version: Resource) -> Resource:
    view = View(change.environment, change.resources, change.catalog())
    plan = plan_of_version(view, version)
    document = change.catalog() or CatalogDocument()
    plans_ = [p for p in document.plans if p.code != plan.code]
    index = next((i for i, p in enumerate(document.plans) if p.code == plan.code), len(plans_))
    plans_.insert(index, plan)
    catalog_version = save_document(change, document.model_copy(update={"plans": plans_}),
                                    f"publishing plan {plan.code!r} version {version.body.get('version')}")
    for other in versions_of(view, version.body["pricing_plan_id"]):
        if other.id != version.id and other.body.get("status") == "ACTIVE":
            change.put(Resource(other.id, VERSION, other.reference, {**other.body, "status": "ARCHIVED"}, 0, 0))
    return change.put(Resource(version.id, VERSION, version.reference,
                               {**version.body, "status": "ACTIVE", "catalog_version": catalog_version}, 0, 0))


# ---------------------------------------------------------------- pricings and groups


def _group_fields(data: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    body = dict(current)
    if "name" in data:
        body["name"] = check_text(data["name"], "name")
    if data.get("product_type") is not None:
        body["product_type"] = check_choice(data["product_type"], "product_type", PRODUCT_TYPES)
    if data.get("selection_constraint") is not None:
        body["selection_constraint"] = check_choice(data["selection_constraint"], "selection_constraint", SELECTIONS)
    if "display_order" in data:
        body["display_order"] = _order(data["display_order"])
    return body


def _order(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000):
        raise invalid("display_order", "display_order must be a whole number from 0 to 1000000")
    return value


def _items(change: ConfigChange, view: View, version: Resource, raw: Any, skip: str | None) -> list[dict[str, Any]]:
    """A pricing's items, each one product item with its config and the charge it makes."""
    if not isinstance(raw, list) or not raw:
        raise missing("items", "items must list at least one pricing item")
    if len(raw) > MAX_ITEMS:
        raise invalid("items", f"items holds at most {MAX_ITEMS} entries")
    currency = version.body["currency"]
    taken = {item["charge"]["code"] for pricing in children(view, PRICING, version.id) if pricing.id != skip
             for item in pricing.body.get("items") or []}
    out = []
    for index, item in enumerate(raw):
        where = f"items.{index}"
        if not isinstance(item, dict):
            raise invalid(where, f"{where} must be an object")
        for key in ("billing_period_configs", "original_pricing_item_id", "original_pricing_item", "override",
                    "product_items"):
            if item.get(key) not in (None, [], {}):
                raise invalid(f"{where}.{key}", f"{where}.{key} is not supported by ratecard (name the product item "
                                                "in product_item_ids; the plan's interval is the version's)")
        ids = item.get("product_item_ids")
        if not isinstance(ids, list) or len(ids) != 1:
            raise invalid(f"{where}.product_item_ids", "ratecard prices one product item per pricing item: "
                                                       "list exactly one")
        product_item = change.resources.find(ITEM, ids[0]) if isinstance(ids[0], str) else None
        if product_item is None:
            raise invalid(f"{where}.product_item_ids.0", f"there is no product item {str(ids[0])[:100]!r}")
        model_type = product_item.body.get("model_type")
        if model_type not in FEE_MODEL_TYPES + USAGE_MODEL_TYPES:
            raise invalid(f"{where}.product_item_ids.0", f"product item {product_item.reference!r} is {model_type}: "
                                                         "ratecard prices USAGE_BASED, RECURRING and PER_SEAT items")
        code = product_item.reference
        if code in taken:
            raise invalid(f"{where}.product_item_ids.0", f"product item {code!r} is priced twice in this version")
        taken.add(code)
        configs = item.get("configs")
        if not isinstance(configs, list) or not 1 <= len(configs) <= MAX_FILTERS + 1:
            raise invalid(f"{where}.configs", f"{where}.configs must hold one config, and one more per "
                                              f"conditional price (at most {MAX_FILTERS})")
        plain = [index for index, config in enumerate(configs)
                 if not (isinstance(config, dict) and config.get("conditions") is not None)]
        if len(plain) != 1:
            raise invalid(f"{where}.configs", f"{where}.configs must hold exactly one config without conditions "
                                              "(the price of the events no condition matches)")
        own = plain[0]
        charge = {"code": code, **charge_fields(configs[own], f"{where}.configs.{own}", model_type, currency,
                                                   version.body.get("interval"))}
        filters = []
        for index, config in enumerate(configs):
            if index == own:
                continue
            at = f"{where}.configs.{index}"
            if model_type not in USAGE_MODEL_TYPES:
                raise invalid(f"{at}.conditions", "only a usage item has conditional prices")
            fields = charge_fields(config, at, model_type, currency, version.body.get("interval"))
            made = filter_of(config, fields, charge, at)
            if any(existing["code"] == made["code"] for existing in filters):
                raise invalid(f"{at}.conditions.name", f"{at}.conditions.name {made['code']!r} is used twice")
            filters.append(made)
        if filters:
            charge["filters"] = filters
        if product_item.body.get("name"):
            charge["description"] = product_item.body["name"]
        if model_type in USAGE_MODEL_TYPES:
            charge["meter"] = product_item.body["meter"]
        _check_charge(charge, f"{where}.configs.0")
        stored: dict[str, Any] = {"id": item.get("id") if isinstance(item.get("id"), str) and
                                  len(item["id"]) <= 64 else f"pitc_{secrets.token_hex(8)}",
                                  "product_item_ids": [product_item.id], "charge": charge,
                                  "display_order": _order(item.get("display_order"))}
        others = item.get("pricing_currency_configs") or []
        if not isinstance(others, list) or len(others) > MAX_CURRENCIES:
            raise invalid(f"{where}.pricing_currency_configs", "pricing_currency_configs must be a short list")
        if others and filters:
            raise invalid(f"{where}.pricing_currency_configs", "conditional prices in other currencies are set in "
                                                              "the catalog file (plans[].currencies)")
        for number_, other in enumerate(others):
            at = f"{where}.pricing_currency_configs.{number_}"
            code_ = other.get("currency") if isinstance(other, dict) else None
            if not isinstance(code_, str) or code_.upper() not in version.body.get("currencies", [])[1:]:
                raise invalid(f"{at}.currency", f"{at}.currency must be one of the version's other pricing "
                                                "currencies")
            other_configs = other.get("configs")
            if not isinstance(other_configs, list) or len(other_configs) != 1:
                raise invalid(f"{at}.configs", f"{at}.configs must hold exactly one config")
            fields = charge_fields(other_configs[0], f"{at}.configs.0", model_type, code_.upper(),
                                   version.body.get("interval"))
            if fields["model"] != charge["model"]:
                raise invalid(f"{at}.configs.0", "a currency gives the same kind of price, in its own amounts")
            stored.setdefault("currencies", {})[code_.upper()] = {
                k: v for k, v in fields.items() if k in ("amount", "unit_amount", "tiers", "package_amount",
                                                         "fixed_amount")}
            stored.setdefault("pricing_currency_configs", []).append({"currency": code_.upper(),
                                                                      "configs": [other_configs[0]]})
        out.append(stored)
    return out


def _check_charge(charge: dict[str, Any], where: str) -> None:
    """The charge's own rules (tier order, required fields of its model), as `catalog check`
    applies them; the meter is checked when the version is published (with the whole catalog)."""
    problems: list[Problem] = []
    checked = validate_charge(charge, where, problems)
    if checked is not None:
        check_charge(checked, where, {checked.meter} if checked.meter else set(), problems)
    if problems:
        raise invalid(where, str(problems[0]))


def _pricing_fields(change: ConfigChange, data: dict[str, Any], current: dict[str, Any] | None,
                    skip: str | None) -> dict[str, Any]:
    refuse_unsupported(data, ("entitlements", "original_pricing_id", "original_pricing", "override", "products"),
                       "pricing")
    body = dict(current or {})
    if current is None:
        if data.get("pricing_plan_schedule_id") is not None:
            raise invalid("pricing_plan_schedule_id", "pricing plan schedules are not supported: price a plan version")
        if data.get("pricing_plan_version_id") is None:
            raise missing("pricing_plan_version_id")
        body["pricing_plan_version_id"] = _draft(change, data["pricing_plan_version_id"],
                                                 "pricing_plan_version_id").id
    version = _draft(change, body["pricing_plan_version_id"])
    view = View(change.environment, change.resources, change.catalog())
    if "pricing_group_id" in data:
        group = data["pricing_group_id"]
        if group is not None:
            row = change.resources.find(GROUP, group) if isinstance(group, str) else None
            if row is None or row.body.get("pricing_plan_version_id") != version.id:
                raise invalid("pricing_group_id", "there is no such pricing group in this version")
            group = row.id
        body["pricing_group_id"] = group
    if "name" in data:
        body["name"] = check_text(data["name"], "name")
    if data.get("product_type") is not None:
        body["product_type"] = check_choice(data["product_type"], "product_type", PRODUCT_TYPES)
    if "display_order" in data:
        body["display_order"] = _order(data["display_order"])
    if data.get("product_ids") is not None or current is None:
        ids = data.get("product_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_PRICINGS:
            raise missing("product_ids", "product_ids must list 1 to 300 products")
        resolved = []
        for index, key in enumerate(ids):
            row = change.resources.find(PRODUCT, key) if isinstance(key, str) else None
            if row is None:
                raise invalid(f"product_ids.{index}", f"there is no product {str(key)[:100]!r}")
            resolved.append(row.id)
        body["product_ids"] = resolved
    if data.get("items") is not None or current is None:
        body["items"] = _items(change, view, version, data.get("items"), skip)
    products = set(body["product_ids"])
    for index, item in enumerate(body["items"]):
        product_item = change.resources.by_id.get(item["product_item_ids"][0])
        if product_item is not None and product_item.body.get("product_id") not in products:
            raise invalid(f"items.{index}.product_item_ids.0", f"product item {product_item.reference!r} is not an "
                                                               "item of the pricing's products")
    return body


def create_pricing(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        if len([row for row in change.resources.of_kind(PRICING)
                if row.body.get("pricing_plan_version_id") == data.get("pricing_plan_version_id")]) >= MAX_PRICINGS:
            raise invalid_operation(f"a version holds at most {MAX_PRICINGS} pricings")
        body = _pricing_fields(change, data, None, None)
        row = _put_child(change, PRICING, body)
        return View(environment, change.resources, change.catalog()), row


def update_pricing(store: Store, environment: str, now: datetime, key: str,
                   data: dict[str, Any]) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(PRICING, key)
        if row is None:
            raise not_found("pricing", key)
        body = _pricing_fields(change, data, row.body, row.id)
        row = change.put(Resource(row.id, PRICING, row.reference, body, 0, 0))
        return View(environment, change.resources, change.catalog()), row


def delete_child(store: Store, environment: str, now: datetime, kind: str, key: str) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(kind, key)
        if row is None:
            raise not_found(LABEL[kind], key)
        _draft(change, row.body.get("pricing_plan_version_id"))
        view = View(environment, change.resources, change.catalog())
        if kind == GROUP and any(p.body.get("pricing_group_id") == row.id for p in children(view, PRICING,
                                                                                          row.body["pricing_plan_version_id"])):
            raise invalid_operation(f"pricing group {row.id!r} still holds pricings")
        change.delete(row.id)
        return view, row


def create_group(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        if data.get("pricing_plan_schedule_id") is not None:
            raise invalid("pricing_plan_schedule_id", "pricing plan schedules are not supported: price a plan version")
        if data.get("pricing_plan_version_id") is None:
            raise missing("pricing_plan_version_id")
        version = _draft(change, data["pricing_plan_version_id"], "pricing_plan_version_id")
        body = _group_fields(data, {"pricing_plan_version_id": version.id, "product_type": "DEFAULT",
                                    "selection_constraint": "ANY"})
        row = _put_child(change, GROUP, body)
        pricings = data.get("pricings") or []
        if not isinstance(pricings, list) or len(pricings) > MAX_PRICINGS:
            raise invalid("pricings", "pricings must be a list")
        for index, pricing in enumerate(pricings):
            if not isinstance(pricing, dict):
                raise invalid(f"pricings.{index}", f"pricings.{index} must be an object")
            fields = _pricing_fields(change, {**pricing, "pricing_plan_version_id": version.id,
                                              "pricing_group_id": row.id}, None, None)
            _put_child(change, PRICING, fields)
        return View(environment, change.resources, change.catalog()), row


def update_group(store: Store, environment: str, now: datetime, key: str,
                 data: dict[str, Any]) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(GROUP, key)
        if row is None:
            raise not_found("pricing group", key)
        _draft(change, row.body.get("pricing_plan_version_id"))
        row = change.put(Resource(row.id, GROUP, row.reference, _group_fields(data, row.body), 0, 0))
        return View(environment, change.resources, change.catalog()), row


def billing_period(interval: str) -> dict[str, Any]:
    kind, value = PERIOD_OF_INTERVAL[interval]
    return {"type": kind, "value": value}


def plan_code_of(view: View, key: str) -> str | None:
    """The catalog plan code a subscription's `pricing_plan_id` (id or reference) or
    `pricing_plan_version_id` names; None when it names nothing published. A version names its
    plan only while it is the ACTIVE one (ratecard bills a plan code, not a past version)."""
    found = find_plan(view, key)
    if found is not None:
        return found[0] if found[1] is not None else None
    version = view.resources.find(VERSION, key)
    if version is not None:
        plan_row = view.resources.by_id.get(version.body.get("pricing_plan_id", ""))
        if version.body.get("status") == "ACTIVE" and plan_row is not None \
                and _catalog_plan(view.document, plan_row.reference) is not None:
            return plan_row.reference
        return None
    for plan in view.document.plans if view.document else []:
        if catalog_version_id(view.environment, plan.code) == key:
            return plan.code
    return None
