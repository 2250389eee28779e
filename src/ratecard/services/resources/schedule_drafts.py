"""DRAFT pricing plan schedules: a schedule asked for with `status: DRAFT` (or made by a copy) is
kept on the subscription's row, outside the catalog, and bills nothing until it is activated.
Activating it is exactly giving the subscription that schedule (subscriptions.attach_schedule): a
DRAFT subscription starts billing on its plan, one that bills already changes plan at its
start, prorated as a change of plan is. A DRAFT schedule without a start starts when activated."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from ...domain.instants import to_micros
from ...store import Store
from ...store.resources import ConfigChange, Resource, config_change, stable_id
from ..errors import Conflict, ServiceError
from .checks import invalid, invalid_operation, not_found
from .model import View
from .subscriptions import (
    SUBSCRIPTION,
    Found,
    _put_row,
    _reading,
    attach_schedule,
    get,
    instant_text,
    parse_schedules,
    row_of,
)

FIELD = "pricing_plan_schedules"
MAX_DRAFTS = 20  # DRAFT schedules kept on one subscription
EDITABLE = ("pricing_plan_id", "pricing_plan_version_id", "start_at", "end_at", "seats_values", "type")


def new_draft_id(environment: str, reference: str) -> str:
    return stable_id("pps_", environment, "draft_schedule", f"{reference}\0{secrets.token_hex(8)}")


def draft_entry(environment: str, reference: str, plan: str, start: str | None, end: str | None,
                quantity: int | None, version: str | None, kind: str = "DEFAULT",
                schedule_id: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": schedule_id or new_draft_id(environment, reference), "type": kind,
                             "pricing_plan_id": plan, "pricing_plan_version_id": version, "start_at": start,
                             "end_at": end, "quantity": quantity}
    return {key: value for key, value in entry.items() if value is not None}


def drafts_of(view: View, reference: str) -> list[dict[str, Any]]:
    row = row_of(view, reference)
    return list(row.body.get("draft_schedules") or []) if row is not None else []


def find_draft(view: View, schedule_id: str) -> tuple[str, dict[str, Any]] | None:
    """(subscription reference, DRAFT schedule) of a DRAFT schedule id."""
    for row in view.resources.of_kind(SUBSCRIPTION):
        for entry in row.body.get("draft_schedules") or []:
            if entry.get("id") == schedule_id:
                return row.reference, entry
    return None


def _checked(store: Store, environment: str, now: datetime, reference: str, data: dict[str, Any],
             schedule_id: str | None) -> dict[str, Any]:
    """The request checked as a schedule of the subscription (plan, instants, seats, billing period
    and currency), as a DRAFT entry."""
    view, document = _reading(store, environment, now)
    schedule = parse_schedules([{k: v for k, v in data.items() if k in EDITABLE or k in (
        "billing_period", "pricing_currency")}], FIELD, document, view)
    if schedule.trial_days is not None or data.get("type") not in (None, "DEFAULT"):
        raise invalid("type", "a DRAFT schedule is a DEFAULT schedule (a trial is given with the subscription's "
                              "first schedules, not activated later)")
    return draft_entry(environment, reference, schedule.plan,
                       instant_text(schedule.start) if schedule.start is not None else None,
                       instant_text(schedule.end) if schedule.end is not None else None,
                       schedule.quantity, schedule.version, schedule_id=schedule_id)


def add(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> dict[str, Any]:
    """Keep a DRAFT schedule on the subscription `key`; returns it."""
    found = get(store, environment, now, key)
    reference = found.terms["reference"]
    if found.terms["status"] == "void":
        raise invalid_operation(f"subscription {reference!r} is VOID: it takes no schedules")
    entry = _checked(store, environment, now, reference, data, None)
    view, _ = _reading(store, environment, now)
    existing = drafts_of(view, reference)
    if len(existing) >= MAX_DRAFTS:
        raise invalid_operation(f"subscription {reference!r} holds {MAX_DRAFTS} DRAFT schedules: activate or delete "
                                "some first")
    _put_row(store, environment, now, reference, {}, {"draft_schedules": [*existing, entry]})
    return entry


def update(store: Store, environment: str, now: datetime, schedule_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """New fields for a DRAFT schedule (it bills nothing yet: any of them may change)."""
    view, _ = _reading(store, environment, now)
    found = find_draft(view, schedule_id)
    if found is None:
        raise not_found("pricing plan schedule", schedule_id)
    reference, entry = found
    merged = {**_as_request(entry), **{k: v for k, v in data.items()
                                       if k in EDITABLE or k in ("billing_period", "pricing_currency")}}
    fresh = _checked(store, environment, now, reference, merged, schedule_id)
    _replace(store, environment, now, reference, schedule_id, fresh)
    return fresh


def delete(store: Store, environment: str, now: datetime, schedule_id: str) -> tuple[str, dict[str, Any]]:
    view, _ = _reading(store, environment, now)
    found = find_draft(view, schedule_id)
    if found is None:
        raise not_found("pricing plan schedule", schedule_id)
    _replace(store, environment, now, found[0], schedule_id, None)
    return found


def activate(store: Store, environment: str, now: datetime, schedule_id: str) -> tuple[Found, dict[str, Any]]:
    """Give the subscription its DRAFT schedule (attach_schedule: a new catalog version), then take
    the DRAFT away. A schedule the catalog refuses stays a DRAFT."""
    view, _ = _reading(store, environment, now)
    found = find_draft(view, schedule_id)
    if found is None:
        raise not_found("pricing plan schedule", schedule_id)
    reference, entry = found
    if entry.get("end_at") is not None and get(store, environment, now, reference).terms["status"] != "draft":
        raise invalid_operation("this DRAFT schedule has an end_at, and the subscription bills already: a change of "
                                "plan runs until the subscription ends (delete this DRAFT schedule, post one without "
                                "end_at)", "end_at")
    # the schedule given and its DRAFT taken away in one transaction
    attach_schedule(store, environment, now, reference, _as_request(entry),
                    also=lambda change: _take_in(change, reference, schedule_id, entry))
    return get(store, environment, now, reference), entry


def _take_in(change: ConfigChange, reference: str, schedule_id: str, entry: dict[str, Any]) -> None:
    """The DRAFT taken away under the lock, in the transaction that applies it: refused (nothing
    stored) when another request deleted or activated it since it was read, or changed it."""
    row = change.resources.by_reference.get((SUBSCRIPTION, reference))
    current = next((e for e in (row.body.get("draft_schedules") or []) if e.get("id") == schedule_id), None) \
        if row is not None else None
    if current is None:
        raise not_found("pricing plan schedule", schedule_id)
    if current != entry:
        raise invalid_operation("this DRAFT schedule changed while it was being activated: nothing was stored, "
                                "activate it again")
    _replace_in(change, reference, schedule_id, None)


def activate_all(store: Store, environment: str, now: datetime, key: str) -> tuple[str, list[dict[str, Any]]]:
    """Activate every DRAFT schedule of the subscription, earliest start first (one without a start
    last: it starts now), each on its own (all of it or nothing of it). One that is refused stays a
    DRAFT and the others are still activated; then Conflict names each refused DRAFT with its
    reason and says which were activated. Returns (the subscription, the DRAFTs activated)."""
    found = get(store, environment, now, key)
    reference = found.terms["reference"]
    view, _ = _reading(store, environment, now)
    pending = sorted(drafts_of(view, reference), key=lambda e: (e.get("start_at") is None, e.get("start_at") or ""))
    done: list[dict[str, Any]] = []
    refused: list[str] = []
    for entry in pending:
        try:
            activate(store, environment, now, entry["id"])
        except ServiceError as exc:
            refused.append(f"{entry['id']} ({entry.get('pricing_plan_id')} from {entry.get('start_at') or 'now'}): "
                           f"{exc}")
        else:
            done.append(entry)
    if refused:
        activated = ", ".join(entry["id"] for entry in done) or "none"
        raise Conflict(f"{len(refused)} of the {len(pending)} DRAFT schedules of subscription {reference!r} were "
                       f"refused and stay DRAFT: {'; '.join(refused)}. Activated: {activated}",
                       details=refused)
    return reference, done


def _as_request(entry: dict[str, Any]) -> dict[str, Any]:
    request = {k: v for k, v in entry.items() if k in EDITABLE}
    if entry.get("quantity") is not None:
        request["seats_values"] = [{"number": str(entry["quantity"])}]
    return request


def _replace(store: Store, environment: str, now: datetime, reference: str, schedule_id: str,
             entry: dict[str, Any] | None) -> None:
    with config_change(store, environment, to_micros(now)) as change:
        _replace_in(change, reference, schedule_id, entry)


def _replace_in(change: ConfigChange, reference: str, schedule_id: str, entry: dict[str, Any] | None) -> None:
    row = change.resources.by_reference.get((SUBSCRIPTION, reference))
    if row is None:
        return
    drafts = [(entry if e.get("id") == schedule_id else e) for e in row.body.get("draft_schedules") or []]
    drafts = [e for e in drafts if e is not None]
    body = {**row.body, "draft_schedules": drafts or None}
    change.put(Resource(row.id, row.kind, row.reference, {k: v for k, v in body.items() if v is not None}, 0, 0))
