"""A cohort's members, and the final invoices ratecard issued while it was live, a page at a time
(the rules about cohorts live in golive/cohorts.py and golive/rollback.py)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, select

from .db import Store
from .schema import customer_modes, invoices


@dataclass(frozen=True)
class Member:
    customer: str
    live_from: int | None  # µs; None: in shadow


@dataclass(frozen=True)
class IssuedInvoice:
    number: str
    customer: str
    issue_date: str
    total: Decimal
    currency: str
    finalized_at: int


def member_page(store: Store, environment: str, cohort: str, limit: int, offset: int) -> list[Member]:
    query = (select(customer_modes.c.customer, customer_modes.c.live_from)
             .where(customer_modes.c.environment == environment, customer_modes.c.cohort == cohort)
             .order_by(customer_modes.c.customer).limit(limit).offset(offset))
    with store.engine.connect() as connection:
        return [Member(*row) for row in connection.execute(query)]


def issued_page(store: Store, environment: str, cohort: str, since: int, until: int | None, limit: int,
                offset: int) -> list[IssuedInvoice]:
    """The cohort's final live invoices (not credit notes) finalized in [since, until]: the ones a
    rollback lists for correction."""
    members = and_(customer_modes.c.environment == invoices.c.environment,
                   customer_modes.c.customer == invoices.c.customer)
    query = (select(invoices.c.number, invoices.c.customer, invoices.c.issue_date, invoices.c.total,
                    invoices.c.currency, invoices.c.finalized_at)
             .join(customer_modes, members)
             .where(invoices.c.environment == environment, customer_modes.c.cohort == cohort,
                    invoices.c.status == "final", invoices.c.mode == "live", invoices.c.kind == "invoice",
                    invoices.c.finalized_at >= since))
    if until is not None:
        query = query.where(invoices.c.finalized_at <= until)
    query = query.order_by(invoices.c.finalized_at, invoices.c.id).limit(limit).offset(offset)
    with store.engine.connect() as connection:
        return [IssuedInvoice(*row) for row in connection.execute(query)]
