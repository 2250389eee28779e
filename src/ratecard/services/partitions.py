"""The monthly partitions of the events table (PostgreSQL): create ahead, list, archive a month.

Rules (docs/scaling.md, "Monthly partitions"):
- `create --ahead N` makes the current month and the N after it (UTC months), and splits out of
  the default partition every month up to that horizon that has events waiting there. Running
  it again changes nothing.
- `detach YYYY-MM` archives a month only once it is settled: it has ended, and none of the live
  environment's events in it could still change an invoice: none unmatched (reprocessing could
  bill them) and every matched one inside a service window a final invoice billed (the test that
  flags an arriving event late), and no pending backfill overlaps it. Sandbox events are test
  data: they go with the archive. A backfill cannot be opened over an archived month
  (services/backfills.py): its close would recompute final invoices without the archived events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain.instants import rfc3339, to_micros
from ..store import Store
from ..store.partitions import (
    Month,
    PartitionError,
    create_month,
    default_months,
    detach_month,
    list_partitions,
)
from .errors import Conflict, InvalidInput, NotFound, Refused

MAX_AHEAD = 36  # months: three years of empty partitions is plenty; more is surely a typo


def _require_postgres(store: Store) -> None:
    if not store.is_postgres:
        raise InvalidInput("events are partitioned by month on PostgreSQL only; this SQLite database keeps them "
                           "in one table (nothing to create, list or detach)")


def create_partitions(store: Store, now: datetime, ahead: int) -> dict[str, Any]:
    """Partitions for the current month and `ahead` months after it, and for every earlier month
    whose events wait in the default partition (they move into it)."""
    if not 0 <= ahead <= MAX_AHEAD:
        raise InvalidInput(f"must be between 0 and {MAX_AHEAD} months, got {ahead}", field="ahead")
    _require_postgres(store)
    current = Month.of_micros(to_micros(now))
    horizon = current.plus(ahead)
    wanted = sorted({current.plus(n) for n in range(ahead + 1)} | set(default_months(store, horizon)))
    created, existing = [], []
    for month in wanted:
        try:
            made = create_month(store, month)
        except PartitionError as exc:
            raise Conflict(str(exc)) from None
        if made is None:
            existing.append(month.label)
        else:
            created.append(made)
    return {"created": created, "existing": existing, "horizon": horizon.label}


def partition_report(store: Store, exact: bool = False) -> list[dict[str, Any]]:
    """Every partition of events and every archived month, in time order, the default last."""
    _require_postgres(store)
    return [{"name": p.name, "kind": p.kind, "month": p.month,
             "start": rfc3339(p.start_us) if p.start_us is not None else None,
             "end": rfc3339(p.end_us) if p.end_us is not None else None,
             "rows": p.rows, "rows_exact": exact, "bytes": p.bytes} for p in list_partitions(store, exact)]


def detach_partition(store: Store, label: str, now: datetime, dry_run: bool = False) -> dict[str, Any]:
    """Archive a settled month: its partition leaves events and stays as events_archive_YYYY_MM.
    Refused (nothing changes) when the month is not settled; --dry-run only says whether it is."""
    month = Month.parse(label)
    if month is None:
        raise InvalidInput(f"expected a month as YYYY-MM, got {label!r}", field="month")
    _require_postgres(store)
    if month.end_us > to_micros(now):
        raise Refused(f"{month.label} has not ended yet (it ends {rfc3339(month.end_us)}): only a past month "
                      "can be archived")
    try:
        state = detach_month(store, month, dry_run=dry_run)
    except PartitionError as exc:
        raise Conflict(str(exc)) from None
    if not state.attached:
        raise NotFound(f"events has no partition for {month.label} (see `ratecard events partitions list`)")
    reasons = []
    if state.unmatched:
        reasons.append(f"{state.unmatched} event(s) are unmatched: reprocessing could still bill them "
                       "(reprocess or delete them first)")
    if state.unfinalized:
        reasons.append(f"{state.unfinalized} matched event(s) are in periods no final invoice has billed yet "
                       "(finalize those invoices first)")
    if state.pending_backfills:
        reasons.append(f"{state.pending_backfills} pending backfill(s) overlap it: closing them would bill it "
                       "(close or revert them first)")
    document = {"month": month.label, "partition": month.name, "rows": state.rows, "settled": state.settled,
                "unmatched": state.unmatched, "unfinalized": state.unfinalized,
                "pending_backfills": state.pending_backfills, "dry_run": dry_run,
                "archived_as": state.detached_as, "reasons": reasons}
    if reasons and not dry_run:
        raise Refused(f"{month.label} is not settled; nothing was detached", details=reasons)
    return document
