"""Shadow launch and rollback: cohorts computed by ratecard while the legacy system bills them,
their parallel runs, promotion to live, and the way back to shadow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..golive.cohorts import CohortError, CohortStatus, Promotion, add, cohort_status, create, parallel_run, promote
from ..golive.reconcile import Reconciliation
from ..golive.rollback import RollbackReport, rollback
from ..store import Store
from ..store.cohorts import load_cohorts
from ..textfile import read_text
from .catalog import current_catalog, invoice_prefix
from .errors import Conflict, InvalidInput, NotFound
from .reconcile import read_legacy_export

MAX_DESCRIPTION = 2000  # a sentence or two, shown on the cohort's page

# golive.cohorts raises one error class for every refusal; those about a cohort's state are conflicts,
# and a missing cohort is checked here first so that it is reported as NotFound.


def _existing(store: Store, environment: str, name: str, *, adding: bool = False) -> None:
    """NotFound for a cohort that does not exist: adding customers suggests creating it; the other
    verbs (report, history, promote, rollback) name the cohorts there are, since creating one
    would not help a typo."""
    if load_cohorts(store, environment, name):
        return
    if adding:
        raise NotFound(f"no cohort {name!r}; create it with `ratecard cohort create {name}`")
    names = [row.name for row in load_cohorts(store, environment)]
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    raise NotFound(f"no cohort {name!r}" + (f" (the cohorts: {shown})" if names else " (there is no cohort yet)"))


def create_cohort(store: Store, name: str, now: datetime, environment: str = "live",
                  description: str | None = None) -> None:
    if description is not None:
        if len(description) > MAX_DESCRIPTION:
            raise InvalidInput(f"a cohort description must be at most {MAX_DESCRIPTION} characters "
                               f"(this one has {len(description)})", field="description")
        if not description.isprintable():  # shown as typed: no control characters, no line breaks
            raise InvalidInput("a cohort description must be printable text on one line", field="description")
    try:
        create(store, environment, name, description, now)
    except CohortError as exc:
        raise Conflict(str(exc)) from None


def read_customer_list(path: Path) -> list[str]:
    """A text file with one customer reference per line; blank lines and # comments are skipped."""
    try:
        text = read_text(path, "customer list", CohortError)
    except CohortError as exc:
        raise InvalidInput(str(exc)) from None
    # an indented "# comment" is a comment too, not a customer called "# comment"
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def add_customers(store: Store, name: str, customers: Sequence[str], now: datetime,
                  environment: str = "live") -> list[str]:
    """Put customers in shadow as members of the cohort (all or nothing); returns those added."""
    _, catalog = current_catalog(store, environment)
    _existing(store, environment, name, adding=True)
    try:
        return add(store, environment, catalog, name, list(customers), now)
    except CohortError as exc:
        raise Conflict(str(exc)) from None


def list_cohorts(store: Store, environment: str = "live") -> list[CohortStatus]:
    return cohort_status(store, environment)


def cohort_history(store: Store, name: str, environment: str = "live") -> CohortStatus:
    """The cohort with its parallel runs, oldest first."""
    _existing(store, environment, name)
    (status,) = cohort_status(store, environment, name)
    return status


@dataclass
class ParallelRunReport:
    id: int
    cohort: str
    cycle: str
    result: Reconciliation
    clean_streak: int

    @property
    def clean(self) -> bool:
        return not self.result.differences

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "cohort": self.cohort, "cycle": self.cycle, "clean": self.clean,
                "clean_streak": self.clean_streak, **self.result.as_dict()}


def report_cohort(store: Store, name: str, legacy_file: Path, now: datetime, environment: str = "live", *,
                  cycle: str | None = None, mapping: str | None = None) -> ParallelRunReport:
    """Parallel run: reconcile the cohort's invoices of one cycle with the legacy export, and keep the report."""
    legacy = read_legacy_export(legacy_file, mapping)
    _, catalog = current_catalog(store, environment)
    _existing(store, environment, name)
    try:
        run_id, cycle_name, result = parallel_run(store, environment, catalog, name, legacy, str(legacy_file), now,
                                                  cycle)
    except CohortError as exc:
        raise Conflict(str(exc)) from None
    (status,) = cohort_status(store, environment, name)
    return ParallelRunReport(run_id, name, cycle_name, result, status.clean_streak)


def promote_cohort(store: Store, name: str, now: datetime, environment: str = "live",
                   force: bool = False) -> Promotion:
    """Make the cohort live at each customer's next period boundary (two clean parallel runs first, or force)."""
    _, catalog = current_catalog(store, environment)
    _existing(store, environment, name)
    try:
        return promote(store, environment, catalog, name, now, force)
    except CohortError as exc:
        raise Conflict(str(exc)) from None


def rollback_cohort(store: Store, name: str, now: datetime, environment: str = "live",
                    dry_run: bool = False) -> RollbackReport:
    """Back to shadow now: unsent drafts voided, final invoices issued since promotion listed for correction
    (`dry_run`: the same report, nothing changed)."""
    prefix = invoice_prefix(store, environment)
    _existing(store, environment, name)
    try:
        return rollback(store, environment, name, now, prefix, dry_run)
    except CohortError as exc:
        raise Conflict(str(exc)) from None
