"""The overview's figures: money invoiced per currency in a time window and the drafts waiting.

Counts and sums run in SQL over the invoices' status index; nothing is listed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, select

from .db import Store
from .schema import invoices


def invoiced_by_currency(store: Store, environment: str, start_us: int, end_us: int) -> dict[str, Decimal]:
    """Currency -> the sum of the live final documents (invoices, and credit notes, which are
    negative) finalized in [start, end)."""
    c = invoices.c
    conditions = (c.environment == environment, c.status == "final", c.mode == "live",
                  c.finalized_at >= start_us, c.finalized_at < end_us)
    with store.engine.connect() as connection:
        if store.is_postgres:  # NUMERIC: the database sums exactly
            query = select(c.currency, func.sum(c.total)).where(*conditions).group_by(c.currency)
            return {currency: Decimal(total) for currency, total in connection.execute(query)}
        # SQLite keeps amounts as text, and its SUM would turn them into floats: add them here,
        # streamed (two short columns a row)
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for currency, total in connection.execute(select(c.currency, c.total).where(*conditions)):
            totals[currency] += total
        return dict(totals)


@dataclass(frozen=True)
class DraftCounts:
    due: int  # live drafts whose period has ended, not on hold
    on_hold: int  # live drafts on hold (never finalized until released)


def draft_counts(store: Store, environment: str, now_us: int) -> DraftCounts:
    c = invoices.c
    query = select(
        func.coalesce(func.sum(case((c.on_hold.is_(False) & (c.boundary_ts <= now_us), 1), else_=0)), 0),
        func.coalesce(func.sum(case((c.on_hold.is_(True), 1), else_=0)), 0),
    ).where(c.environment == environment, c.status == "draft", c.mode == "live")
    with store.engine.connect() as connection:
        due, on_hold = connection.execute(query).one()
    return DraftCounts(int(due), int(on_hold))
