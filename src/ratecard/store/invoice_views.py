"""What the console's invoice pages read: invoice headers filtered and paged in SQL (no lines),
what an invoice row records beyond InvoiceRecord (its hold), the documents that correct an
invoice, and the number the next finalization would take."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from .db import Store
from .invoices import draft_reference
from .schema import invoice_sequences, invoices


@dataclass(frozen=True)
class InvoiceSummary:
    id: int
    number: str | None
    draft_number: int | None
    customer: str
    subscription: str
    status: str
    kind: str  # invoice | credit_note
    mode: str  # live | shadow
    on_hold: bool
    currency: str
    total: Decimal
    issue_date: str
    corrects: int | None
    created_at: int
    finalized_at: int | None

    @property
    def display_number(self) -> str:
        return self.number or draft_reference(self.draft_number)


_COLUMNS = (invoices.c.id, invoices.c.number, invoices.c.draft_number, invoices.c.customer, invoices.c.subscription,
            invoices.c.status, invoices.c.kind, invoices.c.mode, invoices.c.on_hold, invoices.c.currency,
            invoices.c.total, invoices.c.issue_date, invoices.c.corrects, invoices.c.created_at,
            invoices.c.finalized_at)


def page_invoices(store: Store, environment: str, *, status: str | None = None, on_hold: bool | None = None,
                  customer: str | None = None, limit: int | None = 50, offset: int = 0) -> list[InvoiceSummary]:
    """Invoice headers of the environment, newest first, filtered; `limit` of them (None: all) from `offset`."""
    query = select(*_COLUMNS).where(invoices.c.environment == environment)
    if status is not None:
        query = query.where(invoices.c.status == status)
    if on_hold is not None:
        query = query.where(invoices.c.on_hold.is_(on_hold))
    if customer is not None:
        query = query.where(invoices.c.customer == customer)
    query = query.order_by(invoices.c.id.desc()).limit(limit).offset(offset)
    with store.engine.connect() as connection:
        return [InvoiceSummary(*row) for row in connection.execute(query)]


def invoice_summary(store: Store, environment: str, invoice_id: int) -> InvoiceSummary | None:
    with store.engine.connect() as connection:
        row = connection.execute(select(*_COLUMNS).where(invoices.c.environment == environment,
                                                         invoices.c.id == invoice_id)).first()
    return InvoiceSummary(*row) if row is not None else None


def corrections_of(store: Store, environment: str, invoice_id: int) -> list[InvoiceSummary]:
    """The credit notes and replacement invoices that correct this invoice, oldest first."""
    query = (select(*_COLUMNS).where(invoices.c.environment == environment, invoices.c.corrects == invoice_id)
             .order_by(invoices.c.id))
    with store.engine.connect() as connection:
        return [InvoiceSummary(*row) for row in connection.execute(query)]


def next_number_of(store: Store, environment: str, prefix: str) -> str:
    """The number the prefix's sequence gives next (store/invoices.next_number), read without taking it."""
    with store.engine.connect() as connection:
        last = connection.execute(select(invoice_sequences.c.last_number).where(
            invoice_sequences.c.environment == environment, invoice_sequences.c.prefix == prefix)).scalar()
    return f"{prefix}-{(last or 0) + 1:06d}"
