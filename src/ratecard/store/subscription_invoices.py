"""What a subscription has been invoiced, as the subscription edits that depend on it ask."""

from __future__ import annotations

from sqlalchemy import func, select

from .db import Store
from .schema import invoices


def final_documents(store: Store, environment: str, subscription: str) -> int:
    """How many final documents (invoices, credit notes) name the subscription: once one exists,
    the subscription has billed something a customer was sent."""
    query = select(func.count()).select_from(invoices).where(
        invoices.c.environment == environment, invoices.c.subscription == subscription,
        invoices.c.status == "final")
    with store.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())
