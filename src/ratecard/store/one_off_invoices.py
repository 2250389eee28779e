"""One-off invoices (written by hand for a customer, no subscription), the lines of a draft
rewritten, invoices archived, and the statuses of a final invoice's e-invoice.

A one-off invoice is a draft like any other (DRAFT-<n>, numbered gaplessly when finalized); its
subscription is store.invoices.ONE_OFF, so invoice runs never recompute or remove it. Its cut
instant (boundary_ts) is the moment it was written, made unique among the environment's one-off
invoices under the draft counter's lock (uq_invoices_cut holds one document per cut).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from .db import Store
from .invoices import HEADER, ONE_OFF, InvoiceRecord, LineRecord, line_rows, load_invoices, reserve_draft_numbers
from .schema import e_invoice_statuses, invoice_lines, invoices


def insert_one_off(store: Store, environment: str, record: InvoiceRecord, now_us: int,
                   then: Callable[[Connection, InvoiceRecord], None] | None = None) -> InvoiceRecord:
    """Write a one-off draft with its lines; returns it as stored (id, DRAFT-<n>, its instant).
    `then` writes what goes with it (its webhook deliveries) in the same transaction."""
    with store.engine.begin() as connection:
        # first: the counter row's lock serialises the writers of one environment, so the instant
        # chosen below is not taken by another one-off meanwhile
        [draft_number] = reserve_draft_numbers(connection, environment, 1)
        latest = connection.execute(select(func.max(invoices.c.boundary_ts)).where(
            invoices.c.environment == environment, invoices.c.subscription == ONE_OFF)).scalar()
        values = {name: getattr(record, name) for name in HEADER}
        values.update(subscription=ONE_OFF, status="draft", boundary_ts=max(record.boundary_ts, (latest or 0) + 1),
                      environment=environment, created_at=now_us, updated_at=now_us, draft_number=draft_number)
        invoice_id = connection.execute(insert(invoices).values(**values).returning(invoices.c.id)).scalar_one()
        if record.lines:
            connection.execute(insert(invoice_lines), line_rows(invoice_id, record.lines))
        saved = load_invoices(connection, [invoice_id])[invoice_id]
        if then is not None:
            then(connection, saved)
        return saved


@dataclass(frozen=True)
class DraftContent:
    """What a draft's lines and totals become."""

    lines: list[LineRecord]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    tax_rate: Decimal
    positions: list[int] | None = None  # each line's number, kept across edits (None: 0, 1, 2...)


def rewrite_draft(store: Store, environment: str, invoice_id: int, expected_updated_at: int, content: DraftContent,
                  now_us: int) -> InvoiceRecord | None:
    """Replace a draft's lines and totals, only while it is still the draft the caller read (status
    draft, same updated_at): None when it was finalized, voided or changed meanwhile, nothing written."""
    with store.engine.begin() as connection:
        changed = connection.execute(
            update(invoices)
            .where(invoices.c.environment == environment, invoices.c.id == invoice_id, invoices.c.status == "draft",
                   invoices.c.updated_at == expected_updated_at)
            .values(subtotal=content.subtotal, tax=content.tax, total=content.total, tax_rate=content.tax_rate,
                    updated_at=max(now_us, expected_updated_at + 1))
        ).rowcount
        if changed != 1:
            return None
        connection.execute(delete(invoice_lines).where(invoice_lines.c.invoice_id == invoice_id))
        if content.lines:
            connection.execute(insert(invoice_lines), line_rows(invoice_id, content.lines, content.positions))
        return load_invoices(connection, [invoice_id])[invoice_id]


def archive(store: Store, environment: str, invoice_id: int, statuses: tuple[str, ...], now_us: int) -> bool:
    """Mark the invoice archived if its status is one of `statuses` (already archived: kept as it
    was). False when its status does not allow it."""
    with store.engine.begin() as connection:
        return connection.execute(
            update(invoices)
            .where(invoices.c.environment == environment, invoices.c.id == invoice_id,
                   invoices.c.status.in_(statuses))
            .values(archived_at=func.coalesce(invoices.c.archived_at, now_us))
        ).rowcount == 1


@dataclass(frozen=True)
class EInvoiceStatus:
    external_reference: str
    status: str
    message: str | None
    created_at: int


def add_e_invoice_status(store: Store, environment: str, invoice_id: int, external_reference: str, status: str,
                         message: str | None, now_us: int) -> None:
    with store.engine.begin() as connection:
        connection.execute(insert(e_invoice_statuses).values(
            environment=environment, invoice_id=invoice_id, external_reference=external_reference, status=status,
            message=message, created_at=now_us))


def e_invoice_history(store: Store, environment: str, invoice_ids: list[int]) -> dict[int, list[EInvoiceStatus]]:
    """invoice id -> its e-invoice's statuses, oldest first."""
    found: dict[int, list[EInvoiceStatus]] = {}
    with store.engine.connect() as connection:
        for start in range(0, len(invoice_ids), 900):
            query: Any = (select(e_invoice_statuses.c.invoice_id, e_invoice_statuses.c.external_reference,
                                 e_invoice_statuses.c.status, e_invoice_statuses.c.message,
                                 e_invoice_statuses.c.created_at)
                          .where(e_invoice_statuses.c.environment == environment,
                                 e_invoice_statuses.c.invoice_id.in_(invoice_ids[start:start + 900]))
                          .order_by(e_invoice_statuses.c.id))
            for invoice_id, reference, status, message, created_at in connection.execute(query):
                found.setdefault(invoice_id, []).append(EInvoiceStatus(reference, status, message, created_at))
    return found
