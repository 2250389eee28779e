"""Event rows: idempotent bulk insert, lookups, and status updates for reprocessing.

The hot path goes to the driver directly (executemany INSERT OR IGNORE on SQLite; COPY on
PostgreSQL, through a staging table and INSERT … ON CONFLICT DO NOTHING when a batch holds
an id already stored): the database write, not Python, must
set the speed. The insert and the dedup are one statement in one transaction.

On PostgreSQL events is partitioned by month (store/partitions.py), so "an id once" is held by
the table event_ids: a trigger claims each inserted row's id, and the COPY path claims a whole
batch's ids itself first (`claim_ids_then_copy`). The statements here need no change for that
beyond `ON CONFLICT DO NOTHING` naming no key (the table's key now includes ts).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, func, literal_column, or_, select, text, true

from . import rollups
from .catalog_state import Fingerprint, as_fingerprint, fingerprint_figures
from .db import Store
from .schema import events

# the predicate of the partial index ix_events_unbilled, word for word (a literal, not a bound
# parameter): a query naming it may read that small index instead of every event
UNBILLED = or_(events.c.status != literal_column("'matched'"), events.c.late == true())

COLUMNS = ("environment", "id", "customer", "meter", "ts", "properties", "received_at", "status", "late",
           "subscription")
Row = tuple[str, str, str, str, int, str, int, str, bool, str | None]

# what makes two rows with one id the same event (records.event_content compares it): customer,
# meter, ts, properties, subscription
Content = tuple[str, str, int, str, str | None]


class EventWriter:
    """One connection held for a whole import: each batch is one transaction on it.

    Reusing the connection keeps SQLite's page cache warm and avoids re-running the PRAGMAs
    and a WAL checkpoint per batch.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.connection = store.engine.connect()
        self.raw = self.connection.connection.driver_connection
        if not store.is_postgres:
            # checkpoint every ~100 MiB of WAL rather than every 4 MiB: a bulk import otherwise
            # writes each page twice (WAL, then the database file) once per batch
            self.raw.execute("PRAGMA wal_autocheckpoint=25600")

    def write(self, rows: Sequence[Row]) -> int:
        """Insert rows, ignoring ids already stored; returns how many were new. One transaction."""
        if not rows:
            return 0
        with self.connection.begin():
            if self.store.is_postgres:
                inserted = _copy_postgres(self.raw, rows)
                update_rollups(self.connection, rows if inserted is None else
                               [row for row in _first_of_each(rows) if _key(row) in inserted])
                return len(rows) if inserted is None else len(inserted)
            # the write lock first: no other writer can insert between the rowid read and the
            # insert, so the rows past it are exactly this insert's (and concurrent writers wait
            # on the lock here rather than fail to upgrade a read to a write)
            if not self.raw.in_transaction:
                self.raw.execute("BEGIN IMMEDIATE")
            last_rowid = self.raw.execute("SELECT max(rowid) FROM events").fetchone()[0] or 0
            before = self.raw.total_changes
            self.raw.executemany(INSERT_OR_IGNORE, rows)
            added = self.raw.total_changes - before
            in_sequence = last_rowid <= _MAX_ROWID - added
            if added == len(rows):
                update_rollups(self.connection, rows, last_rowid if in_sequence else None)
            elif added and in_sequence:
                # some ids were held already (a batch sent again): the new rows are those past the rowid
                inserted = set(self.raw.execute("SELECT environment, id FROM events WHERE rowid > ?",
                                                (last_rowid,)).fetchall())
                update_rollups(self.connection, [row for row in _first_of_each(rows) if _key(row) in inserted],
                               last_rowid)
            elif added:
                # which rows were new is not known here: their hours are recomputed from the events
                for environment in {row[0] for row in rows}:
                    rollups.refresh(self.connection, environment,
                                    ((row[2], row[4]) for row in rows if row[0] == environment))
            return added

    def held(self, environment: str, ids: Iterable[str]) -> dict[str, Content]:
        """(customer, meter, ts, properties text, subscription) of the stored events with these
        ids, on this writer's connection: what a batch's already-held ids are compared with."""
        return stored_contents(self.connection, environment, ids)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# SQLite gives a new row the largest rowid plus one while that stays below this (EventWriter.write)
_MAX_ROWID = 2**63 - 1
INSERT_OR_IGNORE = f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def _key(row: Row) -> tuple[str, str]:
    return row[0], row[1]


def update_rollups(connection: Any, inserted: Iterable[Row], after_rowid: int | None = None,
                   known: dict[str, list[rollups.Registered]] | None = None) -> None:
    """The ingest hook of the continuous roll-ups (store/rollups.py): the rows this transaction
    inserted, every one new, counted into their hours in the same transaction. SQLite:
    `after_rowid` when they are exactly the events past that rowid (read under the write lock).
    `known`: the roll-ups registered, read in this transaction after the insert."""
    rollups.absorb(connection, inserted, after_rowid, known)


def _first_of_each(rows: Sequence[Row]) -> list[Row]:
    """Each id's first row in the batch (the one an insert keeps)."""
    seen: dict[tuple[str, str], Row] = {}
    for row in rows:
        seen.setdefault(_key(row), row)
    return list(seen.values())


def _copy_postgres(raw: Any, rows: Sequence[Row]) -> set[tuple[str, str]] | None:
    """COPY straight into events when no id is already held (the common case); when one is, the
    savepoint rolls that back and the batch goes through a staging table instead, so duplicates
    are skipped, never doubled. Returns None when every row went in, else the (environment, id)
    of those that did.

    events is partitioned by month, so its own key cannot say "an id once": the ids are claimed
    in event_ids first, the whole batch at once (`claim_ids_then_copy`), which also tells the
    per-row claiming trigger it has nothing left to do for these statements.

    The first of an id's rows in a batch wins, as on SQLite: the sort is stable, so the staging
    table holds each id's rows in batch order, and `ctid` (their place in it) breaks the tie."""
    # Concurrent writers of overlapping batches wait on each other's uncommitted ids; taking the
    # ids in one global order (by key, as the staging INSERT below does) keeps that from ever
    # becoming a deadlock (tests/api/test_reliability.py sends shuffled overlapping batches).
    rows = sorted(rows, key=_key)
    with raw.cursor() as cursor:
        cursor.execute(IDS_CLAIMED_ON)
        stored = claim_ids_then_copy(cursor, rows)
        cursor.execute(IDS_CLAIMED_OFF)  # any later insert in this transaction claims its own ids again
        return stored


# read by the trigger events_claim_id (migration 0026): 'on' while a statement's ids are claimed by the caller
IDS_CLAIMED_ON = "SELECT set_config('ratecard.event_ids_claimed', 'on', true)"
IDS_CLAIMED_OFF = "SELECT set_config('ratecard.event_ids_claimed', 'off', true)"


def claim_ids_then_copy(cursor: Any, rows: Sequence[Row]) -> set[tuple[str, str]] | None:
    """Claim the rows' (environment, id) in event_ids, then store the rows whose claim succeeded;
    returns None when every row was stored, else the (environment, id) of those that were (what
    the roll-ups count). `rows` sorted by key; the caller has set IDS_CLAIMED_ON."""
    from psycopg.errors import UniqueViolation  # here, not at import: SQLite users never load psycopg

    columns = ", ".join(COLUMNS)
    cursor.execute("SAVEPOINT direct_copy")
    try:
        with cursor.copy("COPY event_ids (environment, id) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row[:2])
    except UniqueViolation:  # an id held already, or twice in the batch
        cursor.execute("ROLLBACK TO SAVEPOINT direct_copy")
    else:
        cursor.execute("RELEASE SAVEPOINT direct_copy")
        with cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return None
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS events_staging "
        "(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    with cursor.copy(f"COPY events_staging ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    staged = ", ".join(f"s.{column}" for column in COLUMNS)
    cursor.execute(
        "WITH claimed AS (INSERT INTO event_ids (environment, id) "
        "SELECT DISTINCT environment, id FROM events_staging ORDER BY environment, id "
        "ON CONFLICT DO NOTHING RETURNING environment, id) "
        f"INSERT INTO events ({columns}) "
        f"SELECT DISTINCT ON (s.environment, s.id) {staged} FROM events_staging s "
        "JOIN claimed c ON c.environment = s.environment AND c.id = s.id "
        "ORDER BY s.environment, s.id, s.ctid RETURNING environment, id"
    )
    return {(environment, event_id) for environment, event_id in cursor.fetchall()}


def refresh_statistics(store: Store) -> None:
    """PostgreSQL plans the usage roll-up from table statistics; after a bulk import they are
    stale until autovacuum gets round to it, and the planner picks the wrong index."""
    if store.is_postgres:
        with store.engine.begin() as connection:
            connection.execute(text("ANALYZE events"))


def stored_contents(connectable: Any, environment: str, ids: Iterable[str]) -> dict[str, Content]:
    """id -> (customer, meter, ts, properties as text, subscription) of the stored events with these ids.

    `connectable` is a Store or an open connection; one SELECT per 900 ids (SQLite's parameter bound)."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, Content] = {}
    with _connection(connectable) as connection:
        for start in range(0, len(wanted), 900):
            query = select(events.c.id, events.c.customer, events.c.meter, events.c.ts,
                           cast(events.c.properties, Text), events.c.subscription).where(
                events.c.environment == environment, events.c.id.in_(wanted[start : start + 900]))
            for event_id, customer, meter, ts, properties, subscription in connection.execute(query):
                found[event_id] = (customer, meter, ts, properties, subscription)
    return found


@contextmanager
def _connection(connectable: Any) -> Iterator[Any]:
    if isinstance(connectable, Store):
        with connectable.engine.connect() as connection:
            yield connection
    else:
        yield connectable


def count_by_status(store: Store, environment: str) -> dict[str, int]:
    query = (
        select(events.c.status, func.count())
        .where(events.c.environment == environment)
        .group_by(events.c.status)
    )
    with store.engine.connect() as connection:
        return {status: count for status, count in connection.execute(query)}


@dataclass(slots=True)
class StoredEvent:
    id: str
    customer: str
    meter: str
    ts: int  # µs since epoch, UTC
    properties: str  # JSON text, as stored (decimals exact)
    status: str
    late: bool
    received_at: int
    subscription: str | None = None  # the subscription the event names


# `events list --status unmatched` means any status but matched
UNMATCHED = "unmatched"


def list_events(store: Store, environment: str = "live", *, late: bool | None = None, status: str | None = None,
                customer: str | None = None, limit: int | None = 100) -> list[StoredEvent]:
    """Stored (not deleted) events, newest first (by timestamp, then id), filtered."""
    query = select(events.c.id, events.c.customer, events.c.meter, events.c.ts, cast(events.c.properties, Text),
                   events.c.status, events.c.late, events.c.received_at, events.c.subscription).where(
        events.c.environment == environment, events.c.deleted_at.is_(None)
    )
    if late is not None:
        query = query.where(events.c.late.is_(late))
    if status == UNMATCHED:
        query = query.where(events.c.status != "matched")
    elif status is not None:
        query = query.where(events.c.status == status)
    if customer is not None:
        query = query.where(events.c.customer == customer)
    query = query.order_by(events.c.ts.desc(), events.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as connection:
        return [StoredEvent(*row) for row in connection.execute(query)]



def meters_seen_since(store: Store, environment: str, since_us: int) -> set[str]:
    """The meter (or stream) names of the events at or after the instant, whatever their status."""
    query = select(events.c.meter).where(events.c.environment == environment, events.c.ts >= since_us).distinct()
    with store.engine.connect() as connection:
        return {row[0] for row in connection.execute(query)}


def unbilled_counts(store: Store, environment: str) -> list[tuple[str, str, str, int]]:
    """(status, customer, meter, count) of the stored events neither matched nor deleted."""
    query = (select(events.c.status, events.c.customer, events.c.meter, func.count())
             .where(events.c.environment == environment, events.c.status.notin_(("matched", "deleted")),
                    UNBILLED)  # implied by the status test; named so the partial index ix_events_unbilled serves it
             .group_by(events.c.status, events.c.customer, events.c.meter))
    with store.engine.connect() as connection:
        return [(status, customer, meter, count) for status, customer, meter, count in connection.execute(query)]


def unpriced_examples(store: Store, environment: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """(customer, meter) -> up to two ids (the first and last by id) of its unpriced events, in one scan."""
    query = (select(events.c.customer, events.c.meter, func.min(events.c.id), func.max(events.c.id))
             .where(events.c.environment == environment, events.c.status == "unpriced", UNBILLED,
                    events.c.deleted_at.is_(None))
             .group_by(events.c.customer, events.c.meter))
    with store.engine.connect() as connection:
        return {(customer, meter): tuple(dict.fromkeys((first, last)))
                for customer, meter, first, last in connection.execute(query)}


def insert_returning(connection: Any, rows: Sequence[Row]) -> set[tuple[str, str]]:
    """Insert rows with distinct (environment, id), skipping those already stored, inside the
    caller's open transaction; returns the (environment, id) of the rows inserted.

    One statement on PostgreSQL (a multi-row INSERT … ON CONFLICT DO NOTHING RETURNING), taken in
    key order like `_copy_postgres` so concurrent writers never deadlock; one INSERT OR IGNORE
    per row on SQLite (in-process, and its row count tells each row apart)."""
    if not rows:
        return set()
    raw = connection.connection.driver_connection
    inserted: set[tuple[str, str]] = set()
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor:
            cursor.execute(*_pg_insert(rows))
            inserted.update((environment, event_id) for environment, event_id in cursor.fetchall())
        update_rollups(connection, [row for row in rows if _key(row) in inserted])
        return inserted
    cursor = raw.cursor()
    try:
        for row in rows:
            cursor.execute(INSERT_OR_IGNORE, row)
            if cursor.rowcount == 1:
                inserted.add((row[0], row[1]))
    finally:
        cursor.close()
    update_rollups(connection, [row for row in rows if _key(row) in inserted])
    return inserted


_SQLITE_FINGERPRINT_SQL = "SELECT " + ", ".join(fingerprint_figures(":env", postgres=False))
_PG_VALUES = "(" + ", ".join("%s::jsonb" if column == "properties" else "%s" for column in COLUMNS) + ")"


def _pg_insert(rows: Sequence[Row]) -> tuple[str, list[Any]]:
    """PostgreSQL: one INSERT of rows with distinct (environment, id), skipping those already
    stored and returning the (environment, id) of those inserted, and its parameters. The rows
    are taken in key order, like `_copy_postgres`, so that concurrent writers never deadlock."""
    ordered = sorted(rows, key=_key)
    return (f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES {', '.join([_PG_VALUES] * len(ordered))} "
            "ON CONFLICT DO NOTHING RETURNING environment, id", [value for row in ordered for value in row])


# each environment's fingerprint (as text for the UNION) and the roll-ups to maintain, as rows of
# the group committer's one statement (`insert_confirmed`)
_PG_FINGERPRINTS = ("SELECT 0, e.env, " + ", ".join(f"{figure}::text" for figure in fingerprint_figures("e.env", True))
                    + " FROM unnest(%s::text[]) AS e(env)")
_PG_REGISTERED = ("SELECT 2, environment, key, definition, state, NULL FROM rollup_meters "
                  "WHERE environment = ANY(%s::text[])")


def _at_once_guard() -> str:
    """`insert_at_once`'s condition: every expected fingerprint is its environment's current one
    (compared as `as_fingerprint` reads it), and no roll-up is registered for the environments
    whose matched events the statement inserts; a division by zero aborts the statement else."""
    version, revision, finals, archived = fingerprint_figures("x.env", postgres=True)
    moved = (f"{version} IS DISTINCT FROM x.version OR coalesce({revision}, 0) <> x.revision OR "
             f"coalesce({finals}, 0) <> x.finals OR coalesce({archived}, '') <> x.archived")
    return ("SELECT NULL, (1 / CASE WHEN NOT EXISTS (SELECT 1 FROM unnest(%s::text[], %s::int[], %s::bigint[], "
            f"%s::bigint[], %s::text[]) AS x(env, version, revision, finals, archived) WHERE {moved}) "
            "AND NOT EXISTS (SELECT 1 FROM rollup_meters WHERE environment = ANY(%s::text[])) THEN 1 ELSE 0 END)::text")


_AT_ONCE_GUARD = _at_once_guard()
_REFUSED = "22012"  # division by zero: the guard's way to abort the statement


def insert_at_once(connection: Any, expected: Sequence[tuple[str, Fingerprint]], rows: Sequence[Row]
                   ) -> set[tuple[str, str]] | None:
    """PostgreSQL, on a connection in autocommit: insert rows with distinct (environment, id) in
    one statement that is its own transaction, so it commits without a COMMIT round trip of its
    own; returns the (environment, id) of the rows inserted.

    Only when each (environment, fingerprint) in `expected` is the environment's fingerprint and
    no roll-up is registered for the environments of the matched rows: else the statement fails
    as a whole, nothing is written, and None is returned (the caller writes the rows the usual
    way, `insert_confirmed` in a transaction, which reads the fingerprints and maintains the
    roll-ups). The condition is read in the insert's own snapshot, as `insert_confirmed` reads it."""
    maintained = sorted({row[0] for row in rows if row[7] == "matched"})
    insert, parameters = _pg_insert(rows)
    statement = f"WITH inserted AS ({insert}) SELECT environment, id FROM inserted UNION ALL {_AT_ONCE_GUARD}"
    parameters += [[environment for environment, _ in expected], [f.catalog_version for _, f in expected],
                   [f.resources_revision for _, f in expected], [f.finals for _, f in expected],
                   [f.archived for _, f in expected], maintained]
    raw = connection.connection.driver_connection
    try:
        with raw.cursor() as cursor:
            cursor.execute(statement, parameters)
            found = cursor.fetchall()
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == _REFUSED:
            return None
        raise
    return {(environment, event_id) for environment, event_id in found if environment is not None}


def insert_confirmed(connection: Any, environments: Sequence[str], rows: Sequence[Row]
                     ) -> tuple[dict[str, Fingerprint], set[tuple[str, str]]]:
    """`insert_returning`, and the fingerprint of each environment read in the same transaction
    (the caller rolls back when one is not what its rows were checked against). On PostgreSQL
    the insert, the fingerprints and the roll-ups to maintain are one statement: one round trip,
    plus the COMMIT."""
    if connection.dialect.name != "postgresql":
        raw = connection.connection.driver_connection
        if not raw.in_transaction:
            # take the write lock before reading: no catalog can be applied between the
            # fingerprints read and the rows written (the driver would begin only at the INSERT)
            raw.execute("BEGIN IMMEDIATE")
        # on the driver, as on PostgreSQL: SQLAlchemy's statement machinery cost 4x the query
        found = {environment: as_fingerprint(raw.execute(_SQLITE_FINGERPRINT_SQL, {"env": environment}).fetchone())
                 for environment in environments}
        return found, insert_returning(connection, rows)
    raw = connection.connection.driver_connection
    # one statement, one round trip before the COMMIT: the insert, the fingerprints and the roll-ups
    # to maintain. The roll-ups are read in the insert's own snapshot, which PostgreSQL takes (READ
    # COMMITTED) after the statement locked events: a roll-up registered after that snapshot is built
    # by `rollups.build` only once this transaction ended (it waits for events' writers), and one
    # registered before is in it
    maintained = sorted({row[0] for row in rows if row[7] == "matched"})
    parts: list[str] = []
    parameters: list[Any] = []
    if rows:
        insert, parameters = _pg_insert(rows)
        parts.append(f"WITH inserted AS ({insert}) SELECT 1, environment, id, NULL, NULL, NULL FROM inserted")
    if environments:
        parts.append(_PG_FINGERPRINTS)
        parameters.append(list(environments))
    if maintained:
        parts.append(_PG_REGISTERED)
        parameters.append(maintained)
    found: dict[str, Fingerprint] = {}
    inserted: set[tuple[str, str]] = set()
    known: dict[str, list[rollups.Registered]] = {environment: [] for environment in maintained}
    if parts:
        with raw.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), parameters)
            for kind, environment, first, second, third, fourth in cursor.fetchall():
                if kind == 1:
                    inserted.add((environment, first))
                elif kind == 0:
                    found[environment] = as_fingerprint((None if first is None else int(first), second, third,
                                                         fourth))
                else:
                    known[environment].append(rollups.Registered(first, second, third))
    update_rollups(connection, [row for row in rows if _key(row) in inserted], known=known)
    return found, inserted

