"""Cohorts as an operator reads them before acting: each cycle's verdict, the clean streak and
the promotion gate (can it be promoted now, and if not why), from the same rules `cohort promote`
applies."""

from __future__ import annotations

from dataclasses import dataclass

from ..golive.cohorts import CLEAN_CYCLES_TO_PROMOTE, CohortStatus, promotion_refusal
from ..store import Store
from ..store.cohort_pages import IssuedInvoice, Member, issued_page, member_page
from ..store.cohorts import ParallelRun
from .cohorts import cohort_history, list_cohorts

__all__ = ["CLEAN_CYCLES_TO_PROMOTE", "CohortGate", "CycleVerdict", "IssuedInvoice", "Member", "cohort_gate",
           "cohort_gates", "cohort_members", "issued_while_live"]


@dataclass(frozen=True)
class CycleVerdict:
    cycle: str
    latest: ParallelRun  # a cycle is judged by its latest report
    reports: int
    counts: bool  # made since the last rollback: it counts towards promotion


@dataclass(frozen=True)
class CohortGate:
    status: CohortStatus
    refusal: str | None  # why `cohort promote` would refuse now; None: it would promote

    @property
    def name(self) -> str:
        return self.status.cohort.name

    @property
    def can_promote(self) -> bool:
        return self.refusal is None

    @property
    def can_roll_back(self) -> bool:
        return self.status.state == "live"

    @property
    def cycles(self) -> list[CycleVerdict]:
        """Newest cycle first."""
        since = self.status.cohort.rolled_back_at
        by_cycle: dict[str, list[ParallelRun]] = {}
        for run in self.status.runs:  # oldest first
            by_cycle.setdefault(run.cycle, []).append(run)
        return [CycleVerdict(cycle, runs[-1], len(runs), since is None or runs[-1].created_at > since)
                for cycle, runs in sorted(by_cycle.items(), reverse=True)]


def _gate(status: CohortStatus) -> CohortGate:
    return CohortGate(status, promotion_refusal(status))


def cohort_gates(store: Store, environment: str = "live") -> list[CohortGate]:
    return [_gate(status) for status in list_cohorts(store, environment)]


def cohort_gate(store: Store, name: str, environment: str = "live") -> CohortGate:
    """NotFound for a cohort that does not exist."""
    return _gate(cohort_history(store, name, environment))


PER_PAGE = 50


def cohort_members(store: Store, name: str, environment: str = "live", page: int = 1,
                   per_page: int = PER_PAGE) -> tuple[list[Member], bool]:
    """One page of the cohort's customers with the instant ratecard bills each from."""
    rows = member_page(store, environment, name, per_page + 1, (page - 1) * per_page)
    return rows[:per_page], len(rows) > per_page


def issued_while_live(store: Store, gate: CohortGate, environment: str = "live", page: int = 1,
                      per_page: int = PER_PAGE) -> tuple[list[IssuedInvoice], bool]:
    """The final invoices ratecard issued for the cohort since its promotion (until its rollback, when
    it was rolled back): each needs a credit note if the legacy system bills the same periods."""
    promoted_at = gate.status.cohort.promoted_at
    if promoted_at is None:
        return [], False
    until = gate.status.cohort.rolled_back_at if gate.status.state == "rolled back" else None
    rows = issued_page(store, environment, gate.name, promoted_at, until, per_page + 1, (page - 1) * per_page)
    return rows[:per_page], len(rows) > per_page
