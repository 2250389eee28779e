"""Finalizing what is due: drafts past their grace period and not on hold.

Safe from cron and safe when two run at once: each invoice is finalized by a conditional
UPDATE (status still draft) in the same transaction that takes the next number, so a second
process finds it already final, rolls its transaction back and the number is not used: one
invoice, one number, no gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..domain.instants import to_micros
from ..domain.invoice import InvoiceStateError
from ..store import Store
from ..store.invoice_states import live_drafts
from ..store.invoices import ONE_OFF, InvoiceChanged, InvoiceRecord, Prefix, change_status

# what a finalization writes in its own transaction besides the invoice (its webhook deliveries),
# given that transaction and the final invoice
Then = Callable[[Any, InvoiceRecord], None]

# Late events keep landing on a draft for this long after its billing date.
DEFAULT_GRACE = timedelta(hours=8)


@dataclass
class FinalizeReport:
    finalized: list[InvoiceRecord] = field(default_factory=list)
    skipped_by_other_process: int = 0
    on_hold: int = 0
    within_grace: int = 0


@dataclass
class DraftQueue:
    """The live drafts as `finalize --due` sees them at "now" (shadow drafts are never finalized)."""

    due: list[int] = field(default_factory=list)  # ids past their grace period, in finalizing order
    held: list[int] = field(default_factory=list)  # on hold: never finalized until released
    within_grace: int = 0


def draft_queue(store: Store, now: datetime, grace: timedelta = DEFAULT_GRACE,
                environment: str = "live") -> DraftQueue:
    """Sort the live drafts into due, held and within their grace period (one read, nothing written):
    what finalize_due finalizes, and what a dry run shows."""
    queue = DraftQueue()
    due_before = to_micros(now - grace)
    for draft in live_drafts(store, environment):
        if draft.on_hold:
            queue.held.append(draft.id)
        elif draft.subscription == ONE_OFF:
            continue  # a one-off invoice is finalized when its author says so, never by the clock
        elif draft.boundary_ts > due_before:
            queue.within_grace += 1
        else:
            queue.due.append(draft.id)
    return queue


def finalize_due(store: Store, now: datetime, prefix: Prefix, grace: timedelta = DEFAULT_GRACE,
                 environment: str = "live", then: Then | None = None) -> FinalizeReport:
    """Finalize the queue's due drafts, each in a transaction of its own with what `then` writes
    for it (its webhook deliveries)."""
    queue = draft_queue(store, now, grace, environment)
    report = FinalizeReport(on_hold=len(queue.held), within_grace=queue.within_grace)
    for invoice_id in queue.due:
        finalized = _finalize_one(store, invoice_id, now, prefix, environment, then)
        if finalized is None:
            report.skipped_by_other_process += 1  # finalized elsewhere; no number was used here
        else:
            report.finalized.append(finalized)
    return report


def _finalize_one(store: Store, invoice_id: int, now: datetime, prefix: Prefix, environment: str,
                  then: Then | None) -> InvoiceRecord | None:
    try:
        return change_status(store, invoice_id, "final", to_micros(now), prefix, environment, attempts=5, then=then)
    except (InvoiceChanged, InvoiceStateError):
        return None  # another process moved it first; this transaction was rolled back
