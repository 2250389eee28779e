"""The current catalog of an environment as a long-running server keeps it: built once per
version by the process's catalog cache (the API's CatalogCache, shared with the console), checked
against the database's fingerprint on every use."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ..catalog import Catalog
from ..store import Store
from ..store.catalog_state import Fingerprint, fingerprint
from .catalog import NO_CATALOG, current_catalog
from .errors import NoCatalog


class CatalogCacheLike(Protocol):
    def current(self, store: Store, env: str, stamp: Fingerprint, now: datetime) -> Any: ...


def cached_catalog(store: Store, environment: str, catalogs: CatalogCacheLike,
                   now: datetime) -> tuple[int, Catalog] | tuple[None, None]:
    """(version, catalog) of the environment's current catalog, or (None, None) before the first apply."""
    state = catalogs.current(store, environment, fingerprint(store, environment), now)
    if state is None:
        return None, None
    return state.version, state.catalog


def catalog_in_use(store: Store, environment: str, now: datetime, catalogs: CatalogCacheLike | None = None) -> Catalog:
    """The environment's current catalog: the server's cached build when a cache is given (the
    console), else read and built (the CLI); NoCatalog before the first apply either way."""
    if catalogs is None:
        return current_catalog(store, environment)[1]
    _, catalog = cached_catalog(store, environment, catalogs, now)
    if catalog is None:
        raise NoCatalog(NO_CATALOG)
    return catalog
