"""Catalog versions as people browse them: a page of the history, and the latest version's stored
JSON as text (counted by the caller without building the whole catalog)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from .db import Store
from .schema import catalog_versions


@dataclass(frozen=True)
class VersionRow:
    version: int
    created_at: int
    digest: str


@dataclass(frozen=True)
class StoredDocument:
    version: int
    created_at: int
    document: str  # the canonical JSON save_version stored


def version_page(store: Store, environment: str, offset: int, limit: int) -> list[VersionRow]:
    """Newest first, `limit` versions from `offset` (the document itself is not read)."""
    query = (select(catalog_versions.c.version, catalog_versions.c.created_at, catalog_versions.c.digest)
             .where(catalog_versions.c.environment == environment)
             .order_by(catalog_versions.c.version.desc()).offset(offset).limit(limit))
    with store.engine.connect() as connection:
        return [VersionRow(row.version, row.created_at, row.digest) for row in connection.execute(query)]


def latest_document(store: Store, environment: str) -> StoredDocument | None:
    query = (select(catalog_versions.c.version, catalog_versions.c.created_at, catalog_versions.c.document)
             .where(catalog_versions.c.environment == environment)
             .order_by(catalog_versions.c.version.desc()).limit(1))
    with store.engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else StoredDocument(row.version, row.created_at, row.document)


def latest_version(store: Store, environment: str) -> int | None:
    query = (select(catalog_versions.c.version).where(catalog_versions.c.environment == environment)
             .order_by(catalog_versions.c.version.desc()).limit(1))
    with store.engine.connect() as connection:
        return connection.execute(query).scalar()
