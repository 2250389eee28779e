"""Catalog versions: each apply stores the whole validated document as a new version."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Connection

from ..catalog.schema import CatalogDocument
from .db import Store
from .schema import catalog_versions


def canonical_json(document: CatalogDocument) -> str:
    """Stable JSON of a document (decimals as strings), so equal catalogs share one digest."""
    return orjson.dumps(document.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS).decode()


LOCK_BASE = 72_616_300  # advisory lock ids: LOCK_BASE + a small hash of the environment


def lock_environment(connection: Any, store: Store, environment: str) -> None:
    """Serialize catalog (and API configuration) changes of one environment across processes,
    so a change computed from the latest version never loses one saved meanwhile.

    Must be the first statement of its transaction (on SQLite it starts the write transaction)."""
    if store.is_postgres:
        key = LOCK_BASE + int(hashlib.sha256(environment.encode()).hexdigest()[:4], 16) % 97
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": key})
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _latest(connection: Any, environment: str) -> Any:
    """The environment's latest version and its digest (a row), or None; read under its lock."""
    return connection.execute(
        select(catalog_versions.c.version, catalog_versions.c.digest)
        .where(catalog_versions.c.environment == environment)
        .order_by(catalog_versions.c.version.desc())
        .limit(1)
    ).first()


def save_version(store: Store, document: CatalogDocument, now_us: int, environment: str = "live") -> tuple[int, bool]:
    """Store the document as a new version unless it equals the latest; returns (version, created)."""
    text = canonical_json(document)
    digest = hashlib.sha256(text.encode()).hexdigest()
    with store.engine.begin() as connection:
        lock_environment(connection, store, environment)
        latest = _latest(connection, environment)
        if latest is not None and latest.digest == digest:
            return latest.version, False
        return insert_version(connection, environment, now_us, digest, text), True


def save_version_on(store: Store, document: CatalogDocument, base: int, now_us: int,
                    environment: str = "live", then: Callable[[Connection, int], None] | None = None) -> int | None:
    """Store a document computed from version `base` as a new version, if `base` is still the latest;
    None when another version was stored meanwhile (compute again from that one). A document equal
    to `base` keeps its number. The lock is held for a few statements only: the caller validated
    the document before. `then` writes what goes with a new version (its webhook deliveries), given
    its number, in the same transaction."""
    text, digest = version_text(document)
    with store.engine.begin() as connection:
        lock_environment(connection, store, environment)
        stored = insert_version_on(connection, environment, now_us, text, digest, base)
        if then is not None and stored is not None and stored != base:
            then(connection, stored)
        return stored


def version_text(document: CatalogDocument) -> tuple[str, str]:
    """(the canonical JSON a version stores, its digest): computed before taking the lock."""
    text = canonical_json(document)
    return text, hashlib.sha256(text.encode()).hexdigest()


def insert_version_on(connection: Any, environment: str, now_us: int, text: str, digest: str, base: int) -> int | None:
    """save_version_on's step under the lock the caller holds (in the caller's transaction): the
    new version's number, `base` when the text is that version's, None when `base` is not the latest."""
    latest = _latest(connection, environment)
    if latest is None or latest.version != base:
        return None
    if latest.digest == digest:
        return int(base)
    return insert_version(connection, environment, now_us, digest, text)


def insert_version(connection: Any, environment: str, now_us: int, digest: str, document: str) -> int:
    """Store a new version numbered max+1 within its environment; returns that number.

    The caller holds the environment's lock (lock_environment), so two applies never pick the same."""
    latest = connection.execute(
        select(func.max(catalog_versions.c.version)).where(catalog_versions.c.environment == environment)
    ).scalar()
    version = (latest or 0) + 1
    connection.execute(insert(catalog_versions).values(environment=environment, version=version,
                                                       created_at=now_us, digest=digest, document=document))
    return version


def load_version(store: Store, environment: str = "live", version: int | None = None) -> tuple[int, CatalogDocument] | None:
    """The latest (or a given) catalog version, or None when none was applied."""
    loaded = load_version_text(store, environment, version)
    if loaded is None:
        return None
    return loaded[0], CatalogDocument.model_validate(orjson.loads(loaded[1]))


def load_version_text(store: Store, environment: str = "live", version: int | None = None) -> tuple[int, str] | None:
    """The latest (or a given) catalog version as stored (canonical JSON), or None when none was applied."""
    query = select(catalog_versions.c.version, catalog_versions.c.document).where(
        catalog_versions.c.environment == environment
    )
    if version is not None:
        query = query.where(catalog_versions.c.version == version)
    query = query.order_by(catalog_versions.c.version.desc()).limit(1)
    with store.engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    return row.version, row.document


def iter_versions(store: Store, environment: str = "live") -> Iterator[tuple[int, int, dict[str, Any]]]:
    """Every version of the environment, oldest first: (version, created_at µs, the raw document).
    Read a few at a time, so a long history of large catalogs is never held in memory at once."""
    query = (select(catalog_versions.c.version, catalog_versions.c.created_at, catalog_versions.c.document)
             .where(catalog_versions.c.environment == environment)
             .order_by(catalog_versions.c.version))
    with store.engine.connect() as connection:
        for row in connection.execution_options(yield_per=16).execute(query):
            yield row.version, row.created_at, orjson.loads(row.document)
