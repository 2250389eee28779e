"""Is the database there? For /healthz and readiness probes."""

from __future__ import annotations

from sqlalchemy import text

from .db import Store


def ping(store: Store) -> None:
    """One trivial query; raises whatever the driver raises when the database is unreachable."""
    with store.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
