"""Pricing plan groups: a named, ordered set of pricing plans (a "ladder" such as Starter < Pro <
Enterprise) with a lifecycle (DRAFT -> ACTIVE -> DEPRECATED / ARCHIVED).

In ratecard a group is a stored grouping only (an api_resources row, no catalog version): it
does not change what is billed, and a subscription's change of plan is not limited to, nor priced
by, the group its plans are in (ratecard prorates every change of plan the same way). The
upgrade_type, downgrade_type and cancellation_type Solvimon asks for are kept as given and shown
back, so a client can read its own policy from the group. Members are stored by plan code (the
plan's reference), so a member keeps its id across catalog versions; a member whose plan is
deleted is no longer shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...domain.instants import to_micros
from ...store import Store
from ...store.resources import ConfigChange, Resource, config_change
from .checks import (
    CONFIG_STATUSES,
    already_exists,
    check_choice,
    check_reference,
    check_text,
    invalid,
    invalid_operation,
    missing,
    not_found,
)
from .model import View
from .pricing_plans import find_plan

KIND, PREFIX, LABEL = "pricing_plan_group", "ppg_", "pricing plan group"
CHANGE_TYPES = ("IMMEDIATE", "IMMEDIATE_PRO_RATA", "NEXT_BILLING_PERIOD", "NOT_ALLOWED")
POLICIES = ("upgrade_type", "downgrade_type", "cancellation_type")
MAX_MEMBERS = 100
MAX_ORDER = 1_000_000
# the statuses a transition may start from (ARCHIVED is final, as for products)
TRANSITIONS = {"ACTIVE": ("DRAFT", "ACTIVE", "DEPRECATED"), "DEPRECATED": ("DRAFT", "ACTIVE", "DEPRECATED"),
               "ARCHIVED": CONFIG_STATUSES}


def _members(change: ConfigChange, value: Any) -> list[dict[str, Any]]:
    """[{plan: code, order}] from [{pricing_plan_id, order}], sorted by order (then as given)."""
    if not isinstance(value, list) or len(value) > MAX_MEMBERS:
        raise invalid("pricing_plans", f"pricing_plans must be a list of at most {MAX_MEMBERS} members")
    view = View(change.environment, change.resources, change.catalog())
    members: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        where = f"pricing_plans.{index}"
        if not isinstance(item, dict):
            raise invalid(where, f"{where} must be an object {{pricing_plan_id, order}}")
        key = item.get("pricing_plan_id")
        if not isinstance(key, str) or not key:
            raise missing(f"{where}.pricing_plan_id")
        found = find_plan(view, key)
        if found is None:
            raise invalid(f"{where}.pricing_plan_id", f"there is no pricing plan {key[:100]!r}")
        if any(member["plan"] == found[0] for member in members):
            raise invalid(f"{where}.pricing_plan_id", f"pricing plan {found[0]!r} is already a member")
        order = item.get("order", index + 1)
        if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= MAX_ORDER:
            raise invalid(f"{where}.order", f"{where}.order must be a whole number from 0 to {MAX_ORDER}")
        members.append({"plan": found[0], "order": order})
    return sorted(members, key=lambda member: member["order"])


def _fields(change: ConfigChange, data: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    for name in ("created_at", "updated_at", "object_type"):
        data = {k: v for k, v in data.items() if k != name}
    known = {"id", "reference", "name", "status", "pricing_plans", *POLICIES}
    for name, value in data.items():
        if name not in known and value is not None:
            raise invalid(name, f"{name} is not a field of a pricing plan group")
    body = dict(current or {"status": "DRAFT"})
    if "name" in data:
        body["name"] = check_text(data["name"], "name")
    for name in POLICIES:
        if data.get(name) is not None:
            body[name] = check_choice(data[name], name, CHANGE_TYPES)
        elif current is None:
            raise missing(name, f"{name} is required (one of {', '.join(CHANGE_TYPES)}); ratecard keeps it as the "
                                "group's stated policy")
    if data.get("status") is not None:
        target = check_choice(data["status"], "status", CONFIG_STATUSES)
        if target != body["status"] and body["status"] not in TRANSITIONS.get(target, ()):
            raise invalid_operation(f"a {body['status']} pricing plan group cannot become {target}", "status")
        body["status"] = target
    if "pricing_plans" in data:
        body["members"] = _members(change, data["pricing_plans"] or [])
    body.setdefault("members", [])
    return body


def _view(change: ConfigChange) -> View:
    return View(change.environment, change.resources, change.catalog())


def create(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[View, Resource]:
    if data.get("reference") is None:
        raise missing("reference")
    reference = check_reference(data["reference"])
    if data.get("id") is not None:
        raise invalid("id", "id: a new pricing plan group's id is given by ratecard; leave id out")
    with config_change(store, environment, to_micros(now)) as change:
        if (KIND, reference) in change.resources.by_reference:
            raise already_exists(LABEL, reference)
        body = _fields(change, data, None)
        row = change.put(Resource(change.new_id(PREFIX, KIND, reference), KIND, reference, body, 0, 0))
        return _view(change), row


def update(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(KIND, key)
        if row is None:
            raise not_found(LABEL, key)
        if data.get("id") not in (None, row.id):
            raise invalid("id", "id cannot change")
        reference = row.reference
        if data.get("reference") is not None and data["reference"] != row.reference:
            reference = check_reference(data["reference"])
            if (KIND, reference) in change.resources.by_reference:
                raise already_exists(LABEL, reference)
        if row.body.get("status") == "ARCHIVED":
            raise invalid_operation(f"{LABEL} {row.reference!r} is archived: it no longer changes")
        body = _fields(change, {k: v for k, v in data.items() if k not in ("id", "reference")}, row.body)
        row = change.put(Resource(row.id, KIND, reference, body, 0, 0))
        return _view(change), row


def change_status(store: Store, environment: str, now: datetime, key: str, target: str) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(KIND, key)
        if row is None:
            raise not_found(LABEL, key)
        status = row.body.get("status", "DRAFT")
        if status not in TRANSITIONS[target]:
            raise invalid_operation(f"{LABEL} {row.reference!r} is {status}: it cannot become {target}")
        if status != target:
            row = change.put(Resource(row.id, KIND, row.reference, {**row.body, "status": target}, 0, 0))
        return _view(change), row


def delete(store: Store, environment: str, now: datetime, key: str) -> tuple[View, Resource]:
    """Any group can be deleted: nothing bills by it."""
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.find(KIND, key)
        if row is None:
            raise not_found(LABEL, key)
        change.delete(row.id)
        return _view(change), row


def members(view: View, row: Resource) -> list[tuple[str, int]]:
    """(plan code, order) of the members whose plan still exists."""
    return [(member["plan"], member["order"]) for member in row.body.get("members", [])
            if find_plan(view, member["plan"]) is not None]
