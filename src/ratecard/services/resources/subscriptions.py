"""Pricing-plan subscriptions and subscription groups, Solvimon's way, over ratecard's subscriptions.

A Solvimon subscription is a catalog subscription (its id is its reference, as events and invoices
name it): every write goes through services.subscription_changes, the edits behind
`ratecard subscriptions create|change|cancel`, so each is a new catalog version validated like
`catalog check`. What only Solvimon has (name, description, purchase order number, the pricing
plan version references, terms, custom fields, the group, the cancellation's type and reason) is
kept in an api_resources row next to it, written in the transaction that stores the catalog
version (changes.write_together): a call stores all of it or, when any part fails, nothing.
Subscription groups are rows only: a label over subscriptions, with no effect on billing.

The mapping of Solvimon's options onto ratecard's terms (pure functions, tested on their own):
- a schedule's pricing plan (`pricing_plan_id`) is the ratecard plan code; a TRIAL schedule
  followed by a DEFAULT one is the subscription's `trial_days`; `seats_values[0].number` its seats;
- cancellation types onto `end` + `end_proration` (cancel_terms);
- a change of plan's timing (Solvimon's pricing plan group policy) onto `proration` (change_terms).
"""

from __future__ import annotations

import calendar
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ...catalog import SubscriptionSpec, build_catalog
from ...catalog.schema import MAX_QUANTITY, CatalogDocument
from ...domain.instants import to_micros
from ...domain.money import MoneyError, to_decimal
from ...domain.periods import to_local
from ...store import Store
from ...store.resources import ConfigChange, Resource, config_change
from .. import subscription_changes as changes
from .. import webhook_events
from ..errors import NotFound, ServiceError
from . import customers, pricing_plans
from .checks import already_exists, check_choice, check_reference, check_text, invalid, invalid_operation, missing, not_found
from .model import CUSTOMER, View

SUBSCRIPTION, GROUP = "subscription", "subscription_group"
SUBSCRIPTION_ROW_PREFIX, GROUP_PREFIX = "ppsr_", "ppsg_"
MAX_REFERENCE = 200  # catalog subscription references
STATUSES = ("DRAFT", "ACTIVE", "VOID", "ARCHIVED", "CANCELLED")
CANCEL_TYPES = ("NOW", "NEXT_BILLING_PERIOD", "AFTER_INITIAL_TERM", "DATE", "UNDO")
TIMINGS = ("IMMEDIATE", "IMMEDIATE_PRO_RATA", "NEXT_BILLING_PERIOD")
PERIOD_TYPES = ("DAY", "WEEK", "MONTH", "YEAR")
# a plan's interval as Solvimon's billing period {type, value}
INTERVAL_PERIODS = {"month": ("MONTH", 1), "quarter": ("MONTH", 3), "year": ("YEAR", 1)}
ROW_FIELDS = ("name", "description", "purchase_order_number", "payment_method_id")


# ---------------------------------------------------------------- pure mapping


@dataclass(frozen=True)
class Term:
    """Solvimon's Period {type, value}: an initial or renewal term, a billing period."""

    type: str
    value: int

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "value": self.value}


def parse_period(value: Any, field: str) -> Term:
    if not isinstance(value, dict):
        raise invalid(field, f"{field} must be an object {{type, value}}")
    kind = check_choice(value.get("type"), f"{field}.type", PERIOD_TYPES)
    number = value.get("value", 1)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 120:
        raise invalid(f"{field}.value", f"{field}.value must be a whole number from 1 to 120")
    return Term(kind, number)


def after_term(start: datetime, term: Term) -> datetime:
    """The instant `term` after `start` (months and years keep the day, clamped to the month's end)."""
    if term.type == "DAY":
        return start + timedelta(days=term.value)
    if term.type == "WEEK":
        return start + timedelta(weeks=term.value)
    months = term.value * (12 if term.type == "YEAR" else 1)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return start.replace(year=year, month=month, day=min(start.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class CancelTerms:
    """What a cancellation asks of ratecard: an end at an instant, at the end of the current
    period, or no end any more (undo), settled by `end_proration`."""

    at: datetime | None
    at_period_end: bool
    undo: bool
    proration: str


def cancel_terms(kind: str, now: datetime, cancel_at: datetime | None, initial_term_end: datetime | None,
                 proration: str | None) -> CancelTerms:
    """Solvimon's cancellation type onto ratecard's `end` and `end_proration`:
    NOW ends at `now`, DATE at `cancel_at`, AFTER_INITIAL_TERM where the initial term ends,
    NEXT_BILLING_PERIOD at the end of the period holding now (nothing left to prorate), UNDO takes
    a coming end away. The fee billed in advance for the period the end falls in is prorated
    (the unused days credited) unless `proration` is "none"."""
    settled = proration or "prorate"
    if kind == "UNDO":
        return CancelTerms(None, False, True, settled)
    if kind == "NEXT_BILLING_PERIOD":
        return CancelTerms(None, True, False, settled)
    if kind == "NOW":
        return CancelTerms(now, False, False, settled)
    if kind == "DATE":
        if cancel_at is None:
            raise missing("cancel_at", "cancel_at is required with type DATE")
        return CancelTerms(cancel_at, False, False, settled)
    if initial_term_end is None:
        raise invalid_operation("the subscription has no initial_term: AFTER_INITIAL_TERM needs one (set it with "
                                "PATCH, or cancel with type DATE)", "type")
    return CancelTerms(initial_term_end, False, False, settled)


def change_terms(timing: str | None, proration: str | None, start_at: datetime | None) -> tuple[str, bool]:
    """(ratecard proration, at the next period boundary?) for a change of plan: Solvimon's
    IMMEDIATE_PRO_RATA is `prorate` (the default), IMMEDIATE is `none` (the period keeps the fee it
    was billed), NEXT_BILLING_PERIOD starts the new plan at the next boundary (nothing to prorate,
    and no start_at allowed). An explicit ratecard `proration` (prorate | none | invoice_now) wins."""
    if timing == "NEXT_BILLING_PERIOD":
        if start_at is not None:
            raise invalid("start_at", "start_at is not allowed when the change happens at the next billing period")
        return proration or "none", True
    if proration is not None:
        return proration, False
    return ("none" if timing == "IMMEDIATE" else "prorate"), False


def trial_days_between(start: datetime, end: datetime) -> int:
    """A TRIAL schedule from `start` to `end` as ratecard's trial_days: whole days only."""
    span = end - start
    if span <= timedelta(0) or span % timedelta(days=1):
        raise invalid("pricing_plan_schedules.0.end_at", "a TRIAL schedule must last a whole number of days (from "
                      "1), ending where the DEFAULT schedule starts")
    return span.days


# ---------------------------------------------------------------- input checks


def moment(value: Any, field: str) -> datetime:
    """An RFC 3339 instant (a naive one is UTC, as the SDK sends naive datetimes)."""
    if not isinstance(value, str) or len(value) > 64:
        raise invalid(field, f"{field} must be a date-time such as 2026-01-01T00:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(field, f"{field} must be a date-time such as 2026-01-01T00:00:00Z") from None
    parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if not 2000 <= parsed.year <= 2200:
        raise invalid(field, f"{field} must be between the years 2000 and 2200")
    return parsed


def instant_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def seats(data: dict[str, Any], field_prefix: str = "") -> int | None:
    """Seats from `seats_values[0].number` (Solvimon) or `quantity` (ratecard's extension)."""
    quantity = data.get("quantity")
    field = f"{field_prefix}quantity"
    values = data.get("seats_values")
    if values is not None:
        if not isinstance(values, list) or len(values) > 1:
            raise invalid(f"{field_prefix}seats_values", "seats_values must be a list of at most one seat count")
        if values:
            field = f"{field_prefix}seats_values.0.number"
            entry = values[0]
            number = entry.get("number") if isinstance(entry, dict) else None
            try:
                parsed = to_decimal(number) if isinstance(number, str | int) else None
            except MoneyError as exc:
                raise invalid(field, f"{field}: {exc}") from None
            if parsed is None or parsed != parsed.to_integral_value():
                raise invalid(field, f"{field} must be a whole number of seats written as a string, such as \"5\"")
            quantity = int(parsed) if abs(parsed) <= MAX_QUANTITY else MAX_QUANTITY + 1
    if quantity is None:
        return None
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise invalid(field, f"the seats must be a whole number from 1 to {MAX_QUANTITY}")
    return quantity


def _proration(value: Any, field: str, choices: tuple[str, ...]) -> str | None:
    return None if value is None else check_choice(value, field, choices)


@dataclass
class Schedule:
    """The plan part of a create: what the schedule(s) asked for."""

    plan: str
    version: str | None
    start: datetime | None
    end: datetime | None
    trial_days: int | None
    quantity: int | None


def plan_code(key: str, document: CatalogDocument, view: View | None) -> str | None:
    """The catalog plan a `pricing_plan_id` names: a plan code, or a pricing plan's id (or its
    ACTIVE version's id) as the pricing plan resources hand them out."""
    if any(p.code == key for p in document.plans):
        return key
    return pricing_plans.plan_code_of(view, key) if view is not None else None


def parse_schedules(items: Any, field: str, document: CatalogDocument, view: View | None = None) -> Schedule:
    """One DEFAULT schedule, optionally after one TRIAL schedule (its days become trial_days).
    `pricing_plan_id` is the ratecard plan code (the plan must exist); `pricing_plan_version_id`
    is kept as given."""
    if items is None or items == []:
        raise missing(field, f"{field} is required: the schedule names the pricing plan (pricing_plan_id) the "
                             "subscription is billed on")
    if not isinstance(items, list) or len(items) > 2:
        raise invalid(field, f"{field} must be a list of one schedule (or a TRIAL schedule and then one DEFAULT "
                             "schedule); later changes go through change-plan")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid(f"{field}.{index}", f"{field}.{index} must be an object")
    kinds = [item.get("type") or "DEFAULT" for item in items]
    for index, kind in enumerate(kinds):
        check_choice(kind, f"{field}.{index}.type", ("TRIAL", "DEFAULT"))
    if kinds not in (["DEFAULT"], ["TRIAL", "DEFAULT"]):
        raise invalid(f"{field}.0.type", f"{field} must be one DEFAULT schedule, or a TRIAL schedule followed by one "
                                         "DEFAULT schedule")
    main_index = len(items) - 1
    main = items[main_index]
    prefix = f"{field}.{main_index}"
    plan = main.get("pricing_plan_id")
    if plan is None and isinstance(main.get("pricing_plan"), dict):
        plan = main["pricing_plan"].get("reference") or main["pricing_plan"].get("id")
    if plan is None:
        raise missing(f"{prefix}.pricing_plan_id", f"{prefix}.pricing_plan_id is required (the pricing plan's id or "
                                                   "reference: ratecard's plan code)")
    plan = check_reference(plan, f"{prefix}.pricing_plan_id", MAX_REFERENCE)
    plan = plan_code(plan, document, view) or plan
    listed = next((p for p in document.plans if p.code == plan), None)
    if listed is None:
        raise invalid(f"{prefix}.pricing_plan_id", f"pricing plan {plan!r} does not exist")
    version = check_text(main.get("pricing_plan_version_id"), f"{prefix}.pricing_plan_version_id")
    start = moment(main["start_at"], f"{prefix}.start_at") if main.get("start_at") is not None else None
    end = moment(main["end_at"], f"{prefix}.end_at") if main.get("end_at") is not None else None
    trial_days = None
    if len(items) == 2:
        trial = items[0]
        if trial.get("pricing_plan_id") not in (None, plan):
            raise invalid(f"{field}.0.pricing_plan_id", "a TRIAL schedule is free time on the DEFAULT schedule's plan: "
                                                        "give the same pricing_plan_id, or none")
        trial_start = moment(trial.get("start_at"), f"{field}.0.start_at") if trial.get("start_at") else None
        trial_end = moment(trial.get("end_at"), f"{field}.0.end_at") if trial.get("end_at") else start
        if trial_start is None or trial_end is None:
            raise missing(f"{field}.0.start_at", "a TRIAL schedule needs start_at, and end_at (or the DEFAULT "
                                                 "schedule's start_at)")
        if start is not None and start != trial_end:
            raise invalid(f"{prefix}.start_at", "the DEFAULT schedule must start where the TRIAL schedule ends")
        trial_days = trial_days_between(trial_start, trial_end)
        start = trial_start
    if end is not None and start is not None and end <= start:
        raise invalid(f"{prefix}.end_at", "end_at must be after start_at")
    if main.get("billing_period") is not None:
        check_billing_period(main["billing_period"], f"{prefix}.billing_period", listed.interval)
    if main.get("pricing_currency") is not None and main["pricing_currency"] != listed.currency:
        raise invalid(f"{prefix}.pricing_currency", f"pricing plan {plan!r} prices in {listed.currency}")
    return Schedule(plan, version, start, end, trial_days, seats(main, f"{prefix}."))


def check_billing_period(value: Any, field: str, interval: str) -> None:
    """ratecard bills on the plan's interval: a billing period may only repeat it."""
    period = parse_period(value, field)
    wanted = INTERVAL_PERIODS[interval]
    if (period.type, period.value) != wanted:
        raise invalid(field, f"the pricing plan bills every {interval}: billing_period must be "
                             f"{{type: {wanted[0]}, value: {wanted[1]}}} (another period needs another plan)")


# ---------------------------------------------------------------- rows


def _row_body(data: dict[str, Any], current: dict[str, Any], view: View, customer: str | None = None) -> dict[str, Any]:
    """The Solvimon-only fields kept in the subscription's row, from a create or an update."""
    body = dict(current)
    for name in ROW_FIELDS:
        if name in data:
            body[name] = check_text(data[name], name)
    for name in ("initial_term", "renewal_term"):
        if data.get(name) is not None:
            body[name] = parse_period(data[name], name).as_dict()
    if data.get("auto_renewal") is not None:
        if not isinstance(data["auto_renewal"], bool):
            raise invalid("auto_renewal", "auto_renewal must be true or false")
        body["auto_renewal"] = data["auto_renewal"]
    if data.get("custom_fields") is not None:
        body["custom_fields"] = _custom_fields(data["custom_fields"])
    if "pricing_plan_subscription_group_id" in data:
        key = data["pricing_plan_subscription_group_id"]
        if key is None:
            body.pop("group_id", None)
        else:
            group = view.resources.find(GROUP, check_text(key, "pricing_plan_subscription_group_id"))
            if group is None:
                raise invalid("pricing_plan_subscription_group_id", f"subscription group {key!r} does not exist")
            owner = group.body.get("owner")
            if owner is not None and customer is not None and owner != customer:
                raise invalid("pricing_plan_subscription_group_id", f"subscription group {group.reference!r} is for "
                                                                    f"customer {owner!r} only")
            body["group_id"] = group.id
    return {key: value for key, value in body.items() if value is not None}


def _custom_fields(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > 50:
        raise invalid("custom_fields", "custom_fields must be a list of at most 50 {reference, value}")
    fields = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or item.get("reference") is None:
            raise invalid(f"custom_fields.{index}", f"custom_fields.{index} must be an object with a reference")
        entry: dict[str, Any] = {"reference": check_reference(item["reference"], f"custom_fields.{index}.reference")}
        if item.get("value") is not None:
            entry["value"] = check_text(item["value"], f"custom_fields.{index}.value", 1000)
        if item.get("values") is not None:
            if not isinstance(item["values"], list) or len(item["values"]) > 50:
                raise invalid(f"custom_fields.{index}.values", "values must be a list of at most 50 strings")
            entry["values"] = [check_text(v, f"custom_fields.{index}.values.{i}", 1000) for i, v in
                               enumerate(item["values"])]
        fields.append(entry)
    return fields


def _refuse_unmapped(data: dict[str, Any], drafts: bool = False) -> None:
    """Fields with an effect ratecard cannot give are refused, not silently dropped."""
    if data.get("type") not in (None, "BILLING"):
        raise invalid("type", "only BILLING subscriptions exist in ratecard (no QUOTE or TEMPLATE)")
    if data.get("variant") not in (None, "DEFAULT"):
        raise invalid("variant", "only the DEFAULT variant exists in ratecard (no forward, self or seller billing)")
    if data.get("forward_customer_id") is not None:
        raise invalid("forward_customer_id", "forward billing is not supported by ratecard")
    if data.get("status") not in ((None, "ACTIVE", "DRAFT") if drafts else (None, "ACTIVE")):
        raise invalid("status", "a subscription is created ACTIVE, or DRAFT without a schedule (it bills nothing "
                                "until it has one)")


# ---------------------------------------------------------------- reads


@dataclass
class Found:
    """A subscription: its catalog terms (as `ratecard subscriptions show` gives them) and row."""

    terms: dict[str, Any]
    row: Resource | None


def _reading(store: Store, environment: str, now: datetime) -> tuple[View, CatalogDocument]:
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog()
        if document is None:
            raise changes._no_catalog()
        return View(environment, change.resources, document), document


def row_of(view: View, reference: str) -> Resource | None:
    return view.resources.by_reference.get((SUBSCRIPTION, reference))


def is_draft(row: Resource | None, document: CatalogDocument | None) -> bool:
    """A subscription created without a schedule: a row only, not (yet) in the catalog."""
    return (row is not None and bool(row.body.get("draft"))
            and (document is None or not any(s.reference == row.reference for s in document.subscriptions)))


def is_void(row: Resource | None, document: CatalogDocument | None) -> bool:
    """A subscription voided (made in error): a row only, out of the catalog, billing nothing."""
    return (row is not None and row.body.get("status") == "VOID"
            and (document is None or not any(s.reference == row.reference for s in document.subscriptions)))


def _found(store: Store, environment: str, now: datetime, reference: str) -> Found:
    view, document = _reading(store, environment, now)
    row = row_of(view, reference)
    if is_draft(row, document) or is_void(row, document):
        assert row is not None
        return Found({"reference": reference, "customer": row.body["customer"],
                      "status": "draft" if is_draft(row, document) else "void", "plan_now": None, "phases": []}, row)
    terms = terms_in(document, reference, now)
    if terms is None:
        raise NotFound(f"subscription {reference!r} does not exist")
    return Found(terms, row)


def terms_in(document: CatalogDocument, reference: str, now: datetime) -> dict[str, Any] | None:
    """The catalog subscription's terms with its phases, in `document` (None: not in it)."""
    narrowed = document.model_copy(update={"subscriptions": [s for s in document.subscriptions
                                                             if s.reference == reference]})
    if not narrowed.subscriptions:
        return None
    catalog = build_catalog(narrowed)  # this subscription only (not the catalog's history: that grows)
    [terms] = changes.subscriptions_of(catalog, now)
    phases = [{"at": phase.at, "plan": phase.plan_code, "proration": phase.proration if index else None,
               "quantity": phase.quantity} for index, phase in enumerate(catalog.subscriptions[reference].phases())]
    return {**terms, "phases": phases}


def _put_row(store: Store, environment: str, now: datetime, reference: str, data: dict[str, Any],
             extra: dict[str, Any] | None = None, customer: str | None = None) -> None:
    with config_change(store, environment, to_micros(now)) as change:
        _write_row(change, reference, data, extra, customer)


def _write_row(change: ConfigChange, reference: str, data: dict[str, Any], extra: dict[str, Any] | None = None,
               customer: str | None = None) -> None:
    """The subscription's row with `data`'s fields and `extra`'s values (None takes one away), in
    the transaction `change` (with a catalog version written in it, or alone)."""
    view = View(change.environment, change.resources, None)  # the row's fields name rows only (its group)
    current = row_of(view, reference)
    body = _row_body(data, current.body if current is not None else {}, view, customer)
    for name, value in (extra or {}).items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    row_id = current.id if current is not None else change.new_id(SUBSCRIPTION_ROW_PREFIX, SUBSCRIPTION, reference)
    change.put(Resource(row_id, SUBSCRIPTION, reference, body, 0, 0))


def _row_with(reference: str, data: dict[str, Any], extra: dict[str, Any] | None = None,
              customer: str | None = None) -> changes.Rows:
    """The row write to store with a catalog version (changes.write_together)."""
    return lambda change, _: _write_row(change, reference, data, extra, customer)


# ---------------------------------------------------------------- writes


def _customer(view: View, data: dict[str, Any]) -> str:
    """The ACTIVE customer the request names (customer_id or customer_reference: an id or a reference)."""
    key = data.get("customer_id") if data.get("customer_id") is not None else data.get("customer_reference")
    if key is None:
        raise missing("customer_id", "customer_id (or customer_reference) is required")
    found = view.find_customer(check_text(key, "customer_id") or "")
    if found is None:
        raise invalid("customer_id", f"customer {key!r} does not exist")
    customer, customer_row = found
    customers.check_subscribable(customer.reference, customer_row)
    return customer.reference


# more rows a caller writes in the transaction of a create or a change of plan (all or nothing)
Also = Callable[[ConfigChange], None]


@dataclass
class Creation:
    """A create checked against one state of the catalog and rows, nothing stored yet: the catalog
    steps (none for a DRAFT, which is a row only) and the row that goes with them."""

    reference: str
    customer: str
    steps: list[changes.Step]
    data: dict[str, Any]
    extra: dict[str, Any]
    from_draft: bool


def create(store: Store, environment: str, now: datetime, data: dict[str, Any],
           schedules_field: str = "pricing_plan_schedule_infos", schedules: Any = None,
           from_draft: bool = False, also: Also | None = None) -> Found:
    """A new subscription (a new catalog version) with its row, stored together or not at all
    (with what `also` writes). Without a schedule (the SDK's create request cannot carry one: its
    schedule infos are read-only) the subscription is a DRAFT kept in its row only: it bills
    nothing until attach_schedule gives it a plan."""
    view, document = _reading(store, environment, now)
    creation = _creation(view, document, now, data, schedules_field, schedules, from_draft)

    def rows(change: ConfigChange, stored: CatalogDocument | None) -> None:
        _store_creation(change, creation, stored)
        if also is not None:
            also(change)

    if creation.steps:
        changes.write_together(store, now, environment, creation.steps, rows)
    else:
        with config_change(store, environment, to_micros(now)) as change:
            rows(change, change.catalog())
    return _found(store, environment, now, creation.reference)


def _creation(view: View, document: CatalogDocument, now: datetime, data: dict[str, Any], schedules_field: str,
              schedules: Any, from_draft: bool = False) -> Creation:
    """Every check of a create, against `view` and `document`; what to store."""
    if not from_draft:
        _refuse_unmapped(data, drafts=True)
    customer = _customer(view, data)
    reference = data.get("reference")
    reference = check_reference(reference if reference is not None else f"sub_{secrets.token_hex(8)}",
                                max_length=MAX_REFERENCE)
    existing = row_of(view, reference)
    if any(s.reference == reference for s in document.subscriptions) or (existing is not None and not from_draft):
        raise already_exists("pricing plan subscription", reference)
    requires_reference = data.get("requires_reference", False)
    if not isinstance(requires_reference, bool):
        raise invalid("requires_reference", "requires_reference must be true or false")
    items = data.get(schedules_field) if schedules is None else schedules
    if items in (None, []) and schedules_field == "pricing_plan_schedule_infos":
        _row_body(data, existing.body if existing is not None else {}, view, customer)  # checked before storing
        return Creation(reference, customer, [], data, {"draft": True, "customer": customer,
                                                        "requires_reference": requires_reference or None}, from_draft)
    if data.get("status") == "DRAFT":
        raise invalid("status", "a subscription with a schedule bills from its start: it is ACTIVE, not DRAFT")
    schedule = parse_schedules(items, schedules_field, document, view)
    listed = next(p for p in document.plans if p.code == schedule.plan)
    if data.get("billing_period") is not None:
        check_billing_period(data["billing_period"], "billing_period", listed.interval)
    if data.get("billing_currency") is not None and data["billing_currency"] != listed.currency:
        raise invalid("billing_currency", f"pricing plan {schedule.plan!r} bills in {listed.currency}")
    quantity = schedule.quantity if schedule.quantity is not None else seats(data)
    trial_days = schedule.trial_days
    if trial_days is None and data.get("trial_days") is not None:
        trial_days = data["trial_days"]
        if isinstance(trial_days, bool) or not isinstance(trial_days, int) or not 0 <= trial_days <= 730:
            raise invalid("trial_days", "trial_days must be a whole number of days from 0 to 730")
    end_proration = _proration(data.get("end_proration"), "end_proration", ("prorate", "none")) or "prorate"
    _row_body(data, existing.body if existing is not None else {}, view, customer)  # checked before storing
    steps = [changes.create_step(now, reference=reference, customer=customer, plan=schedule.plan,
                                 start=instant_text(schedule.start) if schedule.start else None, quantity=quantity,
                                 trial_days=trial_days, requires_reference=requires_reference)]
    if schedule.end is not None:  # the end in the same catalog version as the start
        steps.append(changes.cancel_step(now, reference=reference, at=instant_text(schedule.end),
                                         proration=end_proration))
    extra: dict[str, Any] = {"draft": None, "customer": None, "requires_reference": None}
    if schedule.version:
        extra["versions"] = [schedule.version]
    return Creation(reference, customer, steps, data, extra, from_draft)


def _store_creation(change: ConfigChange, creation: Creation, document: CatalogDocument | None) -> None:
    """The create's row, under the environment's lock, in the transaction that stores its catalog
    version (if any). The reference and the customer are checked again there: a create of the
    same reference that came first (a DRAFT, or a draft given its schedule), or a customer archived
    (or deprecated) since the create checked it, makes this one refused, and nothing of it is stored."""
    customers.check_subscribable(creation.customer, change.resources.by_reference.get((CUSTOMER, creation.customer)))
    reference = creation.reference
    current = change.resources.by_reference.get((SUBSCRIPTION, reference))
    if creation.from_draft:
        if current is None or not current.body.get("draft"):
            raise not_found("DRAFT pricing plan subscription", reference)
    elif current is not None:
        raise already_exists("pricing plan subscription", reference)
    if not creation.steps and document is not None and any(s.reference == reference for s in document.subscriptions):
        raise already_exists("pricing plan subscription", reference)
    _write_row(change, reference, creation.data, creation.extra, creation.customer)


def attach_schedule(store: Store, environment: str, now: datetime, key: str, schedule: dict[str, Any],
                    also: Also | None = None) -> Found:
    """A schedule (Solvimon's PricingPlanScheduleCreateRequest: pricing_plan_id, start_at, end_at,
    seats_values, pricing_plan_version_id, type) given to a subscription: a DRAFT subscription
    becomes a catalog subscription on that plan; one that bills already changes plan at start_at
    (prorated). For the pricing plan schedules resource to call."""
    view, document = _reading(store, environment, now)
    row = row_of(view, key)
    if row is not None and row.body.get("draft") and not any(s.reference == key for s in document.subscriptions):
        data = {**{k: v for k, v in row.body.items() if k in ROW_FIELDS}, "reference": key,
                "customer_reference": row.body["customer"],
                "requires_reference": bool(row.body.get("requires_reference"))}
        return create(store, environment, now, data, "pricing_plan_schedules", [schedule], from_draft=True,
                      also=also)
    found, _ = change_plan(store, environment, now, key, schedule, also)
    return found


def init(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[Found, Any]:
    """Solvimon's init: the customer (created when it does not exist yet, ACTIVE unless a status is
    given), the subscription and its schedule in one call and one transaction: when the
    subscription cannot be made, nothing is stored (not the customer either). Returns (the
    subscription, the customer key)."""
    subscription = data.get("pricing_plan_subscription") or {}
    if not isinstance(subscription, dict):
        raise invalid("pricing_plan_subscription", "pricing_plan_subscription must be an object")
    customer = data.get("customer")
    if customer is not None and not isinstance(customer, dict):
        raise invalid("customer", "customer must be an object")
    created = None
    box = webhook_events.outbox(store, environment, now)  # read before the lock
    with config_change(store, environment, to_micros(now)) as change:
        if customer is not None:
            reference = customer.get("reference")
            if reference is None or View(environment, change.resources, change.catalog()).find_customer(
                    str(reference)) is None:
                created = customers.create_in(change, {"status": "ACTIVE", **customer})
                reference = created[1].reference
                box.write(change.connection, [customers.created_event(created)])  # before the subscription's
            subscription = {**subscription, "customer_reference": reference}
            subscription.pop("customer_id", None)
        try:
            document = change.catalog()
            if document is None:
                raise changes._no_catalog()
            creation = _creation(View(environment, change.resources, document), document, now, subscription,
                                 "pricing_plan_schedules", data.get("pricing_plan_schedules"))
            changes.apply_steps(change, now, creation.steps, box)  # with its webhook deliveries
            _store_creation(change, creation, change.catalog())
        except ServiceError as exc:
            field = exc.field
            if field and not field.startswith(("pricing_plan_schedules", "subscriptions")):
                exc.field = f"pricing_plan_subscription.{field}"  # the request's own path to the field at fault
            raise
    found = _found(store, environment, now, creation.reference)
    return found, found.terms["customer"]


def update(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> Found:
    """The row's fields (name, description, purchase order number, terms, custom fields, group).
    What bills (plan, seats, dates) changes through change-plan and cancel."""
    found = get(store, environment, now, key)
    reference = found.terms["reference"]
    if data.get("reference") not in (None, reference):
        raise invalid_operation("a subscription's reference cannot change: events and invoices name it", "reference")
    _refuse_unmapped({k: v for k, v in data.items() if k != "status"})
    for name in ("customer_id", "customer_reference"):
        if data.get(name) is not None and data[name] not in (found.terms["customer"], _customer_id(store, environment,
                                                                                                   now, found)):
            raise invalid_operation("a subscription's customer cannot change: cancel it and create another", name)
    if data.get("pricing_plan_schedule_infos") is not None:
        raise invalid_operation("the plan changes through change-plan (POST .../change-plan), not PATCH",
                                "pricing_plan_schedule_infos")
    extra = {}
    if data.get("status") is not None:
        status = check_choice(data["status"], "status", STATUSES)
        if status == "ARCHIVED" and found.terms["status"] != "ended":
            raise invalid_operation("only a cancelled (ended) subscription can be archived", "status")
        if status not in ("ARCHIVED", _status(found)):
            raise invalid_operation(f"status {status} is not set by PATCH (cancel ends a subscription)", "status")
        if status == "ARCHIVED":
            extra["status"] = "ARCHIVED"
    _put_row(store, environment, now, reference, data, extra, found.terms["customer"])
    return _found(store, environment, now, reference)


def _customer_id(store: Store, environment: str, now: datetime, found: Found) -> str:
    view, _ = _reading(store, environment, now)
    return view.customer_id(found.terms["customer"])


def _status(found: Found) -> str:
    if found.terms["status"] in ("draft", "void"):
        return found.terms["status"].upper()
    if found.row is not None and found.row.body.get("status") == "ARCHIVED":
        return "ARCHIVED"
    return "CANCELLED" if found.terms["status"] == "ended" else "ACTIVE"


def _refuse_draft(found: Found, what: str) -> None:
    if found.terms["status"] == "void":
        raise invalid_operation(f"subscription {found.terms['reference']!r} is VOID (made in error, it bills "
                                "nothing): create another subscription")
    if found.terms["status"] == "draft":
        raise invalid_operation(f"subscription {found.terms['reference']!r} is a DRAFT without a schedule (it bills "
                                f"nothing): give it a pricing plan schedule before you {what}")


def get(store: Store, environment: str, now: datetime, key: str) -> Found:
    try:
        return _found(store, environment, now, key)
    except NotFound:
        raise not_found("pricing plan subscription", key) from None


def change_plan(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any],
                also: Also | None = None) -> tuple[Found, int]:
    """A change of plan from `start_at` (default now), settled as change_terms says, stored with
    its version label (and what `also` writes) or not at all. Returns the subscription after it
    and the index of the new phase (its schedule)."""
    found = get(store, environment, now, key)
    reference = found.terms["reference"]
    _refuse_draft(found, "change its plan")
    plan = data.get("pricing_plan_id")
    if plan is None:
        raise missing("pricing_plan_id", "pricing_plan_id is required (the plan's id or reference)")
    plan = check_reference(plan, "pricing_plan_id", MAX_REFERENCE)
    view, document = _reading(store, environment, now)
    plan = plan_code(plan, document, view) or plan
    listed = next((p for p in document.plans if p.code == plan), None)
    if listed is None:
        raise invalid("pricing_plan_id", f"pricing plan {plan!r} does not exist")
    if data.get("billing_period") is not None:
        check_billing_period(data["billing_period"], "billing_period", listed.interval)
    timing = None if data.get("timing") is None else check_choice(data["timing"], "timing", TIMINGS)
    proration = _proration(data.get("proration"), "proration", ("prorate", "none", "invoice_now"))
    start_at = moment(data["start_at"], "start_at") if data.get("start_at") is not None else None
    proration, at_boundary = change_terms(timing, proration, start_at)
    quantity = seats(data)
    at = start_at or now
    if at_boundary:
        at = next_boundary(document, reference, now)
    if plan == _plan_at(found, at) and quantity is None:
        raise invalid("pricing_plan_id", f"the subscription is on pricing plan {plan!r} already: give another plan")
    version = check_text(data.get("pricing_plan_version_id"), "pricing_plan_version_id")
    step = changes.change_step(now, reference=reference, at=instant_text(at), plan=plan, proration=proration,
                               quantity=quantity)

    def rows(change: ConfigChange, stored: CatalogDocument) -> None:
        """The new schedule's version label, in the catalog version's transaction."""
        if version is not None:
            index = len(_spec_in(stored, reference).phases()) - 1
            current = change.resources.by_reference.get((SUBSCRIPTION, reference))
            versions = list(current.body.get("versions", [])) if current is not None else []
            versions += [None] * (index + 1 - len(versions))
            versions[index] = version
            _write_row(change, reference, {}, {"versions": versions})
        if also is not None:
            also(change)

    changes.write_together(store, now, environment, [step],
                           rows if version is not None or also is not None else None)
    after = _found(store, environment, now, reference)
    return after, len(after.terms["phases"]) - 1


def _spec_in(document: CatalogDocument, reference: str) -> SubscriptionSpec:
    """The subscription `reference` of `document`, resolved (the others left out)."""
    narrowed = document.model_copy(update={"subscriptions": [s for s in document.subscriptions
                                                             if s.reference == reference]})
    return build_catalog(narrowed).subscriptions[reference]


def _plan_at(found: Found, at: datetime) -> str | None:
    """The plan in force at `at` (the start's plan before the start)."""
    zone = ZoneInfo(found.terms["timezone"])
    phases = found.terms["phases"]
    chosen = phases[0]["plan"] if phases else None
    for phase in phases:
        if to_local(phase["at"], zone) <= at:
            chosen = phase["plan"]
    return chosen


def next_boundary(document: CatalogDocument, reference: str, now: datetime) -> datetime:
    """The end of the subscription's period holding `now`."""
    spec = _spec_in(document, reference)
    period = replace(spec, end=None).schedule().period_containing(now)
    if period is None:
        raise invalid_operation("the subscription has not started: there is no current billing period", "timing")
    return period.end


def cancel(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> Found:
    """Solvimon's cancel, mapped by cancel_terms onto ratecard's cancel (or resume, for UNDO)."""
    found = get(store, environment, now, key)
    reference = found.terms["reference"]
    _refuse_draft(found, "cancel it")
    if data.get("type") is None:
        raise missing("type", "type is required: " + ", ".join(CANCEL_TYPES))
    kind = check_choice(data["type"], "type", CANCEL_TYPES)
    if data.get("cancel_dunning_actions") is not None:
        if not isinstance(data["cancel_dunning_actions"], bool):
            raise invalid("cancel_dunning_actions", "cancel_dunning_actions must be true or false")
        if data["cancel_dunning_actions"] and kind != "NOW":
            raise invalid("cancel_dunning_actions", "cancel_dunning_actions requires type NOW")
    reason = check_text(data.get("reason"), "reason", 1000)
    cancel_at = moment(data["cancel_at"], "cancel_at") if data.get("cancel_at") is not None else None
    if cancel_at is not None and kind != "DATE":
        raise invalid("cancel_at", "cancel_at is only for type DATE")
    proration = _proration(data.get("end_proration"), "end_proration", ("prorate", "none"))
    term_end = None
    initial = (found.row.body.get("initial_term") if found.row is not None else None)
    if initial is not None:
        zone = ZoneInfo(found.terms["timezone"])
        start = to_local(_moment_of(found.terms["start"]), zone)
        term_end = after_term(start, Term(initial["type"], initial["value"]))
    terms = cancel_terms(kind, now, cancel_at, term_end, proration)
    if terms.undo:
        step = changes.resume_step(now, reference=reference)
    else:
        step = changes.cancel_step(now, reference=reference, at=instant_text(terms.at) if terms.at is not None else None,
                                   at_period_end=terms.at_period_end, proration=terms.proration)
    cancellation = None if terms.undo else {"type": kind, "reason": reason}
    changes.write_together(store, now, environment, [step], _row_with(reference, {}, {"cancellation": cancellation}))
    return _found(store, environment, now, reference)


def _moment_of(value: Any) -> date | datetime:
    from ...catalog.edits import parse_moment

    return parse_moment(value)


# ---------------------------------------------------------------- groups


def _group_body(view: View, data: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    body = dict(current)
    for name in ("name", "description"):
        if name in data:
            body[name] = check_text(data[name], name)
    if "owner_customer_id" in data:
        owner = data["owner_customer_id"]
        if owner is None:
            body.pop("owner", None)
        else:
            found = view.find_customer(check_text(owner, "owner_customer_id") or "")
            if found is None:
                raise invalid("owner_customer_id", f"customer {owner!r} does not exist")
            body["owner"] = found[0].reference
    return {key: value for key, value in body.items() if value is not None}


def _members(change: Any, view: View, group: Resource, keys: Any) -> None:
    """Put the subscriptions `keys` names in the group (and only those)."""
    if not isinstance(keys, list) or len(keys) > 1000:
        raise invalid("pricing_plan_subscription_ids", "pricing_plan_subscription_ids must be a list")
    document = view.document or CatalogDocument()
    known = {s.reference: s.customer for s in document.subscriptions}
    known.update({row.reference: row.body["customer"] for row in view.resources.of_kind(SUBSCRIPTION)
                  if is_draft(row, document)})
    wanted = []
    for index, key in enumerate(keys):
        if not isinstance(key, str) or key not in known:
            raise invalid(f"pricing_plan_subscription_ids.{index}", f"pricing plan subscription {str(key)[:80]!r} "
                                                                    "does not exist")
        owner = group.body.get("owner")
        if owner is not None and known[key] != owner:
            raise invalid(f"pricing_plan_subscription_ids.{index}", f"subscription {key!r} is not of the group's "
                                                                    f"owner customer {owner!r}")
        wanted.append(key)
    for row in list(view.resources.of_kind(SUBSCRIPTION)):
        if row.body.get("group_id") == group.id and row.reference not in wanted:
            change.put(replace(row, body={k: v for k, v in row.body.items() if k != "group_id"}))
    for reference in wanted:
        row = view.resources.by_reference.get((SUBSCRIPTION, reference))
        body = {**(row.body if row is not None else {}), "group_id": group.id}
        row_id = row.id if row is not None else change.new_id(SUBSCRIPTION_ROW_PREFIX, SUBSCRIPTION, reference)
        change.put(Resource(row_id, SUBSCRIPTION, reference, body, 0, 0))


def create_group(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        view = View(environment, change.resources, change.catalog())
        if data.get("reference") is None:
            raise missing("reference")
        reference = check_reference(data["reference"])
        if view.resources.by_reference.get((GROUP, reference)) is not None:
            raise already_exists("subscription group", reference)
        row = Resource(change.new_id(GROUP_PREFIX, GROUP, reference), GROUP, reference, _group_body(view, data, {}),
                       0, 0)
        row = change.put(row)
        if data.get("pricing_plan_subscription_ids") is not None:
            _members(change, view, row, data["pricing_plan_subscription_ids"])
        return view, row


def update_group(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        view = View(environment, change.resources, change.catalog())
        row = view.resources.find(GROUP, key)
        if row is None:
            raise not_found("subscription group", key)
        reference = row.reference
        if data.get("reference") is not None and data["reference"] != reference:
            reference = check_reference(data["reference"])
            if view.resources.by_reference.get((GROUP, reference)) is not None:
                    raise already_exists("subscription group", reference)
        row = change.put(Resource(row.id, GROUP, reference, _group_body(view, data, row.body), 0, 0))
        if data.get("pricing_plan_subscription_ids") is not None:
            _members(change, view, row, data["pricing_plan_subscription_ids"])
        return view, row


def delete_group(store: Store, environment: str, now: datetime, key: str) -> tuple[View, Resource]:
    with config_change(store, environment, to_micros(now)) as change:
        view = View(environment, change.resources, change.catalog())
        row = view.resources.find(GROUP, key)
        if row is None:
            raise not_found("subscription group", key)
        members = [r.reference for r in view.resources.of_kind(SUBSCRIPTION) if r.body.get("group_id") == row.id]
        if members:
            raise invalid_operation(f"subscription group {row.reference!r} still holds {len(members)} "
                                    f"subscription(s) ({members[0]!r}, …): move them out first")
        change.delete(row.id)
        return view, row


def group_members(view: View, group: Resource) -> list[str]:
    document = view.document
    live = {s.reference for s in document.subscriptions} if document is not None else set()
    return [row.reference for row in view.resources.of_kind(SUBSCRIPTION)
            if row.body.get("group_id") == group.id and (row.reference in live or is_draft(row, document))]


__all__ = ["CUSTOMER", "GROUP", "SUBSCRIPTION"]
