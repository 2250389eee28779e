"""Catalog versions as people browse them: a page of the history, and one version in figures (how
many meters, plans, customers, subscriptions), counted by the database in the stored JSON: a
catalog of 10,000 customers is neither sent over the wire nor parsed in Python for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import cast, func, select
from sqlalchemy.dialects.postgresql import JSONB

from .db import Store
from .schema import catalog_versions


@dataclass(frozen=True)
class VersionRow:
    version: int
    created_at: int
    digest: str


@dataclass(frozen=True)
class VersionFigures:
    counts: dict[str, int]  # list name (meters, plans, …) -> its length
    entity_name: str | None
    entity_currency: str | None


def version_page(store: Store, environment: str, offset: int, limit: int) -> list[VersionRow]:
    """Newest first, `limit` versions from `offset` (the document itself is not read)."""
    query = (select(catalog_versions.c.version, catalog_versions.c.created_at, catalog_versions.c.digest)
             .where(catalog_versions.c.environment == environment)
             .order_by(catalog_versions.c.version.desc()).offset(offset).limit(limit))
    with store.engine.connect() as connection:
        return [VersionRow(row.version, row.created_at, row.digest) for row in connection.execute(query)]


def figures_of(store: Store, environment: str, version: int, lists: tuple[str, ...]) -> VersionFigures | None:
    """The length of each list in `lists` of one stored version, and its billing entity's name and
    currency; None when there is no such version."""
    document: Any = (cast(catalog_versions.c.document, JSONB) if store.is_postgres
                     else catalog_versions.c.document)
    # LIMIT keeps PostgreSQL from folding the subquery into the outer one: the JSON is parsed once
    stored = (select(document.label("document"))
              .where(catalog_versions.c.environment == environment, catalog_versions.c.version == version)
              .limit(1).subquery())
    if store.is_postgres:
        lengths = [func.coalesce(func.jsonb_array_length(stored.c.document[name]), 0) for name in lists]
        entity = [stored.c.document["billing_entity"][key].astext for key in ("name", "currency")]
    else:
        lengths = [func.coalesce(func.json_array_length(stored.c.document, f"$.{name}"), 0) for name in lists]
        entity = [func.json_extract(stored.c.document, f"$.billing_entity.{key}") for key in ("name", "currency")]
    with store.engine.connect() as connection:
        row = connection.execute(select(*lengths, *entity)).first()
    if row is None:
        return None
    return VersionFigures({name: int(row[index]) for index, name in enumerate(lists)}, row[len(lists)],
                          row[len(lists) + 1])


def latest_version(store: Store, environment: str) -> int | None:
    query = (select(catalog_versions.c.version).where(catalog_versions.c.environment == environment)
             .order_by(catalog_versions.c.version.desc()).limit(1))
    with store.engine.connect() as connection:
        return connection.execute(query).scalar()
