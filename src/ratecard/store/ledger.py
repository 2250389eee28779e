"""What final documents billed, read for the invoice run's corrections: the lines of every live
final document of a subscription, the cuts that are final, and where late events fell."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, select

from .catalogs import lock_environment
from .db import Store
from .invoices import HEADER, InvoiceRecord, LineRecord, line_rows, load_invoices, next_number
from .schema import events, invoice_lines, invoices


@dataclass(frozen=True)
class FinalCut:
    """The final live invoice that stands for a cut (its latest revision)."""

    invoice_id: int
    catalog_version: int


def final_cuts(store: Store, environment: str) -> dict[tuple[str, int], FinalCut]:
    """(subscription, boundary µs) -> the final live invoice standing for that cut."""
    query = (
        select(invoices.c.subscription, invoices.c.boundary_ts, invoices.c.id, invoices.c.status,
               invoices.c.catalog_version)
        .where(invoices.c.environment == environment, invoices.c.kind == "invoice", invoices.c.mode == "live",
               invoices.c.corrects.is_(None) | (invoices.c.revision > 0))
        .order_by(invoices.c.revision)
    )
    latest: dict[tuple[str, int], tuple[int, str, int]] = {}
    with store.engine.connect() as connection:
        for subscription, boundary, invoice_id, status, version in connection.execute(query):
            latest[(subscription, boundary)] = (invoice_id, status, version)
    return {key: FinalCut(invoice_id, version) for key, (invoice_id, status, version) in latest.items()
            if status == "final"}


def invoices_by_id(store: Store, ids: Sequence[int]) -> dict[int, InvoiceRecord]:
    if not ids:
        return {}
    with store.engine.connect() as connection:
        return load_invoices(connection, ids)


def billed_lines(store: Store, environment: str, subscriptions: Iterable[str]
                 ) -> dict[str, list[tuple[str | None, LineRecord]]]:
    """Every line of every live final document (invoices, replacements, credit notes, standalone
    corrections) of the subscriptions, with the document's number: what they were billed, net."""
    wanted = sorted(set(subscriptions))
    found: dict[str, list[tuple[str | None, LineRecord]]] = defaultdict(list)
    fields = list(LineRecord.__dataclass_fields__)
    with store.engine.connect() as connection:
        for start in range(0, len(wanted), 500):
            query = (
                select(invoices.c.subscription, invoices.c.number, *[invoice_lines.c[name] for name in fields])
                .select_from(invoices.join(invoice_lines, invoice_lines.c.invoice_id == invoices.c.id))
                .where(invoices.c.environment == environment, invoices.c.mode == "live",
                       invoices.c.status == "final", invoices.c.subscription.in_(wanted[start:start + 500]))
                .order_by(invoices.c.boundary_ts, invoices.c.id, invoice_lines.c.position)
            )
            for row in connection.execute(query):
                found[row[0]].append((row[1], LineRecord(*row[2:])))
    return found


def late_instants(store: Store, environment: str) -> dict[str, list[int]]:
    """customer -> the instants (µs) of its matched events that arrived after their period's
    invoice was final."""
    query = (
        select(events.c.customer, events.c.ts).distinct()
        .where(and_(events.c.environment == environment, events.c.late.is_(True), events.c.status == "matched",
                    events.c.deleted_at.is_(None)))
    )
    found: dict[str, list[int]] = defaultdict(list)
    with store.engine.connect() as connection:
        for customer, ts in connection.execute(query):
            found[customer].append(ts)
    return found


def save_standalone(store: Store, environment: str, record: InvoiceRecord, now_us: int, prefix: str) -> InvoiceRecord:
    """A correction document no invoice of the subscription can carry: written final and numbered
    at once (a credit note from the credit-note sequence)."""
    with store.engine.begin() as connection:
        lock_environment(connection, store, environment)
        # several corrections of one subscription may be issued at one instant (a pinned clock, a
        # credit note and an invoice): each takes the next revision free at that instant
        taken = connection.execute(
            select(func.max(invoices.c.revision)).where(
                invoices.c.environment == environment, invoices.c.subscription == record.subscription,
                invoices.c.boundary_ts == record.boundary_ts, invoices.c.mode == record.mode,
                invoices.c.kind == record.kind)).scalar()
        record.revision = 0 if taken is None else taken + 1
        values = {name: getattr(record, name) for name in HEADER}
        values.update(status="final", number=next_number(connection, environment, prefix), finalized_at=now_us,
                      environment=environment, created_at=now_us, updated_at=now_us)
        invoice_id = connection.execute(insert(invoices).values(**values).returning(invoices.c.id)).scalar_one()
        if record.lines:
            connection.execute(insert(invoice_lines), line_rows(invoice_id, record.lines))
        return load_invoices(connection, [invoice_id])[invoice_id]
