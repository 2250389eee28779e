"""The Solvimon view a request reads: per-process caches of each environment's resource rows
and of the View over them and the current catalog (the model is services.resources.model)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ...catalog import Catalog
from ...catalog.schema import CatalogDocument
from ...services.resources.model import View
from ...store import Store
from ...store.resources import Resources, load_resources
from ..caches import CatalogState
from ..context import Caller


class SolvimonCache:
    """Per process: each environment's rows (reloaded when their revision moved) and the View
    over them and the current catalog, so its lookup indexes are built once per change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resources: dict[str, tuple[int, Resources]] = {}
        self._views: dict[str, tuple[tuple[int, int], View]] = {}

    def view(self, environment: str, resources: Resources, catalog_version: int, document: CatalogDocument) -> View:
        """One View per (rows, catalog version)."""
        key = (id(resources), catalog_version)
        with self._lock:
            cached = self._views.get(environment)
            if cached is not None and cached[0] == key and cached[1].resources is resources:
                return cached[1]
        view = View(environment, resources, document)
        with self._lock:
            self._views[environment] = (key, view)
        return view

    def cached_resources(self, environment: str, current: int) -> Resources | None:
        """The rows at revision `current` when they are loaded already (no database work)."""
        with self._lock:
            cached = self._resources.get(environment)
        return cached[1] if cached is not None and cached[0] == current else None

    def resources(self, store: Store, environment: str, current: int) -> Resources:
        """The rows at revision `current` (from the request's fingerprint)."""
        with self._lock:
            cached = self._resources.get(environment)
            if cached is not None and cached[0] == current:
                return cached[1]
        loaded_revision, rows = load_resources(store, environment)
        with self._lock:
            self._resources[environment] = (loaded_revision, rows)
        return rows


@dataclass
class Snapshot:
    """What a read sees: the view, and the current catalog (None when none was applied)."""

    view: View
    catalog_state: CatalogState | None

    @property
    def catalog(self) -> Catalog | None:
        return self.catalog_state.catalog if self.catalog_state is not None else None


def cached_snapshot(caller: Caller) -> Snapshot | None:
    """The view for a read when everything it needs is in memory (the request's fingerprint
    known, rows and catalog loaded), else None: the caller then takes `snapshot` on a thread."""
    if "fingerprint" not in caller.__dict__:
        return None
    stamp = caller.fingerprint
    rows = caller.solvimon.cached_resources(caller.environment, stamp.resources_revision)
    catalog_state = caller.catalogs.cached(caller.environment, stamp) if stamp.catalog_version is not None else None
    if rows is None or (stamp.catalog_version is not None and catalog_state is None):
        return None
    if catalog_state is None:
        return Snapshot(View(caller.environment, rows, None), None)
    view = caller.solvimon.view(caller.environment, rows, catalog_state.version, catalog_state.catalog.document)
    return Snapshot(view, catalog_state)


def snapshot(caller: Caller) -> Snapshot:
    """The current view for a read (cached rows, cached catalog), checked with the request's
    one fingerprint query."""
    rows = caller.solvimon.resources(caller.store, caller.environment, caller.fingerprint.resources_revision)
    catalog_state = caller.catalog()
    if catalog_state is None:
        return Snapshot(View(caller.environment, rows, None), None)
    view = caller.solvimon.view(caller.environment, rows, catalog_state.version, catalog_state.catalog.document)
    return Snapshot(view, catalog_state)
