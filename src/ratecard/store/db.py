"""Opening a store: URL resolution, engine set-up (SQLite WAL pragmas), Alembic migrations."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, OperationalError
from sqlalchemy.pool import NullPool, QueuePool

from . import sqlite_decimals

DEFAULT_URL = "sqlite:///ratecard.db"
MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 72_616_263  # advisory lock id: one migrator at a time on PostgreSQL


def head_revision() -> str:
    """The newest migration's revision: by convention its file name starts with it (0007_…),
    which tests/integration/test_migrations.py checks against Alembic's own answer."""
    names = sorted(path.name for path in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return names[-1][:4]


class StoreError(RuntimeError):
    """The database cannot be opened or migrated; the message says which and why."""


def resolve_url(url: str | None) -> str:
    """--db, else RATECARD_DATABASE_URL, else sqlite:///ratecard.db in the working directory."""
    chosen = url or os.environ.get("RATECARD_DATABASE_URL") or DEFAULT_URL
    if chosen.startswith("postgres://"):
        chosen = "postgresql://" + chosen.removeprefix("postgres://")
    if chosen.startswith("postgresql://"):
        chosen = "postgresql+psycopg://" + chosen.removeprefix("postgresql://")
    return chosen


# Every commit is durable before it returns: with WAL, synchronous=FULL syncs the log at each
# commit, so an event (or an invoice, a payment) acknowledged to a client survives a power cut.
# NORMAL syncs only at checkpoints: a commit is safe from a crash of the process but may be lost
# with the machine, for ~0.3 ms less per commit (docs/scaling.md has the figures).
SQLITE_SYNCHRONOUS = "FULL"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # the wait first: switching to (or confirming) WAL takes a lock, and without a busy timeout a
    # connection opened while another process holds it, or recovers a killed one's WAL, fails at once
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    sqlite_decimals.register(dbapi_connection)  # the roll-ups' upsert merges decimal text with them


@dataclass
class Store:
    engine: Engine
    url: str
    # work held in memory for this store (ingestion figures) that must reach it before it closes,
    # by name so that registering twice keeps one
    _before_dispose: dict[str, Callable[[], None]] = field(default_factory=dict, repr=False)
    _reader: tuple[int, Store] | None = field(default=None, repr=False)  # (process id, reader): see `reader`
    _writer: tuple[int, Store] | None = field(default=None, repr=False)  # (process id, writer): see `batch_writer`

    def before_dispose(self, name: str, hook: Callable[[], None]) -> None:
        """Run `hook` when the store is disposed, before its connections close."""
        self._before_dispose[name] = hook

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def migrate(self) -> None:
        # Every command opens the store: when it is already at the head, one SELECT answers,
        # without importing Alembic and parsing every migration (half a second a command).
        if self._stored_revision() == head_revision():
            return
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with self.engine.begin() as connection:
            if self.is_postgres:
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK})
            current = MigrationContext.configure(connection).get_current_revision()
            if current == head:
                return
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def _stored_revision(self) -> str | None:
        try:
            with self.engine.connect() as connection:
                return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:  # a new database: no version table yet
            return None

    def dispose(self) -> None:
        hooks = list(self._before_dispose.values())
        self._before_dispose.clear()
        for hook in hooks:
            hook()
        with _READERS:
            kept = [self._reader, self._writer]
            self._reader = self._writer = None
        for entry in kept:
            if entry is not None and entry[0] == os.getpid():
                entry[1].engine.dispose()
        self.engine.dispose()


_READERS = threading.Lock()
READER_CONNECTIONS = 1  # kept open by a reader; more at once are opened for the moment and closed after use


def reader(store: Store) -> Store:
    """The same database for frequent small reads off the request path (the entitlements refresh):
    its connections stay open between uses, in autocommit (each statement reads the latest
    committed data, with no transaction left open between statements), and are not pinged before
    each use (a connection the server dropped fails that read, and the pool replaces it).

    A SQLite store opens a connection per use (NullPool: nothing is held between commands), which
    costs more than a small query: five PRAGMAs and the decimal functions on each. A PostgreSQL
    store's pool pings each connection it hands out and rolls it back when it comes back, two
    round trips per use. Created on first use, in each process (a fork does not share it), and
    closed with the store; a database held in memory is its own reader (each connection would be
    another database)."""
    if store.engine.url.database in (None, "", ":memory:") and not store.is_postgres:
        return store
    return _companion(store, "_reader", lambda: _held_engine(
        store, READER_CONNECTIONS, isolation_level="AUTOCOMMIT", pool_reset_on_return=None))


WRITER_CONNECTIONS = 2  # kept open by a batch writer (the API's worker threads); more at once are closed after use


def batch_writer(store: Store) -> Store:
    """The same database for a serving process's batch writes of events (POST /v1/events with more
    events than the group committer takes): its connections stay open between requests.

    A SQLite store opens a connection per use (NullPool), and for a batch of 1,000 events opening
    one cost ~8% of the request's CPU: the five PRAGMAs, the decimal functions, and the schema read
    again by the first statement. Held connections keep the schema and the page cache. Each use
    is one transaction, committed or rolled back before the connection goes back (the pool rolls
    back whatever was left). A PostgreSQL store is its own writer: its pool holds connections
    already. Created on first use, in each process (a fork does not share it), closed with the
    store; a database held in memory is its own writer."""
    if store.is_postgres or store.engine.url.database in (None, "", ":memory:"):
        return store
    return _companion(store, "_writer", lambda: _held_engine(store, WRITER_CONNECTIONS))


def _companion(store: Store, slot: str, build: Callable[[], Engine]) -> Store:
    """The store's companion kept in `slot` (`_reader`, `_writer`) for this process: the one made
    before, or a new one on `build()`'s engine (a forked child makes its own); Store.dispose closes it."""
    with _READERS:
        kept = getattr(store, slot)
        if kept is not None and kept[0] == os.getpid():
            return kept[1]
        found = Store(build(), store.url)
        setattr(store, slot, (os.getpid(), found))
        return found


def _held_engine(store: Store, connections: int, **options: Any) -> Engine:
    """An engine on the store's database whose pool keeps `connections` open between uses (more
    at once are opened for the moment and closed after use), SQLite's set up as every store's."""
    if store.is_postgres:
        return create_engine(store.engine.url, pool_size=connections, max_overflow=8, **options)
    engine = create_engine(store.engine.url, poolclass=QueuePool, pool_size=connections, max_overflow=8, **options)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def open_store(url: str | None = None, migrate: bool = True) -> Store:
    resolved = resolve_url(url)
    try:
        if resolved.startswith("sqlite"):
            path = resolved.split("///", 1)[-1]
            if path and path != ":memory:" and not Path(path).parent.exists():
                raise StoreError(f"database {resolved}: folder {Path(path).parent} does not exist")
            engine = create_engine(resolved, poolclass=NullPool)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(resolved, pool_pre_ping=True)
    except ArgumentError:
        raise StoreError(f"database URL {resolved!r} is not valid "
                         "(expected sqlite:///file.db or postgresql+psycopg://user@host/db)") from None
    except ModuleNotFoundError as exc:
        raise StoreError(f"database URL {resolved!r} needs the missing driver {exc.name}") from None
    store = Store(engine, resolved)
    if migrate:
        try:
            store.migrate()
        except DatabaseError as exc:  # unreachable server, not a database file, no permission, ...
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            store.dispose()
            raise StoreError(f"database {resolved} cannot be opened: {reason}") from None
    return store


def is_connection_failure(store: Store, failure: BaseException) -> bool:
    """Whether a write failed on its connection rather than on its rows: the database driver's
    OperationalError (a lost connection, a server restart, SQLite's busy timeout), raised by the
    driver itself or wrapped by SQLAlchemy; not an integrity or data error."""
    driver_error = getattr(store.engine.dialect.loaded_dbapi, "OperationalError", None)
    return isinstance(failure, OperationalError) or (driver_error is not None and isinstance(failure, driver_error))
