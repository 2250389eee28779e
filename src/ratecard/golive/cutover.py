"""Full cutover: the date from which ratecard bills everyone not held in a shadow cohort.

The cutover date D is midnight in each subscription's own timezone. The rule is the one every
billing mode follows (store/modes.py): ratecard bills the service periods that start at or after
D; the legacy system bills every period that started before D, in full. So a subscription whose
period boundary falls on D switches cleanly; one whose period straddles D stays with the legacy
system until that period ends, and the planner says so, with the date that would align the most
subscriptions instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from ..catalog import Catalog, SubscriptionSpec
from ..domain.instants import to_micros
from ..domain.periods import Period, local_midnight
from ..store import Store
from ..store.billed_periods import final_live_windows, shadow_billed_starts
from ..store.cohorts import cohort_of, record_cutover

# Candidate dates for the proposal: every period boundary within this distance of D.
PROPOSAL_WINDOW = timedelta(days=62)
# The plan looks at the periods starting up to this many days after D (every interval has a boundary in it).
HORIZON_DAYS = 400


@dataclass
class SubscriptionCutover:
    subscription: str
    customer: str
    timezone: str
    aligned: bool
    legacy_until: date | None  # the legacy system bills service periods starting before this
    ratecard_from: date | None  # ratecard's first billed period starts here (None: nothing left to bill)
    straddling: tuple[date, date] | None  # the period around D, billed in full by the legacy system
    cohort: str | None = None  # customers in a cohort follow their cohort, not the cutover
    risks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "subscription": self.subscription, "customer": self.customer, "timezone": self.timezone,
            "aligned": self.aligned,
            "legacy_bills_periods_starting_before": _iso(self.legacy_until),
            "ratecard_bills_from": _iso(self.ratecard_from),
            "partial_period": None if self.straddling is None else {
                "start": self.straddling[0].isoformat(), "end": self.straddling[1].isoformat(), "billed_by": "legacy"},
            "cohort": self.cohort, "risks": self.risks,
        }


@dataclass
class Candidate:
    day: date
    aligned: int
    total: int

    def as_dict(self) -> dict:
        return {"date": self.day.isoformat(), "aligned": self.aligned, "not_aligned": self.total - self.aligned}


@dataclass
class CutoverPlan:
    day: date
    subscriptions: list[SubscriptionCutover]
    candidates: list[Candidate]

    @property
    def considered(self) -> list[SubscriptionCutover]:
        return [s for s in self.subscriptions if s.cohort is None]

    @property
    def aligned(self) -> int:
        return sum(1 for s in self.considered if s.aligned)

    @property
    def risks(self) -> list[str]:
        return [f"{s.subscription}: {risk}" for s in self.subscriptions for risk in s.risks]

    @property
    def proposal(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def as_dict(self) -> dict:
        return {
            "date": self.day.isoformat(),
            "subscriptions": len(self.considered),
            "aligned": self.aligned,
            "not_aligned": len(self.considered) - self.aligned,
            "in_cohorts": len(self.subscriptions) - len(self.considered),
            "risks": self.risks,
            "proposal": self.proposal.as_dict() if self.proposal else None,
            "candidates": [c.as_dict() for c in self.candidates],
            "plan": [s.as_dict() for s in self.subscriptions],
        }


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


TWICE = ("already on final ratecard invoices", "already billed by the legacy system")


@dataclass(frozen=True)
class _Switch:
    """A calendar at the cutover: the period holding D, the first period from D on (within the
    horizon), and whether the subscription starts at or after D (within the horizon)."""

    around: Period | None
    first_after: Period | None
    starts_after: bool


def _switch(subscription: SubscriptionSpec, day: date) -> _Switch:
    switch = local_midnight(day, ZoneInfo(subscription.timezone))
    schedule = subscription.schedule()
    horizon = switch + timedelta(days=HORIZON_DAYS)
    # the period holding D (if any) and the one after it: the only ones the plan looks at
    upcoming = [p for p in islice(schedule.periods_from(switch), 2) if p.start <= horizon]
    around = upcoming[0] if upcoming and upcoming[0].start < switch else None
    first_after = next((p for p in upcoming if p.start >= switch), None)
    return _Switch(around, first_after, switch <= schedule.start <= horizon)


class Calendars:
    """Within one plan, each billing calendar's periods worked out once.

    Subscriptions on the same calendar (start, end, interval, timezone, anchor: what their
    schedule is built from) have the same periods; a workspace migrated on one day has thousands
    of subscriptions on a handful of calendars. Lives for one plan only: nothing is kept between
    requests."""

    def __init__(self) -> None:
        self._switches: dict[tuple, _Switch] = {}
        self._windows: dict[tuple, tuple[date, date | None, set[date]] | None] = {}

    @staticmethod
    def _key(subscription: SubscriptionSpec) -> tuple:
        return (subscription.start, subscription.end, subscription.plan.interval, subscription.timezone,
                subscription.billing_anchor)

    def switch(self, subscription: SubscriptionSpec, day: date) -> _Switch:
        key = (*self._key(subscription), day)
        if key not in self._switches:
            self._switches[key] = _switch(subscription, day)
        return self._switches[key]

    def window(self, subscription: SubscriptionSpec, first: date, last: date) -> tuple[date, date | None, set[date]] | None:
        key = (*self._key(subscription), first, last)
        if key not in self._windows:
            self._windows[key] = _window_points(subscription, first, last)
        return self._windows[key]


def plan_subscription(subscription: SubscriptionSpec, day: date, billed_by_ratecard: list[tuple[int, int]],
                      cohort: str | None, billed_by_legacy: list[int] | None = None,
                      calendars: Calendars | None = None) -> SubscriptionCutover:
    facts = (calendars or Calendars()).switch(subscription, day)
    around, first_after = facts.around, facts.first_after
    result = SubscriptionCutover(subscription.reference, subscription.customer, subscription.timezone,
                                 aligned=True, legacy_until=day, ratecard_from=None, straddling=None, cohort=cohort)
    if around is not None:
        result.aligned = False
        result.straddling = (around.start.date(), around.end.date())
        result.legacy_until = around.end.date()
        result.ratecard_from = first_after.start.date() if first_after else None
        result.risks.append(
            f"{day.isoformat()} falls inside the period {around.start.date()} → {around.end.date()}: the legacy system "
            "must bill that period in full (including the days after the cutover), or those days are billed by nobody")
    elif first_after is not None:
        result.ratecard_from = first_after.start.date()
    if facts.starts_after:
        result.legacy_until = None  # starts after the cutover: ratecard bills all of it
    billed_from = subscription.billed_from()
    if billed_from is not None and result.ratecard_from is not None and billed_from.date() > result.ratecard_from:
        result.risks.append(
            f"bill_from {billed_from.date()} is after the cutover: periods from {result.ratecard_from} to "
            f"{billed_from.date()} are billed by nobody unless the legacy system keeps billing them")
    # the instants below are worked out only for subscriptions with billed periods (a few)
    if result.legacy_until and cohort is None and billed_by_ratecard:
        cut = to_micros(local_midnight(result.legacy_until, ZoneInfo(subscription.timezone)))
        before = sorted({start for start, end in billed_by_ratecard if start < cut})
        if before:
            result.risks.append(
                f"{len(before)} period(s) before {result.legacy_until} are already on final ratecard invoices: the "
                "legacy system must not bill them again (or credit them in ratecard)")
    if cohort is None and billed_by_legacy:
        # moving a recorded cutover earlier: periods on shadow invoices whose date has passed were
        # the legacy system's, and it has billed them; ratecard would bill them again
        switch = to_micros(local_midnight(day, ZoneInfo(subscription.timezone)))
        after = sorted({start for start in billed_by_legacy if start >= switch})
        if after:
            result.risks.append(
                f"{len(after)} period(s) from {day.isoformat()} on are already billed by the legacy system (on "
                "shadow invoices whose date has passed): ratecard would bill them again")
    return result


def plan_cutover(store: Store, environment: str, catalog: Catalog, day: date,
                 now: datetime | None = None) -> CutoverPlan:
    """`now` (when given) also names the periods the legacy system has billed already."""
    subscriptions = list(catalog.subscriptions.values())
    cohorts = cohort_of(store, environment, {s.customer for s in subscriptions})
    billed = final_live_windows(store, environment)
    legacy = shadow_billed_starts(store, environment, to_micros(now)) if now is not None else {}
    calendars = Calendars()
    plans = [plan_subscription(s, day, billed.get(s.reference, []), cohorts.get(s.customer),
                               legacy.get(s.reference, []), calendars)
             for s in subscriptions]
    excluded = {s.customer for s in subscriptions if s.customer in cohorts}
    return CutoverPlan(day, plans, propose(catalog, day, excluded, calendars))


def propose(catalog: Catalog, day: date, excluded_customers: set[str],
            calendars: Calendars | None = None) -> list[Candidate]:
    """Dates near D ranked by how many subscriptions they align (no period straddles them).

    A date is aligned for a subscription when it is one of its period boundaries, or falls
    before its start or after its end: the same test as `plan_subscription`."""
    considered = [s for s in catalog.subscriptions.values() if s.customer not in excluded_customers]
    first, last = day - PROPOSAL_WINDOW, day + PROPOSAL_WINDOW
    size = (last - first).days + 1
    # aligned[i] counts the subscriptions date first + i aligns; whole runs of dates (before a start,
    # after an end) are added as runs: steps[i] += 1 and steps[j] -= 1 for the dates i..j-1
    steps = [0] * (size + 1)
    aligned = [0] * size
    calendars = calendars or Calendars()
    for subscription in considered:
        window = calendars.window(subscription, first, last)
        if window is None:
            continue
        opens, closes, points = window
        before = (opens - first).days  # dates <= opens: not started yet
        after = (closes - first).days if closes is not None else None  # dates >= closes: ended
        if after is not None and after <= before + 1:
            steps[0] += 1
            steps[size] -= 1
            continue
        if before >= 0:
            steps[0] += 1
            steps[min(before, size - 1) + 1] -= 1
        if after is not None and after <= size - 1:
            steps[max(after, 0)] += 1
            steps[size] -= 1
        for point in points:
            index = (point - first).days
            if 0 <= index < size and index > before and (after is None or index < after):
                aligned[index] += 1
    running = 0
    counts: Counter[date] = Counter()
    for index in range(size):
        running += steps[index]
        counts[first + timedelta(days=index)] = running + aligned[index]
    useful = {point for point, n in counts.items() if n}
    ranked = sorted(useful, key=lambda d: (-counts[d], abs((d - day).days), d))
    return [Candidate(d, counts[d], len(considered)) for d in ranked[:5]]


def _window_points(subscription: SubscriptionSpec, first: date, last: date) -> tuple[date, date | None, set[date]] | None:
    """(its first day, its last day if it ends, its period boundaries from `first` to `last`) in the
    subscription's own dates; None when it starts after `last` (it is left out of the count).

    The boundaries come from the periods around the window only, not from every period since
    the start: the last day is the end of the last period starting by the day after `last`."""
    zone = ZoneInfo(subscription.timezone)
    schedule = subscription.schedule()
    until = local_midnight(last, zone) + timedelta(days=1)
    if schedule.start > until:  # no period starts by then (the first period starts at the start)
        return None
    points: set[date] = set()
    closing = None
    for period in schedule.periods_from(local_midnight(first, zone)):
        if period.start > until:
            break
        points.add(period.start.astimezone(zone).date())
        closing = period.end
    if closing is None:  # every period ended before the window: the subscription's end closes it
        closing = schedule.end
    closes = closing.astimezone(zone).date() if subscription.end is not None else None
    if closing is not None:
        points.add(closing.astimezone(zone).date())
    return schedule.start.astimezone(zone).date(), closes, points


def apply_cutover(store: Store, environment: str, catalog: Catalog, day: date, now: datetime,
                  force: bool = False) -> CutoverPlan:
    """Record the cutover; refused while the plan shows a period that would be billed twice."""
    plan = plan_cutover(store, environment, catalog, day, now)
    twice = [risk for risk in plan.risks if any(mark in risk for mark in TWICE)]
    if twice and not force:
        raise CutoverRefused(twice)
    record_cutover(store, environment, day.isoformat(), to_micros(local_midnight(day, ZoneInfo("UTC"))), to_micros(now))
    return plan


SHOWN_RISKS = 20  # subscriptions named in a refusal; the rest are counted


class CutoverRefused(ValueError):
    def __init__(self, risks: list[str]) -> None:
        more = f"\n  … and {len(risks) - SHOWN_RISKS} more (`ratecard cutover plan` lists them all)" \
            if len(risks) > SHOWN_RISKS else ""
        super().__init__("the cutover would bill periods twice:\n  " + "\n  ".join(risks[:SHOWN_RISKS]) + more +
                         "\nfix those first or pass --force")
        self.risks = risks
