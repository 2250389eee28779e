"""Payment rows (the outbox of Stripe charges and refunds) and the invoice email log. Plain reads
and conditional writes; the decisions live in ratecard.payments."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .db import Store
from .schema import invoice_deliveries, invoices, payments

OPEN = ("pending", "failed")  # statuses `payments run` may still charge


@dataclass
class PaymentRecord:
    id: int
    environment: str
    invoice_id: int
    kind: str
    customer: str
    method: str
    stripe_customer_id: str | None
    refunds: int | None
    currency: str
    amount_minor: int
    status: str
    attempt: int
    idempotency_key: str | None
    attempt_started_at: int | None
    intent_id: str | None
    payment_method: str | None
    action_url: str | None
    failure: str | None
    first_failed_at: int | None
    failures: int
    next_attempt_at: int | None
    reference: str | None
    created_at: int
    updated_at: int
    invoice_number: str | None = None

    @property
    def in_flight(self) -> bool:
        """An attempt was sent (or was about to be) and its outcome is not written yet."""
        return self.attempt_started_at is not None


_COLUMNS = [column for column in payments.c]


def _select() -> Any:
    return select(*_COLUMNS, invoices.c.number).select_from(
        payments.outerjoin(invoices, invoices.c.id == payments.c.invoice_id))


def _record(row: Any) -> PaymentRecord:
    data = dict(row._mapping)
    number = data.pop("number")
    return PaymentRecord(**data, invoice_number=number)


def add_payments(store: Store, rows: Sequence[dict[str, Any]]) -> int:
    """Insert payment rows; a row for an invoice (and kind) that has one already is skipped, so
    finalization and the sweep of `payments run` may both enqueue the same invoice. Returns how
    many were added."""
    if not rows:
        return 0
    dialect = postgresql if store.is_postgres else sqlite
    statement = dialect.insert(payments).values(list(rows)).on_conflict_do_nothing().returning(payments.c.id)
    with store.engine.begin() as connection:
        return len(connection.execute(statement).all())


def final_invoices_without_charge(store: Store, environment: str, since_us: int) -> list[dict[str, Any]]:
    """Final live invoices finalized since `since_us` that have no charge row yet."""
    charged = select(payments.c.id).where(payments.c.environment == invoices.c.environment,
                                          payments.c.invoice_id == invoices.c.id,
                                          payments.c.kind == "charge").exists()
    query = (select(invoices.c.id, invoices.c.customer, invoices.c.currency, invoices.c.total)
             .where(invoices.c.environment == environment, invoices.c.status == "final",
                    invoices.c.kind == "invoice", invoices.c.mode == "live", invoices.c.finalized_at >= since_us,
                    ~charged)
             .order_by(invoices.c.id))
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def credit_notes_without_refund(store: Store, environment: str) -> list[dict[str, Any]]:
    """Final credit notes whose corrected invoice was paid through Stripe and that have no refund
    row yet, with the charge they pay back."""
    charge = payments.alias("charge")
    refunded = select(payments.c.id).where(payments.c.environment == invoices.c.environment,
                                           payments.c.invoice_id == invoices.c.id,
                                           payments.c.kind == "refund").exists()
    query = (select(invoices.c.id, invoices.c.customer, invoices.c.currency, invoices.c.total,
                    charge.c.id.label("charge_id"))
             .select_from(invoices.join(charge, and_(charge.c.environment == invoices.c.environment,
                                                     charge.c.invoice_id == invoices.c.corrects,
                                                     charge.c.kind == "charge")))
             .where(invoices.c.environment == environment, invoices.c.status == "final",
                    invoices.c.kind == "credit_note", charge.c.method == "stripe", charge.c.status == "succeeded",
                    charge.c.intent_id.is_not(None), ~refunded)
             .order_by(invoices.c.id))
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def credited_open_charges(store: Store, environment: str) -> list[tuple[int, str | None]]:
    """(payment id, credit note number) of charges not collected yet, with no attempt in flight,
    whose invoice a final credit note has credited: the invoice is no longer owed."""
    note = invoices.alias("note")
    query = (select(payments.c.id, note.c.number)
             .select_from(payments.join(note, and_(note.c.environment == payments.c.environment,
                                                   note.c.corrects == payments.c.invoice_id)))
             .where(payments.c.environment == environment, payments.c.kind == "charge",
                    payments.c.status.in_(("pending", "failed", "requires_action", "uncollectible")),
                    payments.c.attempt_started_at.is_(None), note.c.kind == "credit_note", note.c.status == "final")
             .order_by(payments.c.id))
    with store.engine.connect() as connection:
        return [(payment_id, number) for payment_id, number in connection.execute(query)]


def refunded_minor(store: Store, environment: str, charge_id: int) -> int:
    """What refunds of a charge already pay back (or are about to), in minor units."""
    query = select(payments.c.amount_minor).where(payments.c.environment == environment,
                                                  payments.c.refunds == charge_id, payments.c.kind == "refund",
                                                  payments.c.status.in_(("pending", "succeeded")))
    with store.engine.connect() as connection:
        return sum(connection.execute(query).scalars())


def due_payments(store: Store, environment: str, now_us: int) -> list[PaymentRecord]:
    """Stripe payments to call Stripe for now: open and due, or with an attempt whose outcome was
    never written (a run that stopped between the call and the write)."""
    query = _select().where(
        payments.c.environment == environment, payments.c.method == "stripe",
        or_(payments.c.attempt_started_at.is_not(None),
            and_(payments.c.status.in_(OPEN), payments.c.next_attempt_at <= now_us)),
    ).order_by(payments.c.id)
    with store.engine.connect() as connection:
        return [_record(row) for row in connection.execute(query)]


def get_payment(store: Store, environment: str, payment_id: int) -> PaymentRecord | None:
    with store.engine.connect() as connection:
        row = connection.execute(_select().where(payments.c.environment == environment,
                                                 payments.c.id == payment_id)).first()
    return _record(row) if row is not None else None


def payment_of_invoice(store: Store, environment: str, invoice_id: int, kind: str = "charge") -> PaymentRecord | None:
    with store.engine.connect() as connection:
        row = connection.execute(_select().where(payments.c.environment == environment,
                                                 payments.c.invoice_id == invoice_id, payments.c.kind == kind)).first()
    return _record(row) if row is not None else None


def payment_by_intent(store: Store, environment: str, intent_id: str) -> PaymentRecord | None:
    with store.engine.connect() as connection:
        row = connection.execute(_select().where(payments.c.environment == environment,
                                                 payments.c.intent_id == intent_id)).first()
    return _record(row) if row is not None else None


def list_payments(store: Store, environment: str, status: str | None = None, kind: str | None = None,
                  limit: int | None = None, offset: int = 0) -> list[PaymentRecord]:
    query = _select().where(payments.c.environment == environment)
    if status is not None:
        query = query.where(payments.c.status == status)
    if kind is not None:
        query = query.where(payments.c.kind == kind)
    query = query.order_by(payments.c.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as connection:
        return [_record(row) for row in connection.execute(query)]


def charge_statuses(store: Store, environment: str, invoice_ids: Iterable[int]) -> dict[int, str]:
    """invoice id -> the status of its charge (invoices with none are left out)."""
    ids = list(invoice_ids)
    found: dict[int, str] = {}
    with store.engine.connect() as connection:
        for start in range(0, len(ids), 900):
            query = select(payments.c.invoice_id, payments.c.status).where(
                payments.c.environment == environment, payments.c.kind == "charge",
                payments.c.invoice_id.in_(ids[start:start + 900]))
            found.update({invoice_id: status for invoice_id, status in connection.execute(query)})
    return found


def update_payment(store: Store, environment: str, payment_id: int, values: dict[str, Any], *,
                   attempt: int | None = None, statuses: Sequence[str] | None = None,
                   in_flight: bool | None = None, then: Callable[[Connection], None] | None = None) -> bool:
    """Write `values` only while the row is as the caller read it (the same attempt, one of
    `statuses`, an attempt in flight or not): False when another process changed it first.
    `then` writes what goes with the change (its webhook deliveries) in the same transaction,
    only when the row was written."""
    condition = [payments.c.environment == environment, payments.c.id == payment_id]
    if attempt is not None:
        condition.append(payments.c.attempt == attempt)
    if statuses is not None:
        condition.append(payments.c.status.in_(list(statuses)))
    if in_flight is not None:
        condition.append(payments.c.attempt_started_at.is_not(None) if in_flight
                         else payments.c.attempt_started_at.is_(None))
    with store.engine.begin() as connection:
        written = connection.execute(update(payments).where(*condition).values(**values)).rowcount == 1
        if written and then is not None:
            then(connection)
        return written


# ---------------------------------------------------------------- invoice emails


@dataclass
class DeliveryRecord:
    id: int
    environment: str
    invoice_id: int
    recipient: str | None
    status: str
    detail: str | None
    created_at: int
    sent_at: int | None
    invoice_number: str | None = None


def _delivery_select() -> Any:
    return select(*invoice_deliveries.c, invoices.c.number).select_from(
        invoice_deliveries.outerjoin(invoices, invoices.c.id == invoice_deliveries.c.invoice_id))


def _delivery(row: Any) -> DeliveryRecord:
    data = dict(row._mapping)
    number = data.pop("number")
    return DeliveryRecord(**data, invoice_number=number)


def add_delivery(store: Store, environment: str, invoice_id: int, recipient: str | None, status: str,
                 detail: str | None, now_us: int) -> int:
    with store.engine.begin() as connection:
        return connection.execute(insert(invoice_deliveries).values(
            environment=environment, invoice_id=invoice_id, recipient=recipient, status=status, detail=detail,
            created_at=now_us, sent_at=now_us if status == "sent" else None)).inserted_primary_key[0]


def finish_delivery(store: Store, environment: str, delivery_id: int, recipient: str | None, status: str,
                    detail: str | None, now_us: int) -> bool:
    """A queued delivery's outcome; False when another process took it first."""
    with store.engine.begin() as connection:
        return connection.execute(update(invoice_deliveries).where(
            invoice_deliveries.c.environment == environment, invoice_deliveries.c.id == delivery_id,
            invoice_deliveries.c.status == "queued",
        ).values(recipient=recipient, status=status, detail=detail,
                 sent_at=now_us if status == "sent" else None)).rowcount == 1


def list_deliveries(store: Store, environment: str, invoice_id: int | None = None,
                    status: str | None = None) -> list[DeliveryRecord]:
    query = _delivery_select().where(invoice_deliveries.c.environment == environment)
    if invoice_id is not None:
        query = query.where(invoice_deliveries.c.invoice_id == invoice_id)
    if status is not None:
        query = query.where(invoice_deliveries.c.status == status)
    with store.engine.connect() as connection:
        return [_delivery(row) for row in connection.execute(query.order_by(invoice_deliveries.c.id))]
