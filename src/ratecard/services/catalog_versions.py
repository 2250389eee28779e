"""What an environment's catalog is now and was before: the current version in numbers (meters,
plans, customers, subscriptions) and the history of versions, a page at a time."""

from __future__ import annotations

import threading
from typing import Any

from ..domain.instants import rfc3339
from ..store import Store
from ..store.catalog_history import VersionFigures, figures_of, version_page

COUNTED = ("meters", "plans", "customers", "subscriptions")


def current_summary(store: Store, environment: str) -> dict[str, Any] | None:
    """{"version", "applied_at", "counts": {meters, plans, customers, subscriptions}, "entity"};
    None when nothing was applied. The stored version is counted, never built into a catalog, and
    its figures are kept by digest: a version never changes, so each is counted once a process."""
    latest = version_page(store, environment, 0, 1)
    if not latest:
        return None
    row = latest[0]
    figures = _figures.get(row.digest)
    if figures is None:
        figures = figures_of(store, environment, row.version, COUNTED)
        if figures is None:  # the version was listed a moment ago and versions are never deleted
            return None
        _figures.put(row.digest, figures)
    return {"version": row.version, "applied_at": rfc3339(row.created_at), "counts": figures.counts,
            "entity": {"name": figures.entity_name, "currency": figures.entity_currency}}


class _FiguresByDigest:
    """Figures of catalogs by the digest of their canonical JSON (equal digests, equal catalogs,
    whatever the database or environment), a bounded number of them."""

    LIMIT = 64

    def __init__(self) -> None:
        self._entries: dict[str, VersionFigures] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> VersionFigures | None:
        with self._lock:
            return self._entries.get(digest)

    def put(self, digest: str, figures: VersionFigures) -> None:
        with self._lock:
            if len(self._entries) >= self.LIMIT:
                self._entries.pop(next(iter(self._entries)))
            self._entries[digest] = figures


_figures = _FiguresByDigest()


def history(store: Store, environment: str, offset: int, limit: int) -> list[dict[str, Any]]:
    """Versions newest first: number, when it was applied, and a short digest (equal digests,
    equal catalogs)."""
    return [{"version": row.version, "applied_at": rfc3339(row.created_at), "digest": row.digest[:12]}
            for row in version_page(store, environment, offset, limit)]
