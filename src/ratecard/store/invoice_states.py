"""Invoices as their state only (no lines): what the finalizer, the readiness check, the rollback
and the corrections decide on. Reading a header row is enough for those decisions; the full
invoice (lines included) is loaded by store/invoices.py only for the invoices acted upon.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import false, func, select, update

from .db import Store
from .schema import invoices


@dataclass(frozen=True)
class InvoiceState:
    id: int
    customer: str
    issue_date: str
    status: str
    boundary_ts: int
    on_hold: bool
    finalized_at: int | None
    draft_number: int | None  # DRAFT-<n>, counted per environment
    subscription: str = ""  # store.invoices.ONE_OFF: a one-off invoice, finalized by hand only


_COLUMNS = (invoices.c.id, invoices.c.customer, invoices.c.issue_date, invoices.c.status, invoices.c.boundary_ts,
            invoices.c.on_hold, invoices.c.finalized_at, invoices.c.draft_number, invoices.c.subscription)


def live_drafts(store: Store, environment: str) -> list[InvoiceState]:
    """The live drafts (shadow invoices are never finalized), oldest cut first."""
    query = (select(*_COLUMNS)
             .where(invoices.c.environment == environment, invoices.c.status == "draft", invoices.c.mode == "live")
             .order_by(invoices.c.boundary_ts, invoices.c.id))
    with store.engine.connect() as connection:
        return [InvoiceState(*row) for row in connection.execute(query)]


def _unheld_live_drafts_cut_before(environment: str, cut_us: int) -> tuple:
    return (invoices.c.environment == environment, invoices.c.status == "draft", invoices.c.mode == "live",
            invoices.c.boundary_ts < cut_us, invoices.c.on_hold == false())


def unheld_live_drafts_cut_before(store: Store, environment: str, cut_us: int,
                                  limit: int | None = None) -> list[InvoiceState]:
    """The live drafts cut before the instant and not on hold, in draft-number order (DRAFT-2
    before DRAFT-10; a draft without a number, named DRAFT, first); `limit`: the first few only."""
    query = (select(*_COLUMNS).where(*_unheld_live_drafts_cut_before(environment, cut_us))
             .order_by(invoices.c.draft_number.is_not(None), invoices.c.draft_number, invoices.c.boundary_ts,
                       invoices.c.id)
             .limit(limit))
    with store.engine.connect() as connection:
        return [InvoiceState(*row) for row in connection.execute(query)]


def count_unheld_live_drafts_cut_before(store: Store, environment: str, cut_us: int) -> int:
    query = select(func.count()).select_from(invoices).where(*_unheld_live_drafts_cut_before(environment, cut_us))
    with store.engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)


def live_invoices_of(store: Store, environment: str, customers: Sequence[str]) -> list[InvoiceState]:
    """The live invoices (not credit notes) of these customers, in any status, oldest cut first."""
    rows = []
    with store.engine.connect() as connection:
        for start in range(0, len(customers), 900):  # bound the IN list (SQLite caps variables)
            query = (select(*_COLUMNS)
                     .where(invoices.c.environment == environment, invoices.c.mode == "live",
                            invoices.c.kind == "invoice", invoices.c.customer.in_(customers[start:start + 900])))
            rows += connection.execute(query).all()
    return sorted((InvoiceState(*row) for row in rows), key=lambda state: (state.boundary_ts, state.id))


def latest_boundary(store: Store, environment: str) -> int | None:
    """The latest cut (µs) any invoice of the environment was made for; None before the first."""
    with store.engine.connect() as connection:
        return connection.execute(
            select(func.max(invoices.c.boundary_ts)).where(invoices.c.environment == environment)
        ).scalar()


def set_hold(store: Store, invoice_id: int, hold: bool, environment: str = "live") -> bool:
    """Hold (or release) a draft; returns False when the invoice is not a draft."""
    with store.engine.begin() as connection:
        result = connection.execute(
            update(invoices)
            .where(invoices.c.id == invoice_id, invoices.c.environment == environment, invoices.c.status == "draft")
            .values(on_hold=hold)
        )
        return result.rowcount == 1
