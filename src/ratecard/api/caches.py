"""Per-process caches every worker keeps: valid API keys, and the current catalog of each
environment with its event validator. Each is checked against the database on use, so what
another worker changes is seen on the next request."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from ..catalog import Catalog
from ..services.catalog import catalog_at
from ..services.events import EventValidator, late_windows
from ..store import Store
from ..store.catalog_state import Fingerprint


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
    """One environment's current catalog, built, and the validator events are checked with.
    `finals` is the final invoices' fingerprint the validator's late windows were read at."""

    version: int
    catalog: Catalog
    validator: EventValidator
    finals: tuple[int, int | None] = (-1, None)


class CatalogCache:
    """The current catalog per environment, rebuilt only when a new version was applied; its
    validator's finalized windows are re-read only when an invoice was finalized (from any
    process: finalizing changes which events are late)."""

    def __init__(self) -> None:
        self._states: dict[str, CatalogState] = {}
        self._seen: dict[str, Fingerprint] = {}
        self._lock = threading.Lock()

    def seen(self, env: str) -> Fingerprint | None:
        """The environment's fingerprint as this process last read it (None: never read)."""
        return self._seen.get(env)

    def saw(self, env: str, stamp: Fingerprint) -> None:
        self._seen[env] = stamp

    def current(self, store: Store, env: str, stamp: Fingerprint, now: datetime) -> CatalogState | None:
        """The state for `stamp` (the environment's fingerprint, read by the caller this request)."""
        if stamp.catalog_version is None:
            return None
        with self._lock:
            state = self._states.get(env)
        if state is None or state.version != stamp.catalog_version:
            catalog = catalog_at(store, stamp.catalog_version, env)
            if catalog is None:
                return None
            state = CatalogState(stamp.catalog_version, catalog, EventValidator(catalog, now))
        if state.finals != stamp.finals:
            state.validator.set_finalized(late_windows(store, env) if stamp.finals[0] else {})
            state.finals = stamp.finals
        with self._lock:
            self._states[env] = state
        return state
