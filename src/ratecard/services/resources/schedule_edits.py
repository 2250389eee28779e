"""Edits of a catalog subscription's schedules (its sets of terms: the start's, then each change's)
for Solvimon's PATCH, DELETE, copy and migrate of a pricing plan schedule. Each goes through the
edits behind `ratecard subscriptions change|unschedule|cancel|void`, so each is a new catalog
version checked like `catalog check` (one version for all a request changes, stored with the
subscription's row in one transaction), and money follows the billing-under-change rules.

The rule throughout: what bills is history. A schedule in effect (started at or before now) keeps
its plan, start and seats; only one not yet in effect is rewritten or deleted. Ending the last
schedule is a cancellation at that instant (prorated as a cancellation is)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ...catalog.edits import moment_text, parse_moment
from ...catalog.schema import CatalogDocument
from ...domain.instants import to_micros
from ...domain.periods import to_local
from ...store import Store
from ...store.resources import ConfigChange, config_change
from .. import subscription_changes as changes
from . import pricing_plans, schedule_drafts
from .checks import check_text, invalid, invalid_operation, missing, not_found
from .subscriptions import (
    SUBSCRIPTION,
    Found,
    _reading,
    _row_with,
    _spec_in,
    _write_row,
    attach_schedule,
    change_plan,
    check_billing_period,
    get,
    instant_text,
    moment,
    plan_code,
    seats,
)

COPY_REFUSED = {"indexing_settings": "ratecard does not index prices: publish a new pricing plan version instead",
                "pricings": "ratecard does not index prices: publish a new pricing plan version instead",
                "pricing_items": "ratecard does not index prices: publish a new pricing plan version instead",
                "pricing_item_configs": "ratecard does not index prices: publish a new pricing plan version instead"}


def _micros(value: date | datetime, found: Found) -> int:
    return to_micros(to_local(value, ZoneInfo(found.terms["timezone"])))


def _phase(found: Found, index: int) -> dict[str, Any]:
    phases = found.terms["phases"]
    if not 0 <= index < len(phases):
        raise not_found("pricing plan schedule", f"{found.terms['reference']}#{index}")
    return phases[index]


def _refuse_in_effect(found: Found, phase: dict[str, Any], now: datetime, what: str) -> None:
    if _micros(phase["at"], found) <= to_micros(now):
        raise invalid_operation(f"this schedule of subscription {found.terms['reference']!r} is in effect since "
                                f"{moment_text(phase['at'])}: its periods may be billed, so it is never "
                                f"{what}; post a schedule from the date the terms change, or cancel the "
                                "subscription")


def delete(store: Store, environment: str, now: datetime, reference: str, index: int) -> Found:
    """Take back a schedule not yet in effect: a scheduled change of plan (the terms before it run
    on), or the first schedule of a subscription that has not started (it goes back to DRAFT,
    billing nothing, as it was before a schedule was given to it). Returns the subscription before."""
    found = get(store, environment, now, reference)
    phase = _phase(found, index)
    _refuse_in_effect(found, phase, now, "deleted")
    if index > 0:

        def unlabel(change: ConfigChange, stored: CatalogDocument) -> None:
            """The version labels follow their schedules' positions: the schedule's position is
            counted in the version stored (another delete may have stored one since it was read)."""
            row = change.resources.by_reference.get((SUBSCRIPTION, reference))
            versions = list(row.body.get("versions") or []) if row is not None else []
            position = _position(stored, reference, _micros(phase["at"], found), found)
            if position < len(versions):
                _write_row(change, reference, {}, {"versions": versions[:position] + versions[position + 1:]})

        changes.write_together(store, now, environment,
                               [changes.unschedule_step(now, reference=reference, at=moment_text(phase["at"]))], unlabel)
        return found
    if len(found.terms["phases"]) > 1:
        raise invalid_operation("this is the subscription's first schedule and later ones follow it: delete those "
                                "first")
    # out of the catalog (nothing billed), back to a DRAFT row, together
    changes.write_together(store, now, environment, [changes.void_step(store, now, environment, reference=reference)],
                           _row_with(reference, {}, {
                               "draft": True, "customer": found.terms["customer"], "versions": None,
                               "requires_reference": bool(found.terms.get("requires_reference")) or None}))
    return found


def update(store: Store, environment: str, now: datetime, reference: str, index: int,
           data: dict[str, Any]) -> tuple[Found, int]:
    """PATCH a schedule: its plan, start and seats while it is not in effect (a change still to come
    is moved or rewritten, the first terms of a subscription not started are replaced); `end_at` of
    the last schedule at any time (a cancellation at that instant, prorated); its
    `pricing_plan_version_id` label at any time. A field given with the value it has is no change.
    Returns the subscription after it and the schedule's position now."""
    found = get(store, environment, now, reference)
    phase = _phase(found, index)
    last = index == len(found.terms["phases"]) - 1
    view, document = _reading(store, environment, now)
    plan = None
    if data.get("pricing_plan_id") is not None:
        key = check_text(data["pricing_plan_id"], "pricing_plan_id") or ""
        plan = plan_code(key, document, view)
        if plan is None:
            raise invalid("pricing_plan_id", f"pricing plan {key!r} does not exist")
    if data.get("billing_period") is not None:  # it repeats the plan's interval, or it is refused
        listed = next(p for p in document.plans if p.code == (plan or phase["plan"]))
        check_billing_period(data["billing_period"], "billing_period", listed.interval)
    start = moment(data["start_at"], "start_at") if data.get("start_at") is not None else None
    quantity = seats(data)
    new_plan = plan if plan is not None and plan != phase["plan"] else None
    new_start = start if start is not None and to_micros(start) != _micros(phase["at"], found) else None
    new_seats = quantity if quantity is not None and quantity != phase["quantity"] else None
    end = moment(data["end_at"], "end_at") if data.get("end_at") is not None else None
    current_end = found.terms.get("end")
    if end is not None and current_end is not None and to_micros(end) == _micros(
            parse_moment(current_end), found):
        end = None
    if end is not None and not last:
        raise invalid("end_at", "a schedule ends where the next one starts: move or delete the next schedule, or "
                                "end the last one")
    version = check_text(data.get("pricing_plan_version_id"), "pricing_plan_version_id")
    steps = []
    if new_plan is not None or new_start is not None or new_seats is not None:
        _refuse_in_effect(found, phase, now, "rewritten")
        if index > 0:
            steps.append(changes.reschedule_step(now, reference=reference, at=moment_text(phase["at"]),
                                                 new_at=instant_text(new_start) if new_start is not None else None,
                                                 plan=new_plan, quantity=new_seats,
                                                 proration=phase["proration"] or "prorate"))
        else:
            steps.append(changes.restart_step(now, reference=reference,
                                              start=instant_text(new_start) if new_start is not None else None,
                                              plan=new_plan, quantity=new_seats))
    if end is not None:
        steps.append(changes.cancel_step(now, reference=reference, at=instant_text(end),
                                         proration=found.terms.get("end_proration") or "prorate"))

    # the schedule is the one starting at `starts` (ids and labels go by position, and a schedule
    # deleted meanwhile moves the ones after it): its position is counted where it is written
    starts = _micros(new_start if new_start is not None else phase["at"], found)

    def label(change: ConfigChange, stored: CatalogDocument | None) -> None:
        if version is not None and stored is not None:
            _label_version(change, reference, _position(stored, reference, starts, found), version)

    if steps:  # the schedule's new terms, its end and its label: one catalog version, with the row
        changes.write_together(store, now, environment, steps, label)
    elif version is not None:
        with config_change(store, environment, to_micros(now)) as change:
            label(change, change.catalog())
    after = get(store, environment, now, reference)
    placed = [i for i, p in enumerate(after.terms["phases"]) if _micros(p["at"], after) == starts]
    if not placed:  # taken away by another request since
        raise not_found("pricing plan schedule", f"{reference} from {moment_text(phase['at'])}")
    return after, placed[0]


def _position(document: CatalogDocument, reference: str, starts: int, found: Found) -> int:
    """The position of the subscription's schedule starting at `starts` (µs) in `document`."""
    return sum(1 for kept in _spec_in(document, reference).phases() if _micros(kept.at, found) < starts)


def _label_version(change: ConfigChange, reference: str, index: int, version: str) -> None:
    row = change.resources.by_reference.get((SUBSCRIPTION, reference))
    versions = list(row.body.get("versions") or []) if row is not None else []
    versions += [None] * (index + 1 - len(versions))
    versions[index] = version
    _write_row(change, reference, {}, {"versions": versions})


def _index_at(found: Found, at: datetime) -> int:
    """The index of the schedule that starts at `at` (the one just made)."""
    target = to_micros(at)
    for index, phase in enumerate(found.terms["phases"]):
        if _micros(phase["at"], found) == target:
            return index
    return len(found.terms["phases"]) - 1


def _refuse_unmapped(data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for name, value in data.items():
        if value is None or name in allowed:
            continue
        if name in COPY_REFUSED:
            raise invalid(name, f"{name}: {COPY_REFUSED[name]}")
        raise invalid(name[:80], f"{name[:80]} does not map onto ratecard's subscription terms")
    if data.get("realign_invoice_date_to_pricing_plan_schedule_start_at"):
        raise invalid("realign_invoice_date_to_pricing_plan_schedule_start_at",
                      "a change keeps the subscription's billing calendar (its periods and anchor) in ratecard")
    if data.get("coupon_discount_behaviour") not in (None, "NONE"):
        raise invalid("coupon_discount_behaviour", "a subscription's coupon runs by its own duration in ratecard, "
                                                   "whatever its schedules: only NONE is accepted")
    if data.get("status") not in (None, "ACTIVE", "DRAFT"):
        raise invalid("status", "status must be ACTIVE (applied now) or DRAFT (kept until activated)")


def copy(store: Store, environment: str, now: datetime, reference: str, index: int,
         data: dict[str, Any]) -> tuple[Found, int | None, dict[str, Any] | None]:
    """A new schedule with the copied one's plan, seats and version label from `start_at` (default
    now): applied at once (a change of plan at start_at, prorated) or, with `status: DRAFT`, kept
    until activated. Returns (subscription, index of the new schedule, or the DRAFT made)."""
    _refuse_unmapped(data, ("start_at", "end_at", "status", "realign_invoice_date_to_pricing_plan_schedule_start_at",
                            "coupon_discount_behaviour"))
    if data.get("end_at") is not None:
        raise invalid("end_at", "a copied schedule runs until the subscription ends (cancel it to end it)")
    found = get(store, environment, now, reference)
    phase = _phase(found, index)
    version = _version_label(found, index)
    start = moment(data["start_at"], "start_at") if data.get("start_at") is not None else now
    request: dict[str, Any] = {"pricing_plan_id": phase["plan"], "start_at": instant_text(start),
                               "seats_values": [{"number": str(phase["quantity"])}]}
    if version is not None:
        request["pricing_plan_version_id"] = version
    if data.get("status") == "DRAFT":
        return found, None, schedule_drafts.add(store, environment, now, reference, request)
    after = attach_schedule(store, environment, now, reference, request)
    return after, _index_at(after, start), None


def _version_label(found: Found, index: int) -> str | None:
    versions = (found.row.body.get("versions") or []) if found.row is not None else []
    return versions[index] if index < len(versions) else None


def migrate(store: Store, environment: str, now: datetime, reference: str, index: int,
            data: dict[str, Any]) -> tuple[Found, int | None, dict[str, Any] | None]:
    """Move the subscription from this schedule to the plan of an ACTIVE pricing plan version from
    `start_at` (default now): a change of plan at that instant, prorated as every change of plan
    (a schedule not yet in effect, migrated from its own start, is rewritten instead). A DRAFT or
    ARCHIVED version bills nothing in ratecard (a plan bills its ACTIVE version), and the plan in
    force already needs no migration: both are refused."""
    _refuse_unmapped(data, ("start_at", "end_at", "status", "pricing_plan_version_id",
                            "realign_invoice_date_to_pricing_plan_schedule_start_at", "coupon_discount_behaviour"))
    if data.get("pricing_plan_version_selector") is not None:
        raise invalid("pricing_plan_version_selector", "give the version by pricing_plan_version_id")
    key = data.get("pricing_plan_version_id")
    if key is None:
        raise missing("pricing_plan_version_id", "pricing_plan_version_id is required (the version to move to)")
    key = check_text(key, "pricing_plan_version_id") or ""
    found = get(store, environment, now, reference)
    phase = _phase(found, index)
    phases = found.terms["phases"]
    if index != len(phases) - 1:
        raise invalid_operation("later schedules follow this one: migrate the last schedule (or delete the later "
                                "ones first)")
    view, _ = _reading(store, environment, now)
    plan = pricing_plans.plan_code_of(view, key)
    if plan is None:
        if view.resources.find(pricing_plans.VERSION, key) is not None:
            raise invalid("pricing_plan_version_id", f"pricing plan version {key!r} is not the ACTIVE version of its "
                                                     "plan: ratecard bills a plan's ACTIVE version (publish it first)")
        raise invalid("pricing_plan_version_id", f"pricing plan version {key!r} does not exist")
    start = moment(data["start_at"], "start_at") if data.get("start_at") is not None else None
    phase_start = _micros(phase["at"], found)
    if start is None:
        start = now if phase_start <= to_micros(now) else to_local(phase["at"], ZoneInfo(found.terms["timezone"]))
    if to_micros(start) < phase_start:
        raise invalid("start_at", "start_at must fall within the schedule migrated (at or after its start)")
    end = moment(data["end_at"], "end_at") if data.get("end_at") is not None else None
    current_end = found.terms.get("end")
    if end is not None and (current_end is None or to_micros(end) != _micros(parse_moment(current_end), found)):
        raise invalid("end_at", "the migrated schedule keeps the original's end: leave end_at out (cancel the "
                                "subscription to end it)")
    if plan == phase["plan"]:
        raise invalid_operation(f"the schedule bills pricing plan {plan!r} already, and ratecard bills its ACTIVE "
                                "version: a version published later reaches it from its next billing period")
    request = {"pricing_plan_id": plan, "start_at": instant_text(start), "pricing_plan_version_id": key}
    if data.get("status") == "DRAFT":
        return found, None, schedule_drafts.add(store, environment, now, reference, request)
    if to_micros(start) == phase_start:  # the schedule has not started: rewritten in place
        after, placed = update(store, environment, now, reference, index, {"pricing_plan_id": plan,
                                                                            "pricing_plan_version_id": key})
        return after, placed, None
    after, new_index = change_plan(store, environment, now, reference, request)
    return after, new_index, None
