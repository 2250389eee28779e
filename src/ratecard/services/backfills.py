"""Backfills: historical usage for a time window, imported pending, billed on close (final invoices
corrected by credit notes), undone by revert."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain.instants import to_micros
from ..golive.backfill import close_backfill, describe, revert_backfill
from ..store import Store
from ..store.backfills import (
    CLOSED,
    PENDING,
    Backfill,
    BackfillError,
    BackfillNotFound,
    create_backfill,
    get_backfill,
    list_backfills,
)
from ..store.partitions import archived_months
from .errors import Conflict, InvalidInput, NotFound

STATUSES = ("pending", "closed", "reverted")


def open_backfill(store: Store, start: datetime, end: datetime, now: datetime, environment: str = "live", *,
                  customer: str | None = None, replace: bool = False) -> dict[str, Any]:
    """A pending backfill for [start, end); refused when it overlaps another pending one.

    Asking again for a backfill that is already pending with the same window, customer and
    --replace gives that one back (`created` false) rather than a refusal: a script or a tour run
    twice goes on importing into the same backfill, as an idempotent create does elsewhere."""
    if start >= end:
        raise InvalidInput(f"{end.isoformat()} must be after the window's start {start.isoformat()} "
                           "(the window is [from, to))", field="to")
    start_ts, end_ts = to_micros(start), to_micros(end)
    # its close would recompute the final invoices of those months without their archived events
    _refuse_archived(store, start_ts, "backfilling it")
    same = _pending_twin(store, environment, start_ts, end_ts, customer, replace)
    if same is not None:
        return {**describe(same), "created": False}
    try:
        backfill = create_backfill(store, environment, start_ts, end_ts, customer, replace, to_micros(now))
    except BackfillError as exc:
        same = _pending_twin(store, environment, start_ts, end_ts, customer, replace)  # a twin made meanwhile
        if same is not None:
            return {**describe(same), "created": False}
        raise Conflict(str(exc)) from None
    return {**describe(backfill), "created": True}


def _pending_twin(store: Store, environment: str, start_ts: int, end_ts: int, customer: str | None,
                  replace: bool) -> Backfill | None:
    """The pending backfill asking for exactly this, if there is one."""
    for backfill in list_backfills(store, environment, PENDING):
        if (backfill.start_ts, backfill.end_ts, backfill.customer, backfill.replace) == (start_ts, end_ts, customer,
                                                                                          replace):
            return backfill
    return None


def find_backfills(store: Store, environment: str = "live", status: str | None = None, *, limit: int | None = None,
                   offset: int = 0) -> list[dict[str, Any]]:
    """Every backfill, oldest first (or `limit` of them from `offset`: one page)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"{status!r} is not one of {', '.join(STATUSES)}", field="status")
    return [describe(backfill) for backfill in list_backfills(store, environment, status, limit, offset)]


def show_backfill(store: Store, backfill_id: str, environment: str = "live") -> dict[str, Any]:
    try:
        return describe(get_backfill(store, environment, backfill_id))
    except BackfillNotFound as exc:
        raise NotFound(str(exc)) from None


def _run(action: Any, store: Store, backfill_id: str, now: datetime, environment: str) -> dict[str, Any]:
    try:
        return action(store, backfill_id, now, environment)
    except BackfillNotFound as exc:
        raise NotFound(str(exc)) from None
    except BackfillError as exc:
        raise Conflict(str(exc)) from None


def close(store: Store, backfill_id: str, now: datetime, environment: str = "live") -> dict[str, Any]:
    """Bill a pending backfill: its events become billable, drafts are refreshed, each changed final invoice
    gets a credit note and a replacement. Closing twice moves nothing. Refused while a month from its
    window's start on is archived (see _refuse_archived)."""
    try:
        backfill = get_backfill(store, environment, backfill_id)
    except BackfillNotFound as exc:
        raise NotFound(str(exc)) from None
    _refuse_archived(store, backfill.start_ts, "closing this backfill")
    return _run(close_backfill, store, backfill_id, now, environment)


def revert(store: Store, backfill_id: str, now: datetime, environment: str = "live") -> dict[str, Any]:
    """Undo a pending or closed backfill; invoices are brought up to date again. A closed one is
    refused while a month from its window's start on is archived: bringing that month's final
    invoices up to date would recompute them from the events still attached, none of the month's,
    and credit it whole (a pending one billed nothing: it just ends)."""
    try:
        backfill = get_backfill(store, environment, backfill_id)
    except BackfillNotFound as exc:
        raise NotFound(str(exc)) from None
    if backfill.status == CLOSED:
        _refuse_archived(store, backfill.start_ts, "reverting this backfill")
    return _run(revert_backfill, store, backfill_id, now, environment)


def _refuse_archived(store: Store, start_ts: int, action: str) -> None:
    """Conflict when a month that ends after `start_ts`, a backfill window's start, is archived
    (PostgreSQL's partitions): closing or reverting the backfill corrects every final invoice cut
    after its start, in the window or after it, from the events attached, and an archived month
    has none attached any more (its final invoice would be credited whole)."""
    archived = [month.label for month in archived_months(store) if start_ts < month.end_us]
    if archived:
        raise Conflict(f"the window covers or precedes archived month(s) {', '.join(archived)} (detached from "
                       f"events), whose final invoices it would correct; attach the archive again before {action} "
                       "(`ratecard events partitions attach YYYY-MM`)")
