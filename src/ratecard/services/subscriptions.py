"""Bring existing subscriptions (and their customers) over from another system's export, and
preview the invoice a customer gets next under a catalog (one not stored yet, say)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..billing.early import EarlyPlanner
from ..billing.export import invoice_document
from ..billing.run import charged_meters, measured_usage, price_cut, usage_windows
from ..catalog import Catalog, SubscriptionSpec
from ..catalog.schema import CatalogDocument
from ..domain.instants import rfc3339, to_micros
from ..domain.rating import Cut, RatingError, invoice_cuts
from ..golive.subscriptions_import import SubscriptionImportError, plan_import
from ..golive.subscriptions_import import load_mapping as load_columns
from ..store import Store
from ..store.catalogs import load_version, version_text
from ..store.invoices import existing_cuts
from ..store.ledger import final_cuts
from ..store.modes import load_modes
from ..store.resources import config_change
from ..store.usage import aggregate_usage
from . import webhook_events
from .errors import Conflict, InvalidInput, NoCatalog
from .reconcile import mapping_path
from .resources.customers import subscribable_refusal, subscribable_refusal_in

ATTEMPTS = 5  # an import computed from a version another writer replaced is computed again, this many times


def import_subscriptions(store: Store, path: Path, now: datetime, environment: str = "live", *,
                         mapping: str | None = None, bill_from: date | None = None,
                         dry_run: bool = False) -> dict[str, Any]:
    """Add the file's subscriptions to the applied catalog as a new version, with bill_from so periods the
    previous system billed are never billed again. All or nothing; a dry run stores nothing. A row
    whose customer may not be subscribed (customers.check_subscribable, the rule of every create)
    is left out and listed under `refused` with its reason; the other rows are added.

    The new version is stored only if the version the import was computed from is still the latest
    (under the lock the other catalog writers take): a version another writer stored meanwhile is
    never overwritten, the import is computed again from it (Conflict after ATTEMPTS tries). Under
    the same lock the customers of the added subscriptions are checked again, as a create checks
    its customer: one archived (or otherwise made unsubscribable) since the import read it stores
    nothing, and the import is computed again, leaving that customer's rows out as refused."""
    columns = load_columns(mapping_path(mapping))
    for _ in range(ATTEMPTS):
        loaded = load_version(store, environment)
        if loaded is None:
            raise NoCatalog("no catalog has been applied yet; apply one with the plans first (`ratecard catalog apply`)")
        try:
            plan = plan_import(loaded[1], path, columns, bill_from, subscribable_refusal(store, environment))
        except SubscriptionImportError as exc:
            raise InvalidInput(str(exc)) from None
        if plan.problems:
            raise InvalidInput(f"{path}: {len(plan.problems)} problem(s); nothing was imported",
                               details=[*plan.problems, *(f"refused: {line}" for line in plan.refused)])
        version = loaded[0] if dry_run or not plan.subscriptions else _store(
            store, environment, now, loaded[0], loaded[1], plan.document)
        if version is not None:
            return {"file": str(path), "subscriptions": plan.subscriptions, "new_customers": plan.customers,
                    "dry_run": dry_run, "catalog_version": version, "refused": plan.refused}
    raise Conflict(f"the catalog changed {ATTEMPTS} times while {path} was being imported; nothing was imported: "
                   "try again")


def _store(store: Store, environment: str, now: datetime, base: int, before: CatalogDocument,
           after: CatalogDocument) -> int | None:
    """The import's catalog stored as a new version under the environment's lock, with its webhook
    deliveries; None (nothing stored: compute it again) when another version was stored since `base`
    or a customer the import subscribes may no longer be subscribed (checked on the rows read under
    the lock, as plan_import checked them before: the customers the catalog had already)."""
    known = {customer.reference for customer in before.customers}
    had = {subscription.reference for subscription in before.subscriptions}
    subscribed = {subscription.customer for subscription in after.subscriptions
                  if subscription.reference not in had and subscription.customer in known}
    queue = _created(store, environment, now, before, after)
    text = version_text(after)  # before the lock: a large catalog takes a while to write out
    with config_change(store, environment, to_micros(now)) as change:
        refusal = subscribable_refusal_in(change)
        if any(refusal(customer) is not None for customer in sorted(subscribed)):
            return None
        stored = change.save_catalog_on(after, base, text)
        if stored is not None and stored != base:
            queue(change.connection, stored)
        return stored


def _created(store: Store, environment: str, now: datetime, before: CatalogDocument, after: CatalogDocument
             ) -> Callable[[Any, int], None]:
    """save_version_on's step queuing `subscription.created` for each subscription the import adds,
    in the transaction that stores them (as a subscription created one at a time sends it)."""
    known = {subscription.reference for subscription in before.subscriptions}
    added = [subscription.reference for subscription in after.subscriptions if subscription.reference not in known]
    box = webhook_events.outbox(store, environment, now)

    def queue(connection: Any, version: int) -> None:
        box.write(connection, [("subscription.created", webhook_events.subscription_data(reference, version))
                               for reference in added])

    return queue


def preview_documents(store: Store, catalog: Catalog, version: int, customer: str, now: datetime,
                      environment: str = "live") -> list[dict[str, Any]]:
    """The invoices the customer gets at the next boundary after `now` of each of its subscriptions
    under `catalog`, priced like an invoice run prices them (usage so far in the period closing
    there); nothing is written. Each is in the export shape with `number` and `id` null, plus the
    `boundary` it is cut at; an invoice that cannot be priced is {subscription, boundary, error}."""
    placed = [(subscription, cut) for subscription in catalog.subscriptions.values()
              if subscription.customer == customer and (cut := next_cut(subscription, now)) is not None]
    placed = _less_early(store, catalog, placed, now, environment)
    meters = charged_meters(catalog, [subscription for subscription, _ in placed])
    usage = aggregate_usage(store, usage_windows(placed), meters, environment)
    modes = load_modes(store, environment)
    documents = []
    for index, (subscription, cut) in enumerate(placed):
        measured = measured_usage(usage, index, subscription, cut, [meter.code for meter in meters])
        try:
            records = price_cut(catalog, version, subscription, cut, measured, modes)
        except RatingError as exc:
            documents.append({"subscription": subscription.reference, "boundary": rfc3339(to_micros(cut.boundary)),
                              "error": str(exc)})
            continue
        for record in records:
            document = invoice_document(record)
            document.update(number=None, id=None, boundary=rfc3339(record.boundary_ts))
            documents.append(document)
    return documents


def _less_early(store: Store, catalog: Catalog, placed: list[tuple[SubscriptionSpec, Cut]], now: datetime,
                environment: str) -> list[tuple[SubscriptionSpec, Cut]]:
    """A closing cut deducts what its period's threshold invoices (and usage billed in advance)
    bill up to `now`, as the invoice run's closing cut will."""
    if not any(subscription.bills_early and cut.closing is not None for subscription, cut in placed):
        return placed
    planner = EarlyPlanner(store, catalog, now, environment, existing_cuts(store, environment),
                           final_cuts(store, environment))
    return [(subscription, replace(cut, billed_early=planner.plan_period(subscription, cut.closing).billed))
            if subscription.bills_early and cut.closing is not None else (subscription, cut)
            for subscription, cut in placed]


def next_cut(subscription: SubscriptionSpec, now: datetime) -> Cut | None:
    """The subscription's first invoice cut after `now`: its start when it has not started, else the
    end of the period holding `now`; None once it has ended."""
    schedule = subscription.schedule()
    if now < schedule.start:
        boundary = schedule.start
    else:
        period = schedule.period_containing(now)
        if period is None:
            return None
        boundary = period.end
    cuts = invoice_cuts(schedule, boundary, subscription.terms())
    return cuts[-1] if cuts and cuts[-1].boundary == boundary else None
