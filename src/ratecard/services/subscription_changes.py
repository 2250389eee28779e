"""Subscriptions changed by command: create one, give one new terms from an instant, end one; list
them and show one's history. The CLI (`ratecard subscriptions …`) and the HTTP API
(`/v1/subscriptions…`) both call these.

Every write edits the current catalog (catalog/edits.py), validates the whole result like
`catalog check` and stores it as a new catalog version, only if no other version was stored
meanwhile (else it is computed again), so a change never loses one stored concurrently. A
Solvimon-compatible call that edits a subscription more than once (its start and its end) or
keeps API rows next to it stores all of it as one version with those rows, in one transaction
(write_together): all of it or nothing. Nothing is edited in place: each version stays, and
`show` lists the versions that changed a subscription. A dry run (preview) does the same up to
the store and adds the invoices the customer would get next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..catalog import Catalog, Problem, SubscriptionSpec, build_catalog, check_document
from ..catalog.edits import (
    END_PRORATIONS,
    PRORATIONS,
    EditError,
    add_change,
    add_one_off,
    add_subscription,
    clear_end,
    drop_change,
    find_subscription,
    moment_text,
    parse_override,
    remove_subscription,
    set_end,
    set_first_terms,
)
from ..catalog.edits import (
    parse_moment as edit_moment,
)
from ..catalog.schema import MAX_QUANTITY, CatalogDocument, Subscription
from ..domain.instants import rfc3339, to_micros
from ..domain.periods import to_local
from ..store import Store
from ..store.catalogs import iter_versions, load_version, save_version_on, version_text
from ..store.resources import ConfigChange, config_change, rows_of_kinds
from ..store.subscription_invoices import final_documents, remove_drafts_counting_finals
from . import webhook_events
from .errors import AlreadyExists, Conflict, InvalidInput, NoCatalog, NotFound, Refused, ServiceError
from .parsing import parse_moment
from .resources.customers import check_subscribable
from .resources.model import CUSTOMER
from .subscriptions import preview_documents

MAX_PROBLEMS_SHOWN = 10
ATTEMPTS = 5  # a write computed from a version another writer replaced is computed again, this many times


class ChangeInvalid(InvalidInput):
    """The edited catalog does not validate: every problem with its path; nothing was stored."""

    def __init__(self, problems: list[Problem]) -> None:
        shown = "; ".join(str(problem) for problem in problems[:MAX_PROBLEMS_SHOWN])
        more = f" (and {len(problems) - MAX_PROBLEMS_SHOWN} more)" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        super().__init__(f"{len(problems)} problem(s) in the catalog this would make; nothing was stored: "
                         f"{shown}{more}", field=problems[0].path if problems else None)
        self.problems = problems


@dataclass
class SubscriptionEdit:
    """What a create, change or cancel did (or, in a dry run, would do)."""

    action: str  # created | changed | cancelled | resumed | charged | unscheduled | voided
    reference: str
    customer: str
    described: list[str]  # what changed, one sentence each
    before: dict[str, Any] | None  # the subscription's terms before (None when created)
    after: dict[str, Any]  # its terms after, with status, plan_now and next_change
    previous_version: int
    catalog_version: int  # the version stored (a dry run: the one it would be)
    stored: bool
    dry_run: bool
    documents: list[dict[str, Any]] | None = None  # a dry run: the customer's next invoices
    invoices: dict[str, Any] | None = None  # what the next invoice run changes for the subscription

    def as_dict(self) -> dict[str, Any]:
        result = {"action": self.action, "reference": self.reference, "customer": self.customer,
                  "changes": self.described, "before": self.before, "subscription": self.after,
                  "previous_version": self.previous_version, "catalog_version": self.catalog_version,
                  "stored": self.stored, "dry_run": self.dry_run}
        if self.documents is not None:
            result["documents"] = self.documents
        result["invoices"] = self.invoices
        return result


@dataclass
class History:
    """One subscription: its terms now and every phase, and the catalog versions that changed it."""

    terms: dict[str, Any]
    phases: list[dict[str, Any]]
    versions: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.terms, "phases": self.phases, "versions": self.versions}


# ---------------------------------------------------------------- writes


def create_subscription(store: Store, now: datetime, environment: str = "live", *, reference: str, customer: str,
                        plan: str, start: str | None = None, anchor: int | None = None,
                        overrides: dict[str, dict[str, Any]] | None = None, requires_reference: bool = False,
                        quantity: int | None = None, trial_days: int | None = None,
                        dry_run: bool = False) -> SubscriptionEdit:
    """A new subscription of an existing customer, from `start` (default: now). `requires_reference`:
    only events naming it are billed by it (a customer's second subscription on the same meters).
    `quantity`: seats (its flat fees billed that many times). `trial_days`: days free from the start
    (None: the plan's; 0: none). The customer must be one a subscription may be made for
    (customers.check_subscribable, the API's rule too): checked first, and again under the lock
    that stores the version, so a customer archived meanwhile is refused and nothing is stored."""
    step = create_step(now, reference=reference, customer=customer, plan=plan, start=start, anchor=anchor,
                       overrides=overrides, requires_reference=requires_reference, quantity=quantity,
                       trial_days=trial_days)
    check_subscribable(customer, next((row for row in rows_of_kinds(store, environment, (CUSTOMER,))
                                       if row.reference == customer), None), "customer")

    def still_subscribable(change: ConfigChange, _: CatalogDocument) -> None:
        check_subscribable(customer, change.resources.by_reference.get((CUSTOMER, customer)), "customer")

    return _write(store, now, environment, step, dry_run, still_subscribable)


def change_subscription(store: Store, now: datetime, environment: str = "live", *, reference: str, at: str,
                        plan: str | None = None, overrides: dict[str, dict[str, Any]] | None = None,
                        proration: str = "prorate", replace_later: bool = False, quantity: int | None = None,
                        dry_run: bool = False) -> SubscriptionEdit:
    """New terms (another plan, other overrides, another quantity of seats, or several) from `at`: a
    past instant corrects the history, a future one is scheduled. The fees already billed for the
    period holding `at` are settled as `proration` says."""
    return _write(store, now, environment, change_step(now, reference=reference, at=at, plan=plan,
                                                       overrides=overrides, proration=proration,
                                                       replace_later=replace_later, quantity=quantity), dry_run)


def cancel_subscription(store: Store, now: datetime, environment: str = "live", *, reference: str,
                        at: str | None = None, at_period_end: bool = False, proration: str = "prorate",
                        replace_later: bool = False, dry_run: bool = False) -> SubscriptionEdit:
    """End the subscription at `at`, or at the end of the period that holds now. An ended
    subscription may end earlier (backdated), never later."""
    return _write(store, now, environment, cancel_step(now, reference=reference, at=at, at_period_end=at_period_end,
                                                       proration=proration, replace_later=replace_later), dry_run)


def resume_subscription(store: Store, now: datetime, environment: str = "live", *, reference: str,
                        dry_run: bool = False) -> SubscriptionEdit:
    """Undo a cancellation: take away an end that is still to come (the subscription runs on, and
    the next invoice run bills its periods as if it had never been cancelled)."""
    return _write(store, now, environment, resume_step(now, reference=reference), dry_run)


def charge_subscription(store: Store, now: datetime, environment: str = "live", *, reference: str, code: str,
                        amount: str, at: str | None = None, description: str | None = None,
                        quantity: str | None = None, dry_run: bool = False) -> SubscriptionEdit:
    """A one-off charge (a set-up fee, professional services) on the subscription: billed once, on
    its first invoice cut at or after `at` (default: now), as `quantity` x `amount`. An `at` whose
    invoice is final already is billed by the next invoice run as a correction."""
    return _write(store, now, environment, charge_step(now, reference=reference, code=code, amount=amount, at=at,
                                                       description=description, quantity=quantity), dry_run)


def unschedule_change(store: Store, now: datetime, environment: str = "live", *, reference: str, at: str,
                      dry_run: bool = False) -> SubscriptionEdit:
    """Take back a change still to come (the one at exactly `at`): the terms before it run on. A
    change in force (at or before now) stays: its periods may be billed; a new change corrects it."""
    return _write(store, now, environment, unschedule_step(now, reference=reference, at=at), dry_run)


def reschedule_change(store: Store, now: datetime, environment: str = "live", *, reference: str, at: str,
                      new_at: str | None = None, plan: str | None = None, quantity: int | None = None,
                      proration: str = "prorate", dry_run: bool = False) -> SubscriptionEdit:
    """Move or rewrite a change still to come (the one at exactly `at`) in one catalog version: it
    is taken back and made again from `new_at` (default: where it was) with `plan` and `quantity`
    (default: its own)."""
    return _write(store, now, environment, reschedule_step(now, reference=reference, at=at, new_at=new_at, plan=plan,
                                                           quantity=quantity, proration=proration), dry_run)


def restart_subscription(store: Store, now: datetime, environment: str = "live", *, reference: str,
                         start: str | None = None, plan: str | None = None, quantity: int | None = None,
                         dry_run: bool = False) -> SubscriptionEdit:
    """New first terms (start, plan, seats) for a subscription that has not started yet: nothing
    was billed under them, so they are replaced, not changed from an instant."""
    return _write(store, now, environment, restart_step(now, reference=reference, start=start, plan=plan,
                                                        quantity=quantity), dry_run)


def void_subscription(store: Store, now: datetime, environment: str = "live", *, reference: str,
                      dry_run: bool = False) -> SubscriptionEdit:
    """A subscription made in error, undone: it leaves the catalog (a new version; the older
    versions keep it), so it bills nothing: its drafts are removed in the same transaction (as
    the next invoice run would) and its events match no subscription any more. Refused once a
    final document names it (a customer was sent an invoice: cancel it, and credit the invoice)."""
    return _write(store, now, environment, void_step(store, now, environment, reference=reference), dry_run,
                  lambda change, _: void_drafts(change, now, reference))


def void_drafts(change: ConfigChange, now: datetime, reference: str) -> None:
    """Part of a void's transaction (with its catalog version): the subscription's drafts are
    removed (as the next invoice run would), and the void is refused (nothing stored) when a final
    document names it after all, such as a draft finalized while the void was being computed."""
    finals = remove_drafts_counting_finals(change.connection, change.environment, reference)
    if finals:
        raise _billed(reference, finals)


# ---------------------------------------------------------------- the steps (one edit each)


def create_step(now: datetime, *, reference: str, customer: str, plan: str, start: str | None = None,
                anchor: int | None = None, overrides: dict[str, dict[str, Any]] | None = None,
                requires_reference: bool = False, quantity: int | None = None, trial_days: int | None = None) -> Step:
    """What create_subscription stores, as a step of write_together."""
    begins = parse_moment("start", start) if start is not None else now
    entry: dict[str, Any] = {"reference": reference, "customer": customer, "plan": plan,
                             "start": moment_text(begins)}
    if anchor is not None:
        entry["billing_anchor"] = anchor
    if quantity is not None:
        entry["quantity"] = quantity
    if trial_days is not None:
        entry["trial_days"] = trial_days
    if overrides:
        entry["overrides"] = overrides
    if requires_reference:
        entry["requires_reference"] = True

    def edit(raw: dict[str, Any], _: CatalogDocument) -> tuple[dict[str, Any], list[str]]:
        told = f"new subscription of customer {customer!r} to plan {plan!r} from {entry['start']}"
        if anchor is not None:
            told += f", periods starting on day {anchor}"
        if quantity is not None:
            told += f", {quantity} seat(s)"
        if trial_days is not None:
            told += f", trial of {trial_days} day(s)" if trial_days else ", no trial"
        return add_subscription(raw, entry), [told + _overrides_text(overrides)]

    return Step("created", reference, edit)


def change_step(now: datetime, *, reference: str, at: str, plan: str | None = None,
                overrides: dict[str, dict[str, Any]] | None = None, proration: str = "prorate",
                replace_later: bool = False, quantity: int | None = None) -> Step:
    """What change_subscription stores, as a step of write_together."""
    moment = parse_moment("at", at)
    _check_choice("proration", proration, PRORATIONS)
    if plan is None and not overrides and quantity is None:
        raise InvalidInput("give the new plan, overrides, quantity, or several", field="plan")
    if quantity is not None:
        _check_quantity(quantity)

    def edit(raw: dict[str, Any], document: CatalogDocument) -> tuple[dict[str, Any], list[str]]:
        edited = add_change(raw, reference, moment, plan=plan, overrides=overrides, proration=proration,
                            replace_later=replace_later, quantity=quantity)
        before = find_subscription(raw, reference).get("changes") or []
        after = find_subscription(edited, reference)["changes"]
        new = after[-1]
        seats = f", {new['quantity']} seat(s)" if "quantity" in new else ""
        told = [f"from {new['at']}: plan {new['plan']!r}{_overrides_text(new.get('overrides'))}{seats}, "
                f"proration {proration}{_boundary_note(_spec(document, reference), moment)}"]
        if len(before) >= len(after):
            told.append(f"{len(before) - len(after) + 1} later change(s) dropped")
        return edited, told

    return Step("changed", reference, edit)


def cancel_step(now: datetime, *, reference: str, at: str | None = None, at_period_end: bool = False,
                proration: str = "prorate", replace_later: bool = False) -> Step:
    """What cancel_subscription stores, as a step of write_together."""
    if (at is None) == (not at_period_end):
        raise InvalidInput("give either an instant or at-period-end, not both and not neither", field="at")
    _check_choice("proration", proration, END_PRORATIONS)
    moment = parse_moment("at", at) if at is not None else None

    def edit(raw: dict[str, Any], document: CatalogDocument) -> tuple[dict[str, Any], list[str]]:
        end = moment if moment is not None else _period_end(_spec(document, reference), now)
        edited = set_end(raw, reference, end, now, proration=proration, replace_later=replace_later)
        dropped = len(find_subscription(raw, reference).get("changes") or []) - len(
            find_subscription(edited, reference).get("changes") or [])
        told = [f"ends at {moment_text(end)}" + (" (the end of the current period)" if moment is None else "")
                + f", proration {proration}"]
        if dropped:
            told.append(f"{dropped} later change(s) dropped")
        return edited, told

    return Step("cancelled", reference, edit)


def resume_step(now: datetime, *, reference: str) -> Step:
    """What resume_subscription stores, as a step of write_together."""

    def edit(raw: dict[str, Any], _: CatalogDocument) -> tuple[dict[str, Any], list[str]]:
        return clear_end(raw, reference, now), ["end taken away: runs on until cancelled"]

    return Step("resumed", reference, edit)


def charge_step(now: datetime, *, reference: str, code: str, amount: str, at: str | None = None,
                description: str | None = None, quantity: str | None = None) -> Step:
    """What charge_subscription stores, as a step of write_together."""
    moment = parse_moment("at", at) if at is not None else now
    item: dict[str, Any] = {"code": code, "amount": amount, "at": moment_text(moment)}
    if description is not None:
        item["description"] = description
    if quantity is not None:
        item["quantity"] = quantity

    def edit(raw: dict[str, Any], _: CatalogDocument) -> tuple[dict[str, Any], list[str]]:
        times = f"{quantity} x " if quantity is not None else ""
        told = f"one-off charge {code!r} of {times}{amount} due {item['at']} (on the first invoice at or after it)"
        return add_one_off(raw, reference, item), [told]

    return Step("charged", reference, edit)


def unschedule_step(now: datetime, *, reference: str, at: str) -> Step:
    """What unschedule_change stores, as a step of write_together."""
    moment = parse_moment("at", at)

    def edit(raw: dict[str, Any], document: CatalogDocument) -> tuple[dict[str, Any], list[str]]:
        spec = _spec(document, reference)
        if to_local(moment, ZoneInfo(spec.timezone)) <= now:
            raise Refused(f"the change of subscription {reference!r} at {moment_text(moment)} is in force already: "
                          "make a new change from the date the terms should change instead", field="at")
        return drop_change(raw, reference, moment), [f"change at {moment_text(moment)} taken back"]

    return Step("unscheduled", reference, edit)


def reschedule_step(now: datetime, *, reference: str, at: str, new_at: str | None = None, plan: str | None = None,
                    quantity: int | None = None, proration: str = "prorate") -> Step:
    """What reschedule_change stores, as a step of write_together."""
    moment = parse_moment("at", at)
    target = parse_moment("at", new_at) if new_at is not None else moment
    _check_choice("proration", proration, PRORATIONS)
    if quantity is not None:
        _check_quantity(quantity)

    def edit(raw: dict[str, Any], document: CatalogDocument) -> tuple[dict[str, Any], list[str]]:
        spec = _spec(document, reference)
        zone = ZoneInfo(spec.timezone)
        if to_local(moment, zone) <= now or to_local(target, zone) <= now:
            raise Refused(f"the change of subscription {reference!r} at {moment_text(moment)} is in force already, "
                          "or would be: only a change still to come moves", field="at")
        entry = find_subscription(raw, reference)
        old = next((c for c in entry.get("changes") or []
                    if to_local(edit_moment(c["at"]), zone) == to_local(moment, zone)), None)
        if old is None:
            raise NotFound(f"subscription {reference!r} has no change at {moment_text(moment)}")
        dropped = drop_change(raw, reference, moment)
        edited = add_change(dropped, reference, target, plan=plan if plan is not None else old.get("plan"),
                            overrides=old.get("overrides") if plan in (None, old.get("plan")) else None,
                            proration=proration,
                            quantity=quantity if quantity is not None else old.get("quantity"))
        return edited, [f"change at {moment_text(moment)} now from {moment_text(target)}"]

    return Step("changed", reference, edit)


def restart_step(now: datetime, *, reference: str, start: str | None = None, plan: str | None = None,
                 quantity: int | None = None) -> Step:
    """What restart_subscription stores, as a step of write_together."""
    begins = parse_moment("start", start) if start is not None else None
    if quantity is not None:
        _check_quantity(quantity)

    def edit(raw: dict[str, Any], document: CatalogDocument) -> tuple[dict[str, Any], list[str]]:
        spec = _spec(document, reference)
        zone = ZoneInfo(spec.timezone)
        if to_local(spec.start, zone) <= now:
            raise Refused(f"subscription {reference!r} started at {moment_text(spec.start)}: its first terms are in "
                          "force; change them from an instant instead", field="start")
        if begins is not None and to_local(begins, zone) <= now:
            raise InvalidInput("a subscription that has not started may only move to a later instant than now",
                               field="start")
        told = [f"starts {moment_text(begins)}" if begins is not None else None,
                f"plan {plan!r}" if plan is not None else None,
                f"{quantity} seat(s)" if quantity is not None else None]
        return set_first_terms(raw, reference, start=begins, plan=plan, quantity=quantity), [
            "first terms: " + ", ".join(t for t in told if t)]

    return Step("changed", reference, edit)


def void_step(store: Store, now: datetime, environment: str, *, reference: str) -> Step:
    """What void_subscription stores, as a step of write_together."""
    finals = final_documents(store, environment, reference)
    if finals:
        raise _billed(reference, finals)

    def edit(raw: dict[str, Any], _: CatalogDocument) -> tuple[dict[str, Any], list[str]]:
        return remove_subscription(raw, reference), ["voided: taken out of the catalog, nothing is billed"]

    return Step("voided", reference, edit)


def _billed(reference: str, finals: int) -> Refused:
    return Refused(f"subscription {reference!r} has {finals} final invoice(s) or credit note(s): a subscription "
                   "that billed is cancelled, never voided (credit its invoices to pay the money back)")


def parse_overrides(values: list[str]) -> dict[str, dict[str, Any]]:
    """CHARGE.FIELD=VALUE options as overrides {charge: {field: value}}."""
    overrides: dict[str, dict[str, Any]] = {}
    for text in values:
        try:
            charge, name, value = parse_override(text)
        except EditError as exc:
            raise InvalidInput(str(exc), field="override") from None
        overrides.setdefault(charge, {})[name] = value
    return overrides


# an edit gets the current catalog raw (to edit) and validated (to read), and returns the edited raw
# document and what it changed, one sentence each
Edit = Callable[[dict[str, Any], CatalogDocument], tuple[dict[str, Any], list[str]]]


@dataclass(frozen=True)
class Step:
    """One edit of one subscription (what create_subscription, cancel_subscription, … store), to be
    stored on its own (_write) or with others and the API rows that go with them (write_together)."""

    action: str  # created | changed | cancelled | …, as SubscriptionEdit.action
    reference: str
    edit: Edit


# what write_together writes besides the catalog, in the same transaction: the API rows, given the
# transaction (the environment's lock held) and the catalog document being stored
Rows = Callable[[ConfigChange, CatalogDocument], None]

_ACTIONS = {"created": "subscription.created", "changed": "subscription.changed", "charged": "subscription.changed",
            "cancelled": "subscription.cancelled", "unscheduled": "subscription.changed",
            "voided": "subscription.cancelled"}


def _write(store: Store, now: datetime, environment: str, step: Step, dry_run: bool,
           rows: Rows | None = None) -> SubscriptionEdit:
    """Store one step as a new catalog version (write_together, with what `rows` writes in the
    same transaction), or, in a dry run, store nothing and price the customer's next invoices;
    either way with what the next invoice run changes."""
    if not dry_run:
        [result], stored = _store_together(store, now, environment, [step], rows)
        result.invoices = _impact(store, stored, result, now, environment)
        return result
    loaded = load_version(store, environment)
    if loaded is None:
        raise _no_catalog()
    version, document = loaded
    checked, described = _edited(document, step.edit)
    unchanged = checked.model_dump(mode="json") == document.model_dump(mode="json")
    result = _result(step.action, step.reference, document, checked, described, version,
                     version if unchanged else version + 1, now, stored=False, dry_run=True)
    result.documents = _next_invoices(store, checked, result, now, environment)
    result.invoices = _impact(store, checked, result, now, environment)
    return result


def write_together(store: Store, now: datetime, environment: str, steps: Sequence[Step],
                   rows: Rows | None = None) -> list[SubscriptionEdit]:
    """Store `steps`, one after the other, as one catalog version, with what `rows` writes (the API
    rows that go with them), in one transaction: all of it, or, when a step is refused or a write
    fails, none of it. The catalog is edited and validated without the environment's lock, then
    stored with the rows under it only if no other version was stored meanwhile (else it is all
    computed again from that one), so validating a large catalog never holds up other writers.
    `rows` runs under the lock: it reads the rows afresh there, and may refuse (raise) to leave
    nothing. Returns what each step did."""
    results, _ = _store_together(store, now, environment, steps, rows)
    return results


def apply_steps(change: ConfigChange, now: datetime, steps: Sequence[Step],
                box: webhook_events.Outbox) -> list[SubscriptionEdit]:
    """write_together's steps in a transaction the caller holds (with other writes of its own,
    such as a customer created in the same call): edited and validated under the lock, stored as
    one new version in that transaction, with their webhook deliveries (queued for the webhooks
    of `box`, read by the caller before it took the lock) when a version was stored."""
    if not steps:
        return []
    document = change.catalog()
    if document is None:
        raise _no_catalog()
    version = change.catalog_version or 0
    done = _edited_steps(document, steps)
    stored = change.save_catalog(done[-1][2])
    if stored != version:
        box.write(change.connection, _events(steps, stored))
    return [_result(step.action, step.reference, before, after, described, version, stored, now,
                    stored=stored != version, dry_run=False) for step, before, after, described in done]


def _events(steps: Sequence[Step], version: int) -> list[tuple[str, dict[str, Any]]]:
    """The webhook events of steps stored as catalog `version`."""
    return [(_ACTIONS[step.action], webhook_events.subscription_data(step.reference, version))
            for step in steps if step.action in _ACTIONS]


def _store_together(store: Store, now: datetime, environment: str, steps: Sequence[Step],
                    rows: Rows | None) -> tuple[list[SubscriptionEdit], CatalogDocument]:
    """write_together: (what each step did, the document stored). The steps' webhook deliveries
    are queued in the transaction that stores the new version (not when nothing changed)."""
    if not steps:
        raise ValueError("nothing to store: give at least one step")
    box = webhook_events.outbox(store, environment, now)

    def queue(connection: Any, stored: int) -> None:
        box.write(connection, _events(steps, stored))

    for _ in range(ATTEMPTS):
        loaded = load_version(store, environment)
        if loaded is None:
            raise _no_catalog()
        version, document = loaded
        done = _edited_steps(document, steps)
        final = done[-1][2]
        if rows is None:  # the catalog alone: no need to read the environment's rows under the lock
            stored = save_version_on(store, final, version, to_micros(now), environment, then=queue)
        else:
            text = version_text(final)  # before the lock: a large catalog takes a while to write out
            with config_change(store, environment, to_micros(now)) as change:
                stored = change.save_catalog_on(final, version, text)
                if stored is not None:
                    rows(change, final)
                    if stored != version:
                        queue(change.connection, stored)
        if stored is not None:  # the current version again when nothing changed
            return [_result(step.action, step.reference, before, after, described, version, stored, now,
                            stored=stored != version, dry_run=False)
                    for step, before, after, described in done], final
    raise Conflict(f"the catalog changed {ATTEMPTS} times while this change was being made; nothing was stored: "
                   "try again")


def _edited_steps(document: CatalogDocument, steps: Sequence[Step]) -> list[
        tuple[Step, CatalogDocument, CatalogDocument, list[str]]]:
    """Each step on the catalog the one before it left, each result validated: (step, the catalog
    before it, after it, what it changed)."""
    done = []
    for step in steps:
        after, described = _edited(document, step.edit)
        done.append((step, document, after, described))
        document = after
    return done


def _next_invoices(store: Store, catalog: CatalogDocument, result: SubscriptionEdit, now: datetime,
                   environment: str) -> list[dict[str, Any]]:
    """The edited customer's next invoices under the edited catalog (resolving its subscriptions only)."""
    mine = build_catalog(_narrowed(catalog, lambda s: s.customer == result.customer))
    return preview_documents(store, mine, result.catalog_version, result.customer, now, environment)


def _impact(store: Store, catalog: CatalogDocument, result: SubscriptionEdit, now: datetime,
            environment: str) -> dict[str, Any] | None:
    """What the next invoice run changes in the edited subscription's drafts and final invoices."""
    from .impact import invoice_impact

    mine = build_catalog(_narrowed(catalog, lambda s: s.customer == result.customer))
    return invoice_impact(store, mine, result.catalog_version, now, environment, {result.reference})


def _edited(document: CatalogDocument, edit: Edit) -> tuple[CatalogDocument, list[str]]:
    """(the edited catalog, validated; what changed)."""
    raw = document.model_dump(mode="json")
    try:
        edited, described = edit(raw, document)
    except EditError as exc:
        raise _service_error(exc) from None
    checked, problems = check_document(edited)
    if problems or checked is None:
        raise ChangeInvalid(problems)
    return checked, described


def _result(action: str, reference: str, before: CatalogDocument, after: CatalogDocument, described: list[str],
            previous: int, version: int, now: datetime, *, stored: bool, dry_run: bool) -> SubscriptionEdit:
    catalog = build_catalog(_narrowed(after, lambda s: s.reference == reference))
    spec = catalog.subscriptions.get(reference)
    old = next((s for s in before.subscriptions if s.reference == reference), None)
    if not stored and not dry_run:
        described = [*described, "nothing changed"]
    if spec is None:  # voided: its terms as they were, with the status it has now
        catalog = build_catalog(_narrowed(before, lambda s: s.reference == reference))
        spec = catalog.subscriptions[reference]
        terms = {**_terms(catalog, spec, now), "status": "void"}
    else:
        terms = _terms(catalog, spec, now)
    return SubscriptionEdit(action, reference, spec.customer, described,
                            old.model_dump(mode="json") if old is not None else None,
                            terms, previous, version, stored, dry_run)


def _narrowed(document: CatalogDocument, keep: Callable[[Subscription], bool]) -> CatalogDocument:
    """The (validated) catalog with only the subscriptions `keep` chooses and their customers: what
    reading or pricing a few subscriptions needs, without resolving thousands of others."""
    subscriptions = [s for s in document.subscriptions if keep(s)]
    customers = {s.customer for s in subscriptions}
    return document.model_copy(update={"subscriptions": subscriptions,
                                       "customers": [c for c in document.customers if c.reference in customers]})


def _spec(document: CatalogDocument, reference: str) -> SubscriptionSpec:
    spec = build_catalog(_narrowed(document, lambda s: s.reference == reference)).subscriptions.get(reference)
    if spec is None:
        raise NotFound(f"subscription {reference!r} does not exist")
    return spec


def _period_end(spec: SubscriptionSpec, now: datetime) -> datetime:
    """The end of the period holding `now` on the subscription's calendar (any end it has aside)."""
    reference = spec.reference
    if spec.end is not None and to_local(spec.end, ZoneInfo(spec.timezone)) <= now:
        raise Refused(f"subscription {reference!r} ended at {moment_text(spec.end)}; give an instant before it to "
                      "end it earlier", field="at")
    period = replace(spec, end=None).schedule().period_containing(now)
    if period is None:
        raise Refused(f"subscription {reference!r} starts at {moment_text(spec.start)}, after now: it has no current "
                      "period; give the instant it ends at", field="at")
    return period.end


def _boundary_note(spec: SubscriptionSpec, moment: date | datetime) -> str:
    """' (on a period boundary: nothing to prorate)' when `moment` starts a period."""
    local = to_local(moment, ZoneInfo(spec.timezone))
    period = replace(spec, end=None).schedule().period_containing(local)
    return " (on a period boundary: nothing to prorate)" if period is not None and period.start == local else ""


def _service_error(exc: EditError) -> ServiceError:
    message = str(exc)
    if exc.kind in ("unknown_subscription", "unknown_customer"):
        return NotFound(message, field=exc.field if exc.kind == "unknown_customer" else None)
    if exc.kind == "exists":
        return AlreadyExists(message)
    if exc.kind in ("later_changes", "ended"):
        return Refused(message, field=exc.field)
    return InvalidInput(message, field=exc.field)


def _no_catalog() -> NoCatalog:
    return NoCatalog("no catalog has been applied yet; apply one with the customers and plans first "
                     "(`ratecard catalog apply FILE`)")


def _check_quantity(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidInput(f"must be a whole number of seats from 1 to {MAX_QUANTITY}, got {str(quantity)[:40]!r}",
                           field="quantity")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidInput(f"must be one of {', '.join(choices)}, got {str(value)[:40]!r}", field=name)


def _overrides_text(overrides: dict[str, dict[str, Any]] | None) -> str:
    if not overrides:
        return ""
    return " with overrides " + ", ".join(f"{code}.{name}={_shown(value)}" for code, fields in sorted(overrides.items())
                                          for name, value in sorted(fields.items()))


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------- reads


def list_subscriptions(store: Store, now: datetime, environment: str = "live",
                       customer: str | None = None) -> list[dict[str, Any]]:
    """The current catalog's subscriptions (a customer's only, when given), each with its status,
    plan in force and next change as of `now`."""
    return subscriptions_of(_current(store, environment), now, customer)


def subscriptions_of(catalog: Catalog, now: datetime, customer: str | None = None) -> list[dict[str, Any]]:
    """list_subscriptions on a catalog already built (the API keeps the current one in memory)."""
    return [_terms(catalog, catalog.subscriptions[entry.reference], now, entry)
            for entry in catalog.document.subscriptions if customer is None or entry.customer == customer]


def show_subscription(store: Store, now: datetime, reference: str, environment: str = "live") -> History:
    """A subscription's terms, every phase of them, and the catalog versions that changed it."""
    loaded = load_version(store, environment)
    if loaded is None:
        raise _no_catalog()
    catalog = build_catalog(_narrowed(loaded[1], lambda s: s.reference == reference))
    spec = catalog.subscriptions.get(reference)
    if spec is None:
        raise NotFound(f"subscription {reference!r} does not exist")
    phases = [{"at": moment_text(phase.at), "plan": phase.plan_code, "overrides": phase.overrides,
               "proration": phase.proration if index else None, "quantity": phase.quantity}
              for index, phase in enumerate(spec.phases())]
    return History(_terms(catalog, spec, now), phases, _versions(store, environment, reference))


def _current(store: Store, environment: str) -> Catalog:
    loaded = load_version(store, environment)
    if loaded is None:
        raise _no_catalog()
    return build_catalog(loaded[1])


def _terms(catalog: Catalog, spec: SubscriptionSpec, now: datetime, entry: Subscription | None = None) -> dict[str,
           Any]:
    """The subscription's catalog entry, with its status, plan in force and next change at `now`."""
    if entry is None:
        entry = next(s for s in catalog.document.subscriptions if s.reference == spec.reference)
    zone = ZoneInfo(spec.timezone)
    start = to_local(spec.start, zone)
    end = to_local(spec.end, zone) if spec.end is not None else None
    status = "scheduled" if now < start else "ended" if end is not None and now >= end else "active"
    phases = spec.phases()
    in_force = phases[0]
    upcoming = None
    for phase in phases[1:]:
        if to_local(phase.at, zone) <= now:
            in_force = phase
        elif upcoming is None:
            upcoming = phase
    next_change = None
    if upcoming is not None:
        next_change = {"at": moment_text(upcoming.at), "plan": upcoming.plan_code, "proration": upcoming.proration}
    trial_end = spec.trial_end()
    return {**entry.model_dump(mode="json"), "timezone": spec.timezone, "status": status,
            "plan_now": in_force.plan_code, "quantity_now": in_force.quantity, "next_change": next_change,
            "trial_end": moment_text(trial_end) if trial_end is not None else None}


def _versions(store: Store, environment: str, reference: str) -> list[dict[str, Any]]:
    """The catalog versions in which the subscription's entry appeared, changed or went away."""
    found = []
    previous: dict[str, Any] | None = None
    for version, created_at, document in iter_versions(store, environment):
        entry = next((s for s in document.get("subscriptions") or []
                      if isinstance(s, dict) and s.get("reference") == reference), None)
        if entry != previous:
            what = "created" if previous is None else "removed" if entry is None else "changed"
            found.append({"version": version, "created_at": rfc3339(created_at), "what": what})
        previous = entry
    return found
