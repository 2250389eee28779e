"""What an environment's catalog is now and was before: the current version in numbers (meters,
plans, customers, subscriptions) and the history of versions, a page at a time."""

from __future__ import annotations

from typing import Any

from ..domain.instants import rfc3339
from ..store import Store
from ..store.catalog_history import latest_figures, version_page

COUNTED = ("meters", "plans", "customers", "subscriptions")


def current_summary(store: Store, environment: str) -> dict[str, Any] | None:
    """{"version", "applied_at", "counts": {meters, plans, customers, subscriptions}, "entity"};
    None when nothing was applied. The stored version is counted, never built into a catalog:
    a page showing it stays fast with 10,000 customers."""
    figures = latest_figures(store, environment, COUNTED)
    if figures is None:
        return None
    return {"version": figures.version, "applied_at": rfc3339(figures.created_at), "counts": figures.counts,
            "entity": {"name": figures.entity_name, "currency": figures.entity_currency}}


def history(store: Store, environment: str, offset: int, limit: int) -> list[dict[str, Any]]:
    """Versions newest first: number, when it was applied, and a short digest (equal digests,
    equal catalogs)."""
    return [{"version": row.version, "applied_at": rfc3339(row.created_at), "digest": row.digest[:12]}
            for row in version_page(store, environment, offset, limit)]
