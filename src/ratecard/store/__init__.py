"""Storage: one SQLAlchemy Core schema for SQLite and PostgreSQL, migrated with Alembic."""

from .db import Store, open_store, reader, resolve_url

__all__ = ["Store", "open_store", "reader", "resolve_url"]
