"""Throw-away databases for one benchmark run: a SQLite file, a dedicated PostgreSQL database.

PostgreSQL: the database `ratecard_bench` (override with RATECARD_BENCH_DATABASE) is created
on the server named by RATECARD_BENCH_POSTGRES_URL (default: the test server) and dropped at
the end. No other database or schema is touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get("RATECARD_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BENCH_DATABASE = os.environ.get("RATECARD_BENCH_DATABASE", "ratecard_bench")


def postgres_unavailable() -> str | None:
    """None when the server answers, else the reason in one line."""
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return str(exc).strip().splitlines()[0]


@contextmanager
def sqlite_database(folder: Path) -> Iterator[str]:
    path = folder / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def postgres_database(name: str = BENCH_DATABASE) -> Iterator[str]:
    """`name`: the database (default RATECARD_BENCH_DATABASE), created fresh and dropped at the end."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"RATECARD_BENCH_DATABASE {name!r} must be a plain identifier")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fresh_database(store: str, folder: Path, database: str = "ratecard_bench_floor") -> AbstractContextManager[str]:
    """An empty database of `store` ("sqlite" or "postgresql") as a context giving its URL and
    dropping it at the end: SQLite in `folder`, PostgreSQL named by RATECARD_BENCH_DATABASE (else
    `database`)."""
    if store == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        return sqlite_database(folder)
    return postgres_database(os.environ.get("RATECARD_BENCH_DATABASE", database))
