"""What every request needs: the store, the caller's environment, and the current catalog."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import func, select

from ..catalog import Catalog, build_catalog
from ..clock import now as clock_now
from ..ingest.validate import EventValidator
from ..store import Store
from ..store.catalogs import load_version
from ..store.invoices import finalized_windows
from ..store.keys import authenticate
from ..store.schema import catalog_versions, invoices
from .errors import ApiError


def get_store(request: Request) -> Store:
    return request.app.state.store


def api_key(headers: Mapping[str, str]) -> str | None:
    """The key from X-API-KEY, else from Authorization: Bearer (header names in lower case)."""
    key = headers.get("x-api-key")
    if key:
        return key
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def key_environment(state: Any, key: str) -> str | None:
    """The environment of a valid, unrevoked key (through the few-seconds cache), else None.
    Shared by the route dependency and the Idempotency-Key middleware."""
    cache: KeyCache = state.keys
    found = cache.get(key)
    if found is None:
        found = authenticate(state.store, key)
        if found is not None:
            cache.put(key, found)
    return found


def environment(request: Request) -> str:
    """The environment of the caller's key; 401 for a missing, wrong or revoked key."""
    key = api_key(request.headers)
    if not key:
        raise ApiError(401, "UNAUTHORISED", "missing API key: send it in X-API-KEY or Authorization: Bearer")
    found = key_environment(request.app.state, key)
    if found is None:
        raise ApiError(401, "UNAUTHORISED", "the API key is not valid or was revoked")
    return found


class KeyCache:
    """Valid keys for a few seconds, so a burst of requests does not hash and query per call.

    Short-lived on purpose: a revoked key stops working within TTL seconds on every worker.
    """

    TTL = 5.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[1] < time.monotonic():
                return None
            return entry[0]

    def put(self, key: str, env: str) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (env, time.monotonic() + self.TTL)


@dataclass
class CatalogState:
    version: int
    catalog: Catalog
    validator: EventValidator
    finalized_marker: tuple[int, int | None] = (0, None)


class CatalogCache:
    """The current catalog per environment, rebuilt only when a new version was applied."""

    def __init__(self) -> None:
        self._states: dict[str, CatalogState] = {}
        self._lock = threading.Lock()

    def current(self, store: Store, env: str) -> CatalogState | None:
        final = (invoices.c.environment == env) & (invoices.c.status == "final")
        # one round trip per request: the catalog version, and the final invoices' count and
        # latest finalization (finalizing, from any process, changes which events are late)
        query = select(
            select(func.max(catalog_versions.c.version)).where(catalog_versions.c.environment == env)
            .scalar_subquery(),
            select(func.count()).select_from(invoices).where(final).scalar_subquery(),
            select(func.max(invoices.c.finalized_at)).where(final).scalar_subquery(),
        )
        with store.engine.connect() as connection:
            latest, *marker_values = connection.execute(query).one()
        marker = tuple(marker_values)
        if latest is None:
            return None
        with self._lock:
            state = self._states.get(env)
        if state is None or state.version != latest:
            loaded = load_version(store, env, latest)
            if loaded is None:
                return None
            catalog = build_catalog(loaded[1])
            state = CatalogState(latest, catalog, EventValidator(catalog, now()), (-1, None))
        if state.finalized_marker != marker:
            state.validator.set_finalized(finalized_windows(store, env))
            state.finalized_marker = marker  # type: ignore[assignment]
        with self._lock:
            self._states[env] = state
        return state


def now() -> datetime:
    return clock_now()
