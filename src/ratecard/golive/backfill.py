"""Backfills: historical usage for a time window, imported while pending, billed from close,
undone by revert (Orb's model). Invoices follow: drafts are refreshed, final invoices whose
content changes are corrected by a credit note and a replacement invoice, never edited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..billing.corrections import UpToDate, bring_invoices_up_to_date
from ..catalog import Catalog
from ..domain.instants import rfc3339, rfc3339_or_none, to_micros
from ..ingest.records import Event, RawEvent, Rejection
from ..ingest.validate import EventValidator
from ..store import Store
from ..store.backfills import (
    PENDING,
    REVERTED,
    Backfill,
    BackfillError,
    BackfillWriter,
    apply_backfill,
    get_backfill,
    set_result,
    unapply_backfill,
)

OUTSIDE = "outside_backfill"  # rejection reason: an event outside the backfill's window or customer


class BackfillValidator:
    """The importer's validator for a backfill: the usual checks and matching, then the window
    (and customer) of the backfill. Events of a backfill are never `late`: if they change a
    final invoice, closing the backfill corrects it."""

    def __init__(self, catalog: Catalog | None, now: datetime, backfill: Backfill) -> None:
        self.inner = EventValidator(catalog, now)
        self.backfill = backfill

    def check(self, raw: RawEvent) -> Event | Rejection:
        result = self.inner.check(raw)
        if type(result) is not Event:
            return result
        if result.subscription is not None:  # backfill_events has no column to keep it in
            return Rejection(result.line, "invalid_value",
                             f"line {result.line}: field 'subscription': a backfill cannot keep the subscription an "
                             "event names; import this event without a backfill", result.id)
        backfill = self.backfill
        if not backfill.start_ts <= result.ts < backfill.end_ts:
            return Rejection(result.line, OUTSIDE,
                             f"line {result.line}: field 'timestamp': {rfc3339(result.ts)} is outside backfill "
                             f"{backfill.id}'s window [{rfc3339(backfill.start_ts)}, {rfc3339(backfill.end_ts)})",
                             result.id)
        if backfill.customer is not None and result.customer != backfill.customer:
            return Rejection(result.line, OUTSIDE,
                             f"line {result.line}: field 'customer': {result.customer!r} is not backfill "
                             f"{backfill.id}'s customer {backfill.customer!r}", result.id)
        result.late = False
        return result

    def outside_reason(self, customer: str, ts: int, meter: str | None = None, subscription: str | None = None) -> str:
        return self.inner.outside_reason(customer, ts, meter, subscription)

    def unpriced_reason(self, customer: str, ts: int, meter: str, subscription: str | None,
                        properties: Any = None) -> str | None:
        return self.inner.unpriced_reason(customer, ts, meter, subscription, properties)


def import_target(store: Store, catalog: Catalog | None, now: datetime, backfill_id: str,
                  environment: str = "live") -> tuple[BackfillValidator, Any]:
    """(validator, writer factory) that put an import's events into a pending backfill."""
    backfill = get_backfill(store, environment, backfill_id)
    if backfill.status != PENDING:
        raise BackfillError(f"backfill {backfill_id} is {backfill.status}: events can only be added to a pending "
                            "backfill (create a new one)")
    return BackfillValidator(catalog, now, backfill), lambda store: BackfillWriter(store, backfill_id)


def close_backfill(store: Store, backfill_id: str, now: datetime, environment: str = "live") -> dict:
    """Make a pending backfill's events billable and bring invoices up to date. Idempotent: closing
    a closed backfill moves no event and corrects only what an interrupted close left."""
    backfill = get_backfill(store, environment, backfill_id)
    if backfill.status == REVERTED:
        raise BackfillError(f"backfill {backfill_id} was reverted; it cannot be closed (create a new one)")
    moved = apply_backfill(store, environment, backfill_id, to_micros(now))
    invoices = bring_invoices_up_to_date(store, now, backfill.start_ts, backfill.customer, environment)
    result = _result("close", moved is None, moved or {"added": 0, "already_stored": 0, "replaced": 0}, invoices)
    if moved is not None or invoices.corrections:
        set_result(store, backfill_id, result)
    result["backfill"] = describe(get_backfill(store, environment, backfill_id))
    return result


def revert_backfill(store: Store, backfill_id: str, now: datetime, environment: str = "live") -> dict:
    """Undo a pending or closed backfill: its events are no longer billed, the events it replaced
    are restored, drafts refreshed and final invoices corrected again."""
    backfill = get_backfill(store, environment, backfill_id)
    undone = unapply_backfill(store, environment, backfill_id, to_micros(now))
    if undone is None or undone["was"] == PENDING:
        invoices = UpToDate()  # nothing was ever billed from it
    else:
        invoices = bring_invoices_up_to_date(store, now, backfill.start_ts, backfill.customer, environment)
    counts = {"removed": undone["removed"], "restored": undone["restored"]} if undone else {"removed": 0,
                                                                                              "restored": 0}
    result = _result("revert", undone is None, counts, invoices)
    if undone is not None:
        set_result(store, backfill_id, result)
    result["backfill"] = describe(get_backfill(store, environment, backfill_id))
    return result


def _result(action: str, already: bool, events: dict, invoices: UpToDate) -> dict:
    return {"action": action, "already_done": already, "events": events, **invoices.as_dict()}


def describe(backfill: Backfill) -> dict:
    """A backfill as `backfill show --json` prints it."""
    return {
        "id": backfill.id,
        "status": backfill.status,
        "from": rfc3339(backfill.start_ts),
        "to": rfc3339(backfill.end_ts),
        "customer": backfill.customer,
        "replace": backfill.replace,
        "events": backfill.events,
        "created_at": rfc3339(backfill.created_at),
        "closed_at": rfc3339_or_none(backfill.closed_at),
        "reverted_at": rfc3339_or_none(backfill.reverted_at),
        "last_result": backfill.result,
    }
