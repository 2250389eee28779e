"""What a subscription has been invoiced, as the subscription edits that depend on it ask."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from .db import Store
from .invoices import delete_drafts_on
from .schema import invoices


def final_documents(store: Store, environment: str, subscription: str) -> int:
    """How many final documents (invoices, credit notes) name the subscription: once one exists,
    the subscription has billed something a customer was sent."""
    with store.engine.connect() as connection:
        return _finals_on(connection, environment, subscription)


def _finals_on(connection: Any, environment: str, subscription: str) -> int:
    return int(connection.execute(select(func.count()).select_from(invoices).where(
        invoices.c.environment == environment, invoices.c.subscription == subscription,
        invoices.c.status == "final")).scalar_one())


def remove_drafts_counting_finals(connection: Any, environment: str, subscription: str) -> int:
    """In the caller's transaction (a void of the subscription): its drafts are removed, as the
    next invoice run would remove them (never numbered, never sent), so none can be finalized
    after the void; then how many final documents name it, read after that. A finalization that
    committed first is counted here (its draft was no longer a draft to remove); one that comes
    after finds its draft gone and is refused."""
    drafts = list(connection.execute(select(invoices.c.id).where(
        invoices.c.environment == environment, invoices.c.subscription == subscription,
        invoices.c.status == "draft").with_for_update()).scalars())
    delete_drafts_on(connection, environment, drafts)
    return _finals_on(connection, environment, subscription)
