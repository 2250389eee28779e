"""Corrections of final invoices: a credit note and a replacement invoice, written together.

A final invoice is never edited. Its correction is two new documents at the next revision of
the same cut: a credit note (kind credit_note) negating it and a replacement invoice (kind
invoice) holding the recomputed lines, both pointing at it through `corrects`, both final at
once with their gapless numbers (credit notes have a sequence of their own), in one transaction.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from ..domain.tiers import parts_from_json, parts_json
from .catalogs import lock_environment
from .db import Store
from .invoices import HEADER, InvoiceRecord, LineRecord, line_rows, load_invoices, next_number, reserve_draft_numbers
from .schema import invoice_lines, invoices


def current_final_invoices(store: Store, environment: str, after_boundary_us: int,
                           customer: str | None = None) -> list[InvoiceRecord]:
    """The live invoices that stand for their cut (latest revision of kind invoice) and are final,
    cut after the given instant (optionally one customer's), with their lines."""
    query = (
        select(invoices.c.subscription, invoices.c.boundary_ts, invoices.c.id, invoices.c.status,
               invoices.c.customer)
        .where(invoices.c.environment == environment, invoices.c.kind == "invoice", invoices.c.mode == "live",
               invoices.c.boundary_ts > after_boundary_us)
        .order_by(invoices.c.revision)
    )
    with store.engine.connect() as connection:
        latest: dict[tuple[str, int], tuple[int, str, str]] = {}
        for subscription, boundary, invoice_id, status, owner in connection.execute(query):
            latest[(subscription, boundary)] = (invoice_id, status, owner)
        ids = [invoice_id for invoice_id, status, owner in latest.values()
               if status == "final" and (customer is None or owner == customer)]
        return sorted(load_invoices(connection, ids).values(), key=lambda r: (r.boundary_ts, r.customer, r.id or 0)) \
            if ids else []


def _negated(value: Decimal) -> Decimal:
    return Decimal(0) - value  # never -0


def negated_parts(text: str | None) -> str | None:
    """A credited line's tier parts: each quantity, flat amount and amount negated, its price kept."""
    return parts_json(tuple(replace(part, quantity=_negated(part.quantity), flat_amount=_negated(part.flat_amount),
                                    amount=_negated(part.amount)) for part in parts_from_json(text)))


def credit_note_for(original: InvoiceRecord, issue_date: str) -> InvoiceRecord:
    """A credit note negating every line (quantity and amount; unit amount kept) and the totals."""
    lines = [replace(line, quantity=_negated(line.quantity), amount=_negated(line.amount),
                     tiers=negated_parts(line.tiers))
             for line in original.lines]
    return replace(
        original, id=None, number=None, status="final", issue_date=issue_date, lines=lines,
        subtotal=_negated(original.subtotal), tax=_negated(original.tax), total=_negated(original.total),
        kind="credit_note", revision=original.revision + 1, corrects=original.id, created_at=0, updated_at=0,
        finalized_at=None, draft_number=None,
    )


def save_correction(store: Store, environment: str, original: InvoiceRecord, credit_note: InvoiceRecord,
                    replacement: InvoiceRecord | None, now_us: int, invoice_prefix: str,
                    credit_note_prefix: str) -> tuple[InvoiceRecord, InvoiceRecord | None] | None:
    """Write both documents final, numbered, in one transaction. None when the original no longer
    stands for its cut (another process corrected it first): nothing is written then."""
    try:
        with store.engine.begin() as connection:
            lock_environment(connection, store, environment)  # one correction writer at a time
            newer = connection.execute(
                select(invoices.c.id).where(
                    invoices.c.environment == environment, invoices.c.subscription == original.subscription,
                    invoices.c.boundary_ts == original.boundary_ts, invoices.c.mode == original.mode,
                    invoices.c.revision > original.revision)
            ).first()
            if newer is not None:
                return None
            ids = [_insert(connection, environment, credit_note, now_us, credit_note_prefix)]
            if replacement is not None:
                ids.append(_insert(connection, environment, replacement, now_us, invoice_prefix))
            loaded = load_invoices(connection, ids)
    except IntegrityError:
        return None  # the same revision was written meanwhile (uq_invoices_cut)
    return loaded[ids[0]], (loaded[ids[1]] if replacement is not None else None)


def _insert(connection: Any, environment: str, record: InvoiceRecord, now_us: int, prefix: str) -> int:
    values = {name: getattr(record, name) for name in HEADER}
    # final at once, but numbered like every invoice of the environment (DRAFT-<n> finds it too)
    [draft_number] = reserve_draft_numbers(connection, environment, 1)
    values.update(status="final", number=next_number(connection, environment, prefix), finalized_at=now_us,
                  environment=environment, created_at=now_us, updated_at=now_us, draft_number=draft_number)
    invoice_id = connection.execute(insert(invoices).values(**values).returning(invoices.c.id)).scalar_one()
    lines: list[LineRecord] = record.lines
    if lines:
        connection.execute(insert(invoice_lines), line_rows(invoice_id, lines))
    return invoice_id
