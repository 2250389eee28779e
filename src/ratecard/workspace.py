"""The service layer the CLI and API share: open the store, read the current catalog."""

from __future__ import annotations

from .catalog import Catalog, build_catalog
from .store import Store
from .store.catalogs import load_version


class NoCatalog(LookupError):
    """No catalog was applied yet."""


def current_catalog(store: Store, environment: str = "live") -> tuple[int, Catalog]:
    loaded = load_version(store, environment)
    if loaded is None:
        raise NoCatalog("no catalog has been applied yet; run `ratecard catalog apply FILE` first")
    version, document = loaded
    return version, build_catalog(document)


def optional_catalog(store: Store, environment: str = "live") -> tuple[int, Catalog] | tuple[None, None]:
    try:
        return current_catalog(store, environment)
    except NoCatalog:
        return None, None
