"""The upcoming invoice: what a customer's next invoices would hold if their periods closed with
the usage measured so far. Computed, never written.

For each of the customer's subscriptions active at `at`: the period containing `at`, the usage
of each charged meter in [period start, at), and the invoice(s) of the cut at that period's end
priced with that usage — the closing period's arrears and usage lines and its minimum, plus the
next period's advance fees. The pricing is the invoice run's own (`run.price_cut`), so a preview
equals the draft `invoices generate` cuts at that boundary when no more events arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..catalog import Catalog, MeterSpec, SubscriptionSpec
from ..domain.aggregation import Usage
from ..domain.instants import rfc3339, to_micros
from ..domain.money import format_decimal
from ..domain.periods import Period
from ..domain.rating import Cut, RatingError, invoice_cuts
from ..domain.terms import segments
from ..store import Store
from ..store.invoices import InvoiceRecord, existing_cuts
from ..store.ledger import final_cuts
from ..store.modes import BillingModes, load_modes
from ..store.usage import Window, few_windows_usage
from .early import EarlyPlanner
from .export import invoice_document
from .run import charged_meters, measured_usage, price_cut, usage_windows

PREVIEW_STATUS = "preview"


@dataclass(frozen=True)
class MeterUsage:
    meter: str
    quantity: Decimal
    events: int

    def as_dict(self) -> dict[str, Any]:
        return {"meter": self.meter, "quantity": format_decimal(self.quantity), "events": self.events}


@dataclass(frozen=True)
class PreviewFailure:
    """The subscription's invoice could not be priced (an amount beyond exact pricing); its usage
    is still shown, and the customer's other subscriptions are previewed."""

    charge: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"charge": self.charge, "reason": self.reason}


@dataclass
class SubscriptionPreview:
    subscription: str
    period: Period
    usage: list[MeterUsage]
    invoices: list[InvoiceRecord] = field(default_factory=list)
    failure: PreviewFailure | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscription": self.subscription,
            "period_start": rfc3339(to_micros(self.period.start)),
            "period_end": rfc3339(to_micros(self.period.end)),
            "usage": [usage.as_dict() for usage in self.usage],
            "invoices": [preview_document(invoice) for invoice in self.invoices],
            "failure": self.failure.as_dict() if self.failure is not None else None,
        }


def preview_document(invoice: InvoiceRecord) -> dict[str, Any]:
    """The export shape of an invoice that does not exist: status "preview", no number, no id."""
    document = invoice_document(invoice)
    document["number"] = None
    document["id"] = None
    return document


def preview_customer(store: Store, catalog: Catalog, catalog_version: int, customer: str, at: datetime,
                     environment: str = "live", modes: BillingModes | None = None) -> list[SubscriptionPreview]:
    """The upcoming invoices of each of the customer's subscriptions active at `at` (catalog order).
    Reads the store (usage, billing modes), never writes to it."""
    placed = _placed(catalog, customer, at)
    if not placed:
        return []
    usage = _usage_so_far(store, catalog, placed, at, environment)
    if modes is None:
        modes = load_modes(store, environment)
    shown = _shown(catalog, placed, usage, at)
    placed = _less_early(store, catalog, placed, at, environment)
    previews = []
    for index, (subscription, cut, period) in enumerate(placed):
        codes = [meter.code for meter in charged_meters(catalog, [subscription])]
        measured = _per_segment(usage, index, subscription, cut, period, at, codes)
        preview = SubscriptionPreview(subscription.reference, period, shown[index])
        try:
            preview.invoices = _priced(catalog, catalog_version, subscription, cut, measured, modes)
        except RatingError as exc:
            preview.failure = PreviewFailure(exc.charge, str(exc))
        previews.append(preview)
    return previews


def usage_so_far(store: Store, catalog: Catalog, customer: str, at: datetime, environment: str = "live",
                 registry_age: float = 0.0) -> dict[str, list[MeterUsage]]:
    """subscription reference -> the usage its upcoming invoice shows (`preview_customer`'s
    `usage`, the same windows and the same query), for each of the customer's subscriptions active
    at `at`; nothing priced, so neither the billing modes nor the early invoices are read.
    `registry_age`: see store.usage.few_windows_usage."""
    placed = _placed(catalog, customer, at)
    if not placed:
        return {}
    shown = _shown(catalog, placed, _usage_so_far(store, catalog, placed, at, environment, registry_age), at)
    return {subscription.reference: shown[index] for index, (subscription, _, _) in enumerate(placed)}


def _placed(catalog: Catalog, customer: str, at: datetime) -> list[tuple[SubscriptionSpec, Cut, Period]]:
    """The customer's subscriptions active at `at` (catalog order), each with the cut closing the
    period containing `at` and that period."""
    placed: list[tuple[SubscriptionSpec, Cut, Period]] = []
    for subscription in catalog.subscriptions_of(customer):
        schedule = subscription.schedule()
        period = schedule.period_containing(at)
        if period is not None:
            cuts = invoice_cuts(schedule, period.end, subscription.terms())
            placed.append((subscription, _closing_cut(cuts, period), period))
    return placed


def _shown(catalog: Catalog, placed: Sequence[tuple[SubscriptionSpec, Cut, Period]],
           usage: dict[tuple[int, str], Usage], at: datetime) -> list[list[MeterUsage]]:
    """Per subscription in `placed`: each shown meter's usage over the period so far (summed over
    the parts when the terms changed in it)."""
    out = []
    for index, (subscription, cut, period) in enumerate(placed):
        meters = shown_meters(catalog, charged_meters(catalog, [subscription]))
        parts = _per_segment(usage, index, subscription, cut, period, at, [meter.code for meter in meters])
        out.append([MeterUsage(meter.code, sum((part[meter.code].quantity for part in parts), Decimal(0)),
                               sum(part[meter.code].events for part in parts)) for meter in meters])
    return out


def _less_early(store: Store, catalog: Catalog, placed: list[tuple[SubscriptionSpec, Cut, Period]], at: datetime,
                environment: str) -> list[tuple[SubscriptionSpec, Cut, Period]]:
    """The closing cuts of periods whose usage is invoiced inside them (thresholds, usage in advance)
    deduct what the period's early invoices bill up to `at`, as the invoice run's closing cut will."""
    if not any(subscription.bills_early for subscription, _, _ in placed):
        return placed
    planner = EarlyPlanner(store, catalog, at, environment, existing_cuts(store, environment),
                           final_cuts(store, environment))
    return [(subscription, replace(cut, billed_early=planner.plan_period(subscription, period).billed), period)
            if subscription.bills_early else (subscription, cut, period) for subscription, cut, period in placed]


def _per_segment(usage: dict[tuple[int, str], Usage], index: int, subscription: SubscriptionSpec, cut: Cut,
                 period: Period, at: datetime, codes: list[str]) -> list[dict[str, Usage]]:
    """The usage of each part of the period under its terms: the parts after `at` have none yet."""
    short = replace(cut, closing=replace(period, end=at), opening=None)
    measured = measured_usage(usage, index, subscription, short, codes)
    missing = len(segments(subscription.terms(), period)) - len(measured)
    return measured + [{code: Usage.zero() for code in codes} for _ in range(max(missing, 0))]


def _closing_cut(cuts: Sequence[Cut], period: Period) -> Cut:
    """The cut at the period's end, as an invoice run places it (with the next period it opens, if any)."""
    return next(cut for cut in reversed(cuts) if cut.closing == period)


def _usage_so_far(store: Store, catalog: Catalog, placed: Sequence[tuple[SubscriptionSpec, Cut, Period]],
                  at: datetime, environment: str, registry_age: float = 0.0) -> dict[tuple[int, str], Usage]:
    """Usage per (index in `placed`, meter) over [period start, at).

    The windows are the invoice run's own (`usage_windows`) for a closing period cut short at
    `at`, so whatever decides which events a run gives a subscription decides it here too."""
    cut_short = [(subscription, replace(cut, closing=replace(period, end=at), opening=None))
                 for subscription, cut, period in placed]
    windows: list[Window] = usage_windows(cut_short)
    charged = charged_meters(catalog, [subscription for subscription, _, _ in placed])
    meters: list[MeterSpec] = list({meter.code: meter for meter in [*charged, *shown_meters(catalog, charged)]}.values())
    return few_windows_usage(store, windows, meters, environment, registry_age)


def shown_meters(catalog: Catalog, meters: Sequence[MeterSpec]) -> list[MeterSpec]:
    """The catalog's meters behind the charged ones, as a preview shows usage: a charge priced per
    dimension shows its meter's own total (its lines show the parts)."""
    found = {meter.meter_code: catalog.meters[meter.meter_code] for meter in meters}
    return [found[code] for code in sorted(found)]


def _priced(catalog: Catalog, catalog_version: int, subscription: SubscriptionSpec, cut: Cut,
            usage: list[dict[str, Usage]], modes: BillingModes) -> list[InvoiceRecord]:
    """The one call into the invoice run's pricing: the cut's invoices, marked as previews."""
    records = price_cut(catalog, catalog_version, subscription, cut, usage, modes)
    for record in records:
        record.status = PREVIEW_STATUS
    return records
