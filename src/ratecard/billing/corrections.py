"""Bringing invoices up to date after the stored usage of past periods changed (a backfill closed
or reverted): drafts are refreshed by the normal invoice run; every final invoice whose
recomputed content differs is corrected by a credit note and a replacement invoice.

A final invoice is recomputed exactly as it was first computed: the same `price_cut` over
`aggregate_usage`, with the catalog version it records (a later price change never reaches
back into a final invoice), so there is one way to compute an amount.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from ..catalog import Catalog, build_catalog
from ..domain.early import EarlyPlan, with_early
from ..domain.instants import from_micros, to_micros
from ..domain.rating import Cut, invoice_cuts
from ..store import Store
from ..store.catalogs import load_version
from ..store.corrections import credit_note_for, current_final_invoices, save_correction
from ..store.invoice_states import latest_boundary
from ..store.invoices import InvoiceRecord, existing_cuts
from ..store.ledger import final_cuts
from ..store.modes import BillingModes, load_modes
from ..store.usage import aggregate_usage
from .early import EarlyPlanner
from .run import HorizonError, charged_meters, generate_invoices, measured_usage, price_cut, usage_windows


@dataclass
class Correction:
    original: InvoiceRecord
    credit_note: InvoiceRecord
    replacement: InvoiceRecord | None

    def as_dict(self) -> dict:
        def money(record: InvoiceRecord) -> dict:
            return {"id": record.id, "number": record.display_number, "total": f"{record.total:f}"}

        return {
            "customer": self.original.customer,
            "subscription": self.original.subscription,
            "issue_date": self.original.issue_date,
            "original": money(self.original),
            "credit_note": money(self.credit_note),
            "replacement": money(self.replacement) if self.replacement else None,
            "difference": f"{(self.replacement.total if self.replacement else 0) - self.original.total:f}",
        }


@dataclass
class UpToDate:
    drafts_created: int = 0
    drafts_refreshed: int = 0
    finals_checked: int = 0
    corrections: list[Correction] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"drafts_created": self.drafts_created, "drafts_refreshed": self.drafts_refreshed,
                "final_invoices_checked": self.finals_checked,
                "corrections": [c.as_dict() for c in self.corrections]}


def bring_invoices_up_to_date(store: Store, now: datetime, since_us: int, customer: str | None = None,
                              environment: str = "live") -> UpToDate:
    """Refresh drafts up to the latest boundary already invoiced, then correct every final
    invoice cut after `since_us` (optionally one customer's) whose content would change."""
    report = UpToDate()
    loaded = load_version(store, environment)
    if loaded is None:
        return report  # no catalog: no invoices either
    version, document = loaded
    catalog = build_catalog(document)
    _refresh_drafts(store, catalog, version, now, environment, report)
    _correct_finals(store, catalog, now, since_us, customer, environment, report)
    return report


def _refresh_drafts(store: Store, catalog: Catalog, version: int, now: datetime, environment: str,
                    report: UpToDate) -> None:
    last = latest_boundary(store, environment)
    if last is None:
        return  # nothing invoiced yet: the next invoice run picks the usage up
    try:
        run = generate_invoices(store, catalog, version, from_micros(last), now, environment=environment)
    except HorizonError:
        return  # invoices cut more than a year ahead: left to the next run
    report.drafts_created += run.created
    report.drafts_refreshed += run.updated


def _correct_finals(store: Store, current: Catalog, now: datetime, since_us: int, customer: str | None,
                    environment: str, report: UpToDate) -> None:
    finals = current_final_invoices(store, environment, since_us, customer)
    report.finals_checked = len(finals)
    by_version: dict[int, list[InvoiceRecord]] = defaultdict(list)
    for invoice in finals:
        by_version[invoice.catalog_version].append(invoice)
    modes = load_modes(store, environment)
    now_us = to_micros(now)
    for version, group in sorted(by_version.items()):
        loaded = load_version(store, environment, version)
        if loaded is None:
            continue
        catalog = build_catalog(loaded[1])
        for original, recomputed in _recompute(store, catalog, version, group, modes, environment):
            if recomputed is not None and original.same_content(recomputed):
                continue
            issue_date = now.astimezone(ZoneInfo(original.timezone)).date().isoformat()
            credit_note = credit_note_for(original, issue_date)
            replacement = None
            if recomputed is not None:
                recomputed.status = "final"
                recomputed.issue_date = issue_date
                recomputed.revision = original.revision + 1
                recomputed.corrects = original.id
            replacement = recomputed
            # numbered in the sequences of the entity that bills the customer today
            saved = save_correction(store, environment, original, credit_note, replacement, now_us,
                                    current.invoice_prefix_for(original.customer),
                                    current.credit_note_prefix_for(original.customer))
            if saved is not None:
                report.corrections.append(Correction(original, saved[0], saved[1]))


def _recompute(store: Store, catalog: Catalog, version: int, group: list[InvoiceRecord], modes, environment: str,
               ) -> list[tuple[InvoiceRecord, InvoiceRecord | None]]:
    """Each final invoice with what it computes to now (None: the cut has no live lines any more)."""
    placed: list[tuple[InvoiceRecord, object, Cut]] = []
    planner = None
    for invoice in group:
        subscription = catalog.subscriptions.get(invoice.subscription)
        if subscription is None:
            continue
        plans = None
        if subscription.bills_early:
            # its threshold invoices and closing invoices are recomputed from the usage of each day
            if planner is None:
                until = from_micros(max(item.boundary_ts for item in group))
                planner = EarlyPlanner(store, catalog, until, environment, existing_cuts(store, environment),
                                       final_cuts(store, environment))
            planner.plan_all([subscription])
            plans = planner.for_subscription(subscription)
        cut = _cut_at(subscription, invoice.boundary_ts, plans)
        if cut is not None:
            placed.append((invoice, subscription, cut))
    cuts = [(subscription, cut) for _, subscription, cut in placed]
    meters = charged_meters(catalog, (subscription for subscription, _ in cuts))
    usage = aggregate_usage(store, usage_windows(cuts), meters, environment)
    results = []
    for index, (invoice, subscription, cut) in enumerate(placed):
        measured = measured_usage(usage, index, subscription, cut, [meter.code for meter in meters])
        # the periods the invoice billed, not the customer's mode today: after a rollback the
        # customer is in shadow, yet what ratecard billed then is what is corrected now
        billed_from = min((line.service_start_ts for line in invoice.lines), default=None)
        scope = BillingModes(customers={subscription.customer: billed_from}) if billed_from is not None else modes
        records = price_cut(catalog, version, subscription, cut, measured, scope)
        live = next((record for record in records if record.mode == invoice.mode), None)
        results.append((invoice, live))
    return results


def _cut_at(subscription, boundary_us: int, early: dict[int, EarlyPlan] | None = None) -> Cut | None:
    schedule = subscription.schedule()
    cuts = invoice_cuts(schedule, from_micros(boundary_us).astimezone(schedule.tz), subscription.terms())
    for cut in with_early(cuts, early) if early is not None else cuts:
        if to_micros(cut.boundary) == boundary_us:
            return cut
    return None
