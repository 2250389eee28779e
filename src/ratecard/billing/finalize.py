"""Finalizing what is due: drafts past their grace period and not on hold.

Safe from cron and safe when two run at once: each invoice is finalized by a conditional
UPDATE (status still draft) in the same transaction that takes the next number, so a second
process finds it already final, rolls its transaction back and the number is not used: one
invoice, one number, no gaps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from ..domain.invoice import InvoiceStateError
from ..ingest.validate import to_micros
from ..store import Store
from ..store.invoices import InvoiceRecord, change_status
from ..store.schema import invoices

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
    query = (select(invoices.c.id, invoices.c.boundary_ts, invoices.c.on_hold)
             .where(invoices.c.environment == environment, invoices.c.status == "draft",
                    invoices.c.mode == "live")  # shadow invoices are never finalized
             .order_by(invoices.c.boundary_ts, invoices.c.id))
    with store.engine.connect() as connection:
        drafts = list(connection.execute(query))
    for invoice_id, boundary_ts, on_hold in drafts:
        if on_hold:
            queue.held.append(invoice_id)
        elif boundary_ts > due_before:
            queue.within_grace += 1
        else:
            queue.due.append(invoice_id)
    return queue


def finalize_due(store: Store, now: datetime, prefix: str, grace: timedelta = DEFAULT_GRACE,
                 environment: str = "live") -> FinalizeReport:
    queue = draft_queue(store, now, grace, environment)
    report = FinalizeReport(on_hold=len(queue.held), within_grace=queue.within_grace)
    for invoice_id in queue.due:
        finalized = _finalize_one(store, invoice_id, now, prefix, environment)
        if finalized is None:
            report.skipped_by_other_process += 1  # finalized elsewhere; no number was used here
        else:
            report.finalized.append(finalized)
    return report


def _finalize_one(store: Store, invoice_id: int, now: datetime, prefix: str, environment: str,
                  attempts: int = 5) -> InvoiceRecord | None:
    for attempt in range(attempts):
        try:
            return change_status(store, invoice_id, "final", to_micros(now), prefix, environment)
        except (RuntimeError, InvoiceStateError):
            return None  # another process moved it first; this transaction was rolled back
        except OperationalError:
            # SQLite: a read snapshot taken before another writer committed cannot be upgraded
            # to a write; start again on a fresh snapshot
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    return None


def set_hold(store: Store, invoice_id: int, hold: bool, environment: str = "live") -> bool:
    """Hold (or release) a draft; returns False when the invoice is not a draft."""
    with store.engine.begin() as connection:
        result = connection.execute(
            update(invoices)
            .where(invoices.c.id == invoice_id, invoices.c.environment == environment, invoices.c.status == "draft")
            .values(on_hold=hold)
        )
        return result.rowcount == 1
