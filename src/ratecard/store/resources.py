"""Solvimon-compatible configuration rows (api_resources), changed under one lock per environment.

Every change runs in a `config_change` transaction that holds the environment's lock (an
advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite), reads the rows and the latest catalog
fresh under it, and bumps the environment's revision when it wrote anything, so concurrent
requests on several workers never lose each other's changes and every worker notices the change
with one primary-key read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update

from ..catalog.schema import CatalogDocument
from .catalogs import canonical_json, insert_version, insert_version_on, lock_environment, version_text
from .db import Store
from .schema import api_resource_revisions, api_resources, catalog_versions


@dataclass(frozen=True)
class Resource:
    id: str
    kind: str
    reference: str
    body: dict[str, Any]
    created_at: int
    updated_at: int


class Resources:
    """The rows of one environment, indexed by id and by (kind, reference)."""

    def __init__(self, rows: list[Resource]) -> None:
        self.by_id: dict[str, Resource] = {}
        self.by_reference: dict[tuple[str, str], Resource] = {}
        for row in rows:
            self._index(row)

    def _index(self, row: Resource) -> None:
        self.by_id[row.id] = row
        self.by_reference[(row.kind, row.reference)] = row

    def _unindex(self, row: Resource) -> None:
        self.by_id.pop(row.id, None)
        if self.by_reference.get((row.kind, row.reference)) is row:
            del self.by_reference[(row.kind, row.reference)]

    def find(self, kind: str, key: str | None) -> Resource | None:
        """By id first, then by reference."""
        if not key:
            return None
        row = self.by_id.get(key)
        if row is not None and row.kind == kind:
            return row
        return self.by_reference.get((kind, key))

    def of_kind(self, kind: str) -> list[Resource]:
        return sorted((row for row in self.by_id.values() if row.kind == kind), key=lambda r: (r.created_at, r.id))


def revision(store: Store, environment: str) -> int:
    with store.engine.connect() as connection:
        found = connection.execute(
            select(api_resource_revisions.c.revision).where(api_resource_revisions.c.environment == environment)
        ).scalar()
    return int(found or 0)


def load_resources(store: Store, environment: str) -> tuple[int, Resources]:
    """(revision, rows) read in one transaction, so the revision describes the rows."""
    with store.engine.begin() as connection:
        current = connection.execute(
            select(api_resource_revisions.c.revision).where(api_resource_revisions.c.environment == environment)
        ).scalar()
        rows = _rows(connection, environment)
    return int(current or 0), Resources(rows)


def _rows(connection: Any, environment: str) -> list[Resource]:
    query = select(api_resources).where(api_resources.c.environment == environment)
    return [
        Resource(row.id, row.kind, row.reference, orjson.loads(row.body), row.created_at, row.updated_at)
        for row in connection.execute(query)
    ]


def stable_id(prefix: str, environment: str, kind: str, reference: str) -> str:
    """The id a resource of this reference gets (and a catalog item without a row shows)."""
    digest = hashlib.sha256(f"{environment}\0{kind}\0{reference}".encode()).hexdigest()
    return f"{prefix}{digest[:20]}"


@dataclass
class ConfigChange:
    """One locked transaction over an environment's configuration and catalog."""

    connection: Any
    environment: str
    now_us: int
    resources: Resources
    changed: bool = False
    catalog_version: int | None = None
    _catalog: tuple[int, str, CatalogDocument] | None = field(default=None, repr=False)
    _catalog_loaded: bool = False

    def put(self, row: Resource) -> Resource:
        """Insert or replace a row (by id); returns it with its timestamps set."""
        existing = self.resources.by_id.get(row.id)
        body = orjson.dumps(row.body).decode()
        if existing is None:
            stale = self.resources.by_reference.get((row.kind, row.reference))
            if stale is not None:  # a row left behind for this reference (its catalog item is gone)
                self.delete(stale.id)
            row = replace(row, created_at=self.now_us, updated_at=self.now_us)
            self.connection.execute(insert(api_resources).values(
                environment=self.environment, id=row.id, kind=row.kind, reference=row.reference, body=body,
                created_at=row.created_at, updated_at=row.updated_at))
        else:
            row = replace(row, created_at=existing.created_at, updated_at=self.now_us)
            self.resources._unindex(existing)
            self.connection.execute(
                update(api_resources)
                .where(api_resources.c.environment == self.environment, api_resources.c.id == row.id)
                .values(kind=row.kind, reference=row.reference, body=body, updated_at=row.updated_at))
        self.resources._index(row)
        self.changed = True
        return row

    def delete(self, resource_id: str) -> None:
        existing = self.resources.by_id.get(resource_id)
        if existing is None:
            return
        self.connection.execute(delete(api_resources).where(
            api_resources.c.environment == self.environment, api_resources.c.id == resource_id))
        self.resources._unindex(existing)
        self.changed = True

    def new_id(self, prefix: str, kind: str, reference: str) -> str:
        candidate = stable_id(prefix, self.environment, kind, reference)
        taken = self.resources.by_id.get(candidate)
        if taken is None or (taken.kind == kind and taken.reference == reference):
            return candidate
        import secrets

        return f"{prefix}{secrets.token_hex(10)}"

    def catalog(self) -> CatalogDocument | None:
        """The latest catalog document, read under the lock (None when none was applied)."""
        if not self._catalog_loaded:
            row = self.connection.execute(
                select(catalog_versions.c.version, catalog_versions.c.digest, catalog_versions.c.document)
                .where(catalog_versions.c.environment == self.environment)
                .order_by(catalog_versions.c.version.desc())
                .limit(1)
            ).first()
            if row is not None:
                self._catalog = (row.version, row.digest, CatalogDocument.model_validate(orjson.loads(row.document)))
                self.catalog_version = row.version
            self._catalog_loaded = True
        return self._catalog[2] if self._catalog is not None else None

    def save_catalog(self, document: CatalogDocument) -> int:
        """Store the (already validated) document as a new catalog version unless it is unchanged."""
        current = self.catalog()
        text_ = canonical_json(document)
        digest = hashlib.sha256(text_.encode()).hexdigest()
        if current is not None and self._catalog is not None and self._catalog[1] == digest:
            return self._catalog[0]
        version = insert_version(self.connection, self.environment, self.now_us, digest, text_)
        self._catalog = (version, digest, document)
        self.catalog_version = version
        return version


    def save_catalog_on(self, document: CatalogDocument, base: int, text: tuple[str, str] | None = None) -> int | None:
        """Store a document computed (and validated) from version `base`, without this lock, as a
        new version in this transaction, if `base` is still the latest; None when another version
        was stored meanwhile (compute it again from that one). `text`: its (canonical JSON, digest)
        from store.catalogs.version_text, computed before the lock was taken."""
        canonical, digest = text if text is not None else version_text(document)
        version = insert_version_on(self.connection, self.environment, self.now_us, canonical, digest, base)
        if version is not None:
            self._catalog, self._catalog_loaded, self.catalog_version = (version, digest, document), True, version
        return version


@contextmanager
def config_change(store: Store, environment: str, now_us: int) -> Iterator[ConfigChange]:
    """A locked transaction: everything written inside commits together, or not at all."""
    with store.engine.begin() as connection:
        lock_environment(connection, store, environment)
        change = ConfigChange(connection, environment, now_us, Resources(_rows(connection, environment)))
        yield change
        if change.changed:
            bumped = connection.execute(
                update(api_resource_revisions)
                .where(api_resource_revisions.c.environment == environment)
                .values(revision=api_resource_revisions.c.revision + 1)
            )
            if bumped.rowcount == 0:
                connection.execute(insert(api_resource_revisions).values(environment=environment, revision=1))


def rows_of_kinds(store: Store, environment: str, kinds: tuple[str, ...]) -> list[Resource]:
    """The environment's rows of these kinds only, oldest first (a narrow read for hot paths, such
    as a customer's entitlement overrides, instead of every row of the environment)."""
    query = select(api_resources).where(api_resources.c.environment == environment, api_resources.c.kind.in_(kinds))
    with store.engine.connect() as connection:
        rows = [Resource(row.id, row.kind, row.reference, orjson.loads(row.body), row.created_at, row.updated_at)
                for row in connection.execute(query)]
    return sorted(rows, key=lambda row: (row.created_at, row.id))
