"""The early cuts of an invoice run: threshold invoices and usage charges billed in advance
(domain.early), for the subscriptions that have either.

Only those subscriptions pay for the usage of each day of a period (see _plan_periods: one
roll-up of days for the meters whose days join, one from each segment's start to each midnight
for the others). Every other subscription stays on the run's one scan of its closing periods.
A period whose closing invoice is final (and that holds no early draft) is planned only when the
run's corrections recompute it (late events, a changed subscription).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from ..catalog import Catalog, SubscriptionSpec
from ..domain.aggregation import Usage
from ..domain.early import JOINED, EarlyPlan, early_instants, early_windows, join, plan_early
from ..domain.instants import to_micros
from ..domain.periods import Period
from ..domain.terms import Terms
from ..store import Store
from ..store.ledger import FinalCut
from ..store.usage import Window, aggregate_usage


class EarlyPlanner:
    """Each early-billing subscription's plans, by the start (µs) of the period they belong to."""

    def __init__(self, store: Store, catalog: Catalog, until: date | datetime, environment: str,
                 existing: Mapping[tuple[str, int, str], tuple], finals: Mapping[tuple[str, int], FinalCut]) -> None:
        self.store, self.catalog, self.until, self.environment = store, catalog, until, environment
        self.existing = existing
        self.finals = finals
        self.versions: Any = None  # ledger._Versions, loaded when a final early invoice is met
        self.plans: dict[str, dict[int, EarlyPlan]] = {}
        self.full: set[str] = set()  # subscriptions planned over every period, final ones too

    @cached_property
    def statuses(self) -> dict[tuple[str, int], set[str]]:
        """(subscription, boundary µs) -> the statuses of the cut's invoices (read when planning)."""
        found: dict[tuple[str, int], set[str]] = {}
        for (reference, boundary, _mode), item in self.existing.items():
            found.setdefault((reference, boundary), set()).add(item[1])
        return found

    @cached_property
    def drafts(self) -> dict[str, list[int]]:
        """subscription -> the boundaries (µs) of its drafts."""
        found: dict[str, list[int]] = {}
        for (reference, boundary), statuses in self.statuses.items():
            if "draft" in statuses:
                found.setdefault(reference, []).append(boundary)
        return found

    def for_subscription(self, subscription: SubscriptionSpec) -> dict[int, EarlyPlan] | None:
        """Its plans (None: it bills nothing early)."""
        if not subscription.bills_early:
            return None
        return self.plans.get(subscription.reference, {})

    def plan_open(self) -> None:
        """Every period of every early-billing subscription whose closing invoice is not final."""
        self._plan([s for s in self.catalog.subscriptions.values() if s.bills_early], everything=False)

    def plan_all(self, subscriptions: Iterable[SubscriptionSpec]) -> None:
        """Every period of these subscriptions, those already closed by a final invoice too."""
        self._plan([s for s in subscriptions if s.bills_early and s.reference not in self.full], everything=True)

    def plan_period(self, subscription: SubscriptionSpec, period: Period) -> EarlyPlan:
        """One period's plan (the upcoming invoice's: up to `until`, here an instant)."""
        self._plan_periods([(subscription, period)])
        return self.plans[subscription.reference][to_micros(period.start)]

    def _plan(self, subscriptions: list[SubscriptionSpec], everything: bool) -> None:
        from .run import until_instant

        wanted: list[tuple[SubscriptionSpec, Period]] = []
        for subscription in subscriptions:
            horizon = until_instant(self.until, ZoneInfo(subscription.timezone))
            known = self.plans.get(subscription.reference, {})
            for period in subscription.schedule().periods_until(horizon):
                closed = self.statuses.get((subscription.reference, to_micros(period.end)), set())
                # a period closed by a final invoice, with no early draft left in it, is not planned
                settled = closed and "draft" not in closed and not any(
                    to_micros(period.start) < boundary < to_micros(period.end)
                    for boundary in self.drafts.get(subscription.reference, ()))
                if to_micros(period.start) in known or (not everything and settled):
                    continue
                wanted.append((subscription, period))
            if everything:
                self.full.add(subscription.reference)
        self._plan_periods(wanted)

    def _plan_periods(self, wanted: list[tuple[SubscriptionSpec, Period]]) -> None:
        """Plan these periods, their usage rolled up in one aggregate_usage call per kind of meter.

        A meter whose aggregation composes (sum, count, max, min: see domain.early.JOINED) is
        rolled up per day, [previous midnight, midnight), and each day joined to the ones before:
        every event is read once. The others (unique_count, latest, weighted_sum, average) are
        rolled up from the segment's start to each midnight."""
        from .run import charged_meters, until_instant

        if not wanted:
            return
        meters = charged_meters(self.catalog, {subscription.reference: subscription
                                               for subscription, _ in wanted}.values())
        joined = [meter for meter in meters if meter.aggregation in JOINED]
        whole = [meter for meter in meters if meter.aggregation not in JOINED]
        places: list[tuple[SubscriptionSpec, Period, list[datetime]]] = []
        days: list[Window] = []
        prefixes: list[Window] = []
        keys: dict[tuple[int, int, int], int] = {}  # (place, instant, segment number) -> window key
        for subscription, period in wanted:
            instants = early_instants(period, until_instant(self.until, ZoneInfo(subscription.timezone)))
            place = len(places)
            places.append((subscription, period, instants))
            previous = period.start
            for step, moment in enumerate(instants):
                for number, part, end in early_windows(subscription.terms(), period, moment):
                    key = keys[(place, step, number)] = len(keys)
                    prefixes.append(Window(key, subscription.customer, to_micros(part.start), to_micros(end),
                                           subscription.reference, not subscription.requires_reference))
                    day_start = max(part.start, previous)
                    if day_start < end:
                        days.append(Window(key, subscription.customer, to_micros(day_start), to_micros(end),
                                           subscription.reference, not subscription.requires_reference))
                previous = moment
        usage: dict[tuple[int, str], Usage] = {}
        if whole:
            usage.update(aggregate_usage(self.store, prefixes, whole, self.environment))
        daily = aggregate_usage(self.store, days, joined, self.environment) if joined else {}
        for place, (subscription, period, instants) in enumerate(places):
            terms = subscription.terms()
            so_far: dict[tuple[int, str], Usage] = {}
            snapshots = []
            for step, moment in enumerate(instants):
                snapshot: dict[int, dict[str, Usage]] = {}
                for number, _, _ in early_windows(terms, period, moment):
                    key = keys[(place, step, number)]
                    measured = snapshot[number] = {}
                    for meter in joined:
                        total = join(meter.aggregation, so_far.get((number, meter.code), Usage.zero()),
                                     daily.get((key, meter.code), Usage.zero()))
                        measured[meter.code] = so_far[(number, meter.code)] = total
                    for meter in whole:
                        measured[meter.code] = usage.get((key, meter.code), Usage.zero())
                snapshots.append(snapshot)
            anchors = {moment for moment in instants if (subscription.reference, to_micros(moment)) in self.finals}
            # a voided early invoice is not cut again at its instant: what it held goes on the next
            skipped = {moment for moment in instants
                       if self.statuses.get((subscription.reference, to_micros(moment))) == {"void"}}
            self.plans.setdefault(subscription.reference, {})[to_micros(period.start)] = plan_early(
                terms, period, instants, snapshots, self.catalog.pricing_for(subscription),
                threshold=subscription.invoice_threshold, anchors=anchors, skipped=skipped,
                anchor_terms={moment: self._terms_of(subscription, moment) for moment in anchors})

    def _terms_of(self, subscription: SubscriptionSpec, moment: datetime) -> Sequence[Terms]:
        """The subscription's terms with the prices of the catalog version its final early invoice
        at `moment` was finalized with."""
        from .ledger import _Versions

        if self.versions is None:
            self.versions = _Versions(self.store, self.environment, self.catalog)
        version = self.finals[(subscription.reference, to_micros(moment))].catalog_version
        spec = self.versions.pricing_catalog(version).subscriptions.get(subscription.reference, subscription)
        return spec.terms()
