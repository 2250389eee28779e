"""What an environment's catalog is now and was before: the current version in numbers (meters,
plans, customers, subscriptions) and the history of versions, a page at a time."""

from __future__ import annotations

from typing import Any

import orjson

from ..domain.instants import rfc3339
from ..store import Store
from ..store.catalog_history import latest_document, version_page

COUNTED = ("meters", "plans", "customers", "subscriptions")


def current_summary(store: Store, environment: str) -> dict[str, Any] | None:
    """{"version", "applied_at", "counts": {meters, plans, customers, subscriptions}, "entity"};
    None when nothing was applied. The stored JSON is only counted, never built into a catalog:
    a catalog of 10,000 customers is read in milliseconds."""
    stored = latest_document(store, environment)
    if stored is None:
        return None
    document = orjson.loads(stored.document)
    entity = document.get("billing_entity") or {}
    return {"version": stored.version, "applied_at": rfc3339(stored.created_at),
            "counts": {name: len(document.get(name) or ()) for name in COUNTED},
            "entity": {"name": entity.get("name"), "currency": entity.get("currency")}}


def history(store: Store, environment: str, offset: int, limit: int) -> list[dict[str, Any]]:
    """Versions newest first: number, when it was applied, and a short digest (equal digests,
    equal catalogs)."""
    return [{"version": row.version, "applied_at": rfc3339(row.created_at), "digest": row.digest[:12]}
            for row in version_page(store, environment, offset, limit)]
