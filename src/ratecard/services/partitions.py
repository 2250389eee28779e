"""The monthly partitions of the events table (PostgreSQL): create ahead, list, archive a month.

Rules (docs/scaling.md, "Monthly partitions"):
- `create --ahead N` makes the current month and the N after it (UTC months), and splits out of
  the default partition every month up to that horizon that has events waiting there. Running
  it again changes nothing.
- `detach YYYY-MM` archives a month only once it is settled: it has ended, and none of the live
  environment's events in it could still change an invoice: none unmatched (reprocessing could
  bill them) and every matched one inside a service window a final invoice billed (the test that
  flags an arriving event late), and no pending backfill starts before it ends (its close corrects
  every final invoice cut after its start). Sandbox events are test data: they go with the
  archive. A backfill cannot be opened, closed or reverted over or before an archived month
  (services/backfills.py): that would recompute its final invoices without the archived events.
- `attach YYYY-MM` undoes a detach: the archive becomes the month's partition again and the
  guard is dropped, in one transaction, so the month takes events again only once its rows are
  back. Events of the month stored in the default partition before the guard existed move into
  the archive first (refused when an id of theirs is in the archive already: two versions of one
  event). The roll-ups are left as they are: the detach left them too, and the events are the
  same ones. Without the archive (dropped), only `--without-archive` drops the guard alone: the
  month's events are gone for good, its ids stay claimed (sent again, a duplicate), and its
  roll-up rows are recomputed from the events left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain.instants import rfc3339, to_micros
from ..store import Store
from ..store.partitions import (
    Month,
    PartitionError,
    attach_month,
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
                           "in one table (nothing to create, list, detach or attach)")


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
        reasons.append(f"{state.pending_backfills} pending backfill(s) start before it ends: closing them would bill "
                       "it or correct its final invoices (close or revert them first)")
    document = {"month": month.label, "partition": month.name, "rows": state.rows, "settled": state.settled,
                "unmatched": state.unmatched, "unfinalized": state.unfinalized,
                "pending_backfills": state.pending_backfills, "dry_run": dry_run,
                "archived_as": state.detached_as, "reasons": reasons}
    if reasons and not dry_run:
        raise Refused(f"{month.label} is not settled; nothing was detached", details=reasons)
    return document


def attach_partition(store: Store, label: str, without_archive: bool = False,
                     dry_run: bool = False) -> dict[str, Any]:
    """Re-attach an archived month (see the module's docstring); refused, nothing changed, when it
    is not archived, has a partition, lost its archive (without `without_archive`) or holds in the
    default partition events whose ids the archive holds too. --dry-run says what it would do."""
    month = Month.parse(label)
    if month is None:
        raise InvalidInput(f"expected a month as YYYY-MM, got {label!r}", field="month")
    _require_postgres(store)
    try:
        state = attach_month(store, month, without_archive=without_archive, dry_run=dry_run)
    except PartitionError as exc:
        raise Conflict(str(exc)) from None
    if not state.archived:
        raise NotFound(f"{month.label} is not archived (see `ratecard events partitions list`)")
    if state.partition:
        raise Conflict(f"a table {month.name} exists already: {month.label} has a partition, nothing to re-attach "
                       "(rename or drop it first)")
    if state.clashes:
        raise Conflict(f"{state.clashes} event(s) of {month.label} in the default partition have ids the archive "
                       f"{month.archive_name} holds already; nothing was attached (delete one version of each first)")
    if not state.archive and not without_archive:
        raise Conflict(f"the archive {month.archive_name} is gone; nothing was attached. To accept {month.label}'s "
                       "events again without its archived ones (they are lost), run again with --without-archive")
    return {"month": month.label, "archive": month.archive_name if state.archive else None,
            "partition": month.name if state.archive else None, "rows": state.rows,
            "moved": state.moved if not dry_run else 0, "to_move": state.strays if state.archive else 0,
            "guard": month.guard_name if state.guarded else None, "guard_dropped": state.guard_dropped,
            "attached": state.attached_as is not None, "without_archive": not state.archive,
            "rollups_refreshed": state.rollups_refreshed or [], "dry_run": dry_run}
