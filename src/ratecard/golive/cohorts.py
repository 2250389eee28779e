"""Shadow launch: cohorts of customers that ratecard computes for while the legacy system bills.

A customer added to a cohort is in shadow: every invoice ratecard computes for it is a shadow
invoice (never finalized, never sent). Each cycle the cohort's invoices are reconciled against
the legacy system's export for that cycle and the report is kept; after clean cycles the cohort
is promoted. Promotion takes effect at each member's next period boundary: from that instant
ratecard bills the service periods that start at or after it, and the legacy system bills every
period that started before (its last invoice closes them). Nothing is billed twice or never.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from ..catalog import Catalog
from ..domain.instants import rfc3339_or_none, to_micros
from ..domain.rating import invoice_cuts
from ..store import Store
from ..store.cohorts import (
    CohortRow,
    ParallelRun,
    cohort_of,
    create_cohort,
    load_cohorts,
    parallel_runs_of,
    save_parallel_run,
    set_members,
)
from .legacy import LegacyLine
from .reconcile import Reconciliation, on_local_days, ratecard_lines, reconcile

CLEAN_CYCLES_TO_PROMOTE = 2
MAX_NAME = 200  # the stored column's width


class CohortError(ValueError):
    """A cohort command that cannot be carried out; the message says why. Nothing was changed."""


@dataclass
class Promotion:
    cohort: str
    live_from: dict[str, int]  # customer -> µs
    forced: bool = False


@dataclass
class CohortStatus:
    cohort: CohortRow
    runs: list[ParallelRun] = field(default_factory=list)

    @property
    def state(self) -> str:
        members = self.cohort.members
        if self.cohort.promoted_at is None or not members or any(v is None for v in members.values()):
            return "rolled back" if self.cohort.rolled_back_at else "shadow"
        return "live"

    @property
    def clean_streak(self) -> int:
        """Consecutive clean cycles, counted back from the latest cycle. A cycle is judged by its
        latest report: re-running a cycle once the legacy export or the catalog is fixed replaces
        its verdict. After a rollback only the reports made since count: the cohort earns its
        promotion again."""
        since = self.cohort.rolled_back_at
        # runs are oldest first
        latest = {run.cycle: run.clean for run in self.runs if since is None or run.created_at > since}
        streak = 0
        for cycle in sorted(latest, reverse=True):
            if not latest[cycle]:
                break
            streak += 1
        return streak

    def as_dict(self) -> dict:
        return {
            "name": self.cohort.name,
            "description": self.cohort.description,
            "state": self.state,
            "customers": len(self.cohort.members),
            "members": {c: rfc3339_or_none(v) for c, v in self.cohort.members.items()},
            "promoted_at": rfc3339_or_none(self.cohort.promoted_at),
            "rolled_back_at": rfc3339_or_none(self.cohort.rolled_back_at),
            "parallel_runs": len(self.runs),
            "clean_streak": self.clean_streak,
        }




def cohort_status(store: Store, environment: str, name: str | None = None) -> list[CohortStatus]:
    rows = load_cohorts(store, environment, name)
    if name is not None and not rows:
        raise CohortError(f"no cohort {name!r}; create it with `ratecard cohort create {name}`")
    return [CohortStatus(row, parallel_runs_of(store, environment, row.name)) for row in rows]


def create(store: Store, environment: str, name: str, description: str | None, now: datetime) -> None:
    # what is shown must be what is typed back: no control or invisible formatting characters
    # (DEL, a right-to-left override, a line separator), no spaces around it, and it must fit
    if not name.strip() or not name.isprintable() or name != name.strip():
        raise CohortError("a cohort name must be non-empty printable text without leading or trailing spaces")
    if len(name) > MAX_NAME:
        raise CohortError(f"a cohort name must be at most {MAX_NAME} characters (this one has {len(name)})")
    try:
        create_cohort(store, environment, name, description, to_micros(now))
    except ValueError as exc:
        raise CohortError(str(exc)) from None


def add(store: Store, environment: str, catalog: Catalog, name: str, customers: Sequence[str],
        now: datetime) -> list[str]:
    """Put customers in shadow as members of the cohort; returns the ones newly added.

    All or nothing: an unknown customer, or one already in another cohort, changes nothing."""
    (status,) = cohort_status(store, environment, name)
    if status.state == "live":
        raise CohortError(f"cohort {name!r} is promoted; add customers to a new cohort and promote that one")
    wanted = list(dict.fromkeys(c.strip() for c in customers if c.strip()))
    if not wanted:
        raise CohortError("no customers given")
    unknown = [c for c in wanted if c not in catalog.customers]
    if unknown:
        raise CohortError(f"unknown customer(s) {', '.join(unknown[:10])}: not in the applied catalog; nothing added")
    elsewhere = {c: other for c, other in cohort_of(store, environment, wanted).items() if other and other != name}
    if elsewhere:
        listed = ", ".join(f"{c} (in {other})" for c, other in list(elsewhere.items())[:10])
        raise CohortError(f"customer(s) already in another cohort: {listed}; nothing added")
    new = [c for c in wanted if c not in status.cohort.members]
    set_members(store, environment, name, dict.fromkeys(new), to_micros(now))
    return new


def next_boundary(catalog: Catalog, customer: str, now: datetime) -> datetime:
    """The earliest period boundary after now over the customer's subscriptions (now if it has none)."""
    candidates = []
    for subscription in catalog.subscriptions.values():
        if subscription.customer != customer:
            continue
        schedule = subscription.schedule()
        horizon = now.astimezone(schedule.tz) + timedelta(days=400)
        for cut in invoice_cuts(schedule, horizon):
            if cut.boundary > now:
                candidates.append(cut.boundary)
                break
    return min(candidates, default=now)


def promotion_refusal(status: CohortStatus, force: bool = False) -> str | None:
    """Why the cohort cannot be promoted now, or None when it can (the gate `promote` applies)."""
    name = status.cohort.name
    if not status.cohort.members:
        return f"cohort {name!r} has no customers"
    if status.state == "live":
        return f"cohort {name!r} is already promoted"
    if not force and status.clean_streak < CLEAN_CYCLES_TO_PROMOTE:
        return (f"cohort {name!r} has {status.clean_streak} clean cycle(s) in a row; {CLEAN_CYCLES_TO_PROMOTE} "
                "are needed before promotion (`ratecard cohort report`), or pass --force to promote anyway")
    return None


def promote(store: Store, environment: str, catalog: Catalog, name: str, now: datetime,
            force: bool = False) -> Promotion:
    (status,) = cohort_status(store, environment, name)
    refusal = promotion_refusal(status, force)
    if refusal is not None:
        raise CohortError(refusal)
    live_from = {customer: to_micros(next_boundary(catalog, customer, now)) for customer in status.cohort.members}
    set_members(store, environment, name, live_from, to_micros(now), promoted_at=to_micros(now))
    return Promotion(name, live_from, forced=force and status.clean_streak < CLEAN_CYCLES_TO_PROMOTE)


def parse_cycle(text: str) -> tuple[date, date]:
    """YYYY-MM: the service periods starting in that month (local dates)."""
    try:
        first = date.fromisoformat(f"{text}-01")
    except ValueError:
        raise CohortError(f"--cycle {text!r}: expected a month as YYYY-MM") from None
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, following


def infer_cycle(legacy: Sequence[LegacyLine]) -> str:
    months = sorted({line.service_start.strftime("%Y-%m") for line in legacy})
    if len(months) != 1:
        shown = ", ".join(months[:6]) or "none"
        raise CohortError(f"the legacy file covers {len(months)} month(s) ({shown}); name the cycle with --cycle YYYY-MM")
    return months[0]


def parallel_run(store: Store, environment: str, catalog: Catalog, name: str, legacy: Sequence[LegacyLine],
                 legacy_file: str, now: datetime, cycle: str | None = None) -> tuple[int, str, Reconciliation]:
    """Reconcile the cohort's invoices for one cycle against the legacy export of that cycle, and keep it.

    Only the cohort's customers and the service periods starting in the cycle are compared, on
    both sides: the legacy export may hold every customer and more than one month."""
    (status,) = cohort_status(store, environment, name)
    members = set(status.cohort.members)
    if not members:
        raise CohortError(f"cohort {name!r} has no customers")
    ours = ratecard_lines(store, environment)
    # periods written as instants, on the subscription's local day (October in Berlin starts on Sep 30 in UTC)
    theirs = on_local_days([line for line in legacy if line.customer in members], ours, catalog)
    cycle = cycle or infer_cycle(theirs)
    first, following = parse_cycle(cycle)

    def in_scope(customer: str, service_start: date) -> bool:
        return customer in members and first <= service_start < following

    result = reconcile(store, catalog, theirs, environment, keep=in_scope, ours=ours)
    if result.matched == 0 and not result.differences:
        # a cycle nobody billed (a typo, a month to come) proves nothing: kept as "clean" it
        # would count towards promotion
        raise CohortError(f"nothing to compare for cohort {name!r} in cycle {cycle}: neither the legacy file nor "
                          "ratecard's invoices have a line for its customers there (run `ratecard invoices "
                          "generate` first, or name the cycle with --cycle); no report kept")
    run_id = save_parallel_run(store, environment, name, cycle, legacy_file, to_micros(now),
                               result.matched, len(result.differences), result.summary(), result.as_dict())
    return run_id, cycle, result
