"""Events as Solvimon's meter data: per-event idempotent insert that keeps repeated references
(event_duplicates), listing of events and duplicates together, soft delete, and re-matching.

A repeated reference is stored as a duplicate record (listed as DUPLICATE, never billed); the
insert and the duplicate check are one statement on the events primary key, so two workers
racing on one reference store it once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, false, func, literal_column, null, select, text, union_all, update

from . import rollups
from .db import Store
from .events import update_rollups
from .schema import event_duplicates, events

# events.status of a soft-deleted event: never billed (usage reads only 'matched'), never re-matched
DELETED = "deleted"
MATCHED = "matched"
DUPLICATE_PREFIX = "dup_"


@dataclass(slots=True)
class NewEvent:
    id: str
    customer: str
    meter: str
    ts: int
    properties: str  # JSON text, decimals exact
    status: str
    late: bool
    subscription: str | None = None  # the subscription the event names


@dataclass(slots=True)
class MeterDataRow:
    """An event (source 'event') or a duplicate submission (source 'duplicate')."""

    source: str
    id: str  # the event id (= reference)
    seq: int | None  # the duplicate's number
    customer: str
    meter: str
    ts: int
    properties: str
    received_at: int
    status: str
    late: bool
    deleted_at: int | None
    subscription: str | None = None  # the subscription the event names

    @property
    def resource_id(self) -> str:
        return f"{DUPLICATE_PREFIX}{self.seq}" if self.source == "duplicate" else self.id


def insert_meter_data(store: Store, environment: str, rows: Sequence[NewEvent], received_at: int) -> list[int | None]:
    """Store events in one transaction, in order. Per event: None when it was stored, else the
    number of the duplicate record kept for it (its id was already stored, or came earlier in
    `rows`)."""
    if store.is_postgres:
        event_sql = text(
            "INSERT INTO events (environment, id, customer, meter, ts, properties, received_at, status, late, "
            "subscription) VALUES (:env, :id, :customer, :meter, :ts, CAST(:properties AS JSONB), :received, "
            ":status, :late, :subscription) "
            "ON CONFLICT DO NOTHING"
        )
        duplicate_sql = text(
            "INSERT INTO event_duplicates (environment, id, customer, meter, ts, properties, received_at) "
            "VALUES (:env, :id, :customer, :meter, :ts, CAST(:properties AS JSONB), :received) RETURNING seq"
        )
    else:
        event_sql = text(
            "INSERT OR IGNORE INTO events (environment, id, customer, meter, ts, properties, received_at, status, "
            "late, subscription) VALUES (:env, :id, :customer, :meter, :ts, :properties, :received, :status, :late, "
            ":subscription)"
        )
        duplicate_sql = text(
            "INSERT INTO event_duplicates (environment, id, customer, meter, ts, properties, received_at) "
            "VALUES (:env, :id, :customer, :meter, :ts, :properties, :received) RETURNING seq"
        )
    outcome: list[int | None] = []
    with store.engine.begin() as connection:
        for row in rows:
            params = {"env": environment, "id": row.id, "customer": row.customer, "meter": row.meter, "ts": row.ts,
                      "properties": row.properties, "received": received_at, "status": row.status, "late": row.late,
                      "subscription": row.subscription}
            if connection.execute(event_sql, params).rowcount == 1:
                outcome.append(None)
                update_rollups(connection, [(environment, row.id, row.customer, row.meter, row.ts, row.properties,
                                             received_at, row.status, row.late, row.subscription)])
            else:
                outcome.append(connection.execute(duplicate_sql, params).scalar_one())
    return outcome


def keep_duplicate(connection: Any, row: tuple) -> int:
    """Keep an events row (store/events.py's Row) whose id is already stored as a duplicate
    record, inside the caller's open transaction; returns the record's number."""
    cast_properties = "CAST(:properties AS JSONB)" if connection.dialect.name == "postgresql" else ":properties"
    statement = text(
        "INSERT INTO event_duplicates (environment, id, customer, meter, ts, properties, received_at) "
        f"VALUES (:env, :id, :customer, :meter, :ts, {cast_properties}, :received) RETURNING seq"
    )
    return connection.execute(statement, {"env": row[0], "id": row[1], "customer": row[2], "meter": row[3],
                                          "ts": row[4], "properties": row[5], "received": row[6]}).scalar_one()


def _events_part(environment: str):
    return select(
        literal_column("'event'").label("source"), events.c.id, cast(null(), events.c.ts.type).label("seq"),
        events.c.customer, events.c.meter, events.c.ts, cast(events.c.properties, Text).label("properties"),
        events.c.received_at, events.c.status, events.c.late, events.c.deleted_at, events.c.subscription,
    ).where(events.c.environment == environment)


def _duplicates_part(environment: str):
    return select(
        literal_column("'duplicate'").label("source"), event_duplicates.c.id.label("id"),
        cast(event_duplicates.c.seq, events.c.ts.type).label("seq"), event_duplicates.c.customer.label("customer"),
        event_duplicates.c.meter.label("meter"), event_duplicates.c.ts.label("ts"),
        cast(event_duplicates.c.properties, Text).label("properties"),
        event_duplicates.c.received_at.label("received_at"), literal_column("'duplicate'").label("status"),
        false().label("late"), cast(null(), events.c.ts.type).label("deleted_at"),
        cast(null(), events.c.subscription.type).label("subscription"),
    ).where(event_duplicates.c.environment == environment)


def list_meter_data(store: Store, environment: str, *, reference: str | None = None, customer: str | None = None,
                    meter: str | None = None, deleted: bool | None = None, processed: str | None = None,
                    limit: int = 10, offset: int = 0) -> tuple[int, list[MeterDataRow]]:
    """(total, one page) of events and duplicate records, newest first.

    `processed`: DEFAULT (effective events), NOT_MATCHED (stored but not billable) or DUPLICATE."""
    parts = []
    if processed in (None, "DEFAULT", "NOT_MATCHED"):
        query = _events_part(environment)
        if reference is not None:
            query = query.where(events.c.id == reference)
        if customer is not None:
            query = query.where(events.c.customer == customer)
        if meter is not None:
            query = query.where(events.c.meter == meter)
        if deleted is True:
            query = query.where(events.c.deleted_at.is_not(None))
        elif deleted is False:
            query = query.where(events.c.deleted_at.is_(None))
        if processed == "DEFAULT":
            query = query.where(events.c.status.in_((MATCHED, DELETED)))
        elif processed == "NOT_MATCHED":
            query = query.where(events.c.status.not_in((MATCHED, DELETED)))
        parts.append(query)
    if processed in (None, "DUPLICATE") and deleted is not True:
        query = _duplicates_part(environment)
        if reference is not None:
            query = query.where(event_duplicates.c.id == reference)
        if customer is not None:
            query = query.where(event_duplicates.c.customer == customer)
        if meter is not None:
            query = query.where(event_duplicates.c.meter == meter)
        parts.append(query)
    if not parts:
        return 0, []
    combined = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    with store.engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(combined)).scalar_one()
        page = connection.execute(
            select(combined)
            .order_by(combined.c.received_at.desc(), combined.c.id.desc(), combined.c.seq.desc())
            .limit(limit).offset(offset)
        )
        rows = [MeterDataRow(*row) for row in page]
    return total, rows


def get_meter_data(store: Store, environment: str, key: str) -> MeterDataRow | None:
    """By id first (a duplicate record's dup_<n>, else the event id), then by reference: the
    event itself (the original, not its duplicates)."""
    with store.engine.connect() as connection:
        number = key[len(DUPLICATE_PREFIX):]
        if key.startswith(DUPLICATE_PREFIX) and number.isascii() and number.isdigit() and len(number) <= 18:
            row = connection.execute(
                _duplicates_part(environment).where(event_duplicates.c.seq == int(number))
            ).first()
            if row is not None:
                return MeterDataRow(*row)
        row = connection.execute(_events_part(environment).where(events.c.id == key)).first()
    return MeterDataRow(*row) if row is not None else None


def soft_delete(store: Store, environment: str, event_id: str, now_us: int) -> MeterDataRow | None:
    """Mark an event deleted (idempotent): it leaves usage and is never re-matched."""
    with store.engine.begin() as connection:
        touched = connection.execute(
            update(events)
            .where(events.c.environment == environment, events.c.id == event_id, events.c.deleted_at.is_(None))
            .values(status=DELETED, deleted_at=now_us, late=False)
            .returning(events.c.customer, events.c.ts)
        ).all()
        rollups.refresh(connection, environment, touched)  # it leaves the roll-ups too
    return get_meter_data(store, environment, event_id)


def count_unmatched(store: Store, environment: str, customer: str | None = None, start_us: int | None = None,
                    end_us: int | None = None) -> int:
    query = select(func.count()).select_from(events).where(*_unmatched_conditions(environment, customer, start_us,
                                                                                    end_us))
    with store.engine.connect() as connection:
        return connection.execute(query).scalar_one()


def _unmatched_conditions(environment: str, customer: str | None, start_us: int | None, end_us: int | None) -> list:
    conditions = [events.c.environment == environment, events.c.status.not_in((MATCHED, DELETED)),
                  events.c.deleted_at.is_(None)]
    if customer is not None:
        conditions.append(events.c.customer == customer)
    if start_us is not None:
        conditions.append(events.c.ts >= start_us)
    if end_us is not None:
        conditions.append(events.c.ts < end_us)
    return conditions


def unmatched_batches(store: Store, environment: str, customer: str | None = None, start_us: int | None = None,
                      end_us: int | None = None, batch: int = 5000) -> Iterator[list[tuple]]:
    """(id, customer, meter, ts, properties JSON text, status, subscription named) of unmatched,
    undeleted events, in batches by id (so each batch's updates never move the scan)."""
    last = ""
    while True:
        query = (
            select(events.c.id, events.c.customer, events.c.meter, events.c.ts, cast(events.c.properties, Text),
                   events.c.status, events.c.subscription)
            .where(*_unmatched_conditions(environment, customer, start_us, end_us), events.c.id > last)
            .order_by(events.c.id)
            .limit(batch)
        )
        with store.engine.connect() as connection:
            rows = [tuple(row) for row in connection.execute(query)]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def apply_matches(store: Store, environment: str, changes: Sequence[tuple[str, str, str, bool]]) -> None:
    """(id, status, properties JSON text, late) per event, in one transaction; a deleted event is
    left alone even when it was deleted while the batch was being checked."""
    if not changes:
        return
    properties = "CAST(:properties AS JSONB)" if store.is_postgres else ":properties"
    statement = text(
        f"UPDATE events SET status = :status, properties = {properties}, late = :late "
        "WHERE environment = :env AND id = :id AND deleted_at IS NULL"
    )
    with store.engine.begin() as connection:
        connection.execute(statement, [{"env": environment, "id": i, "status": s, "properties": p, "late": late}
                                       for i, s, p, late in changes])
        # the hours of the events that changed are recomputed from the events, in this transaction
        ids = [change[0] for change in changes]
        touched = []
        for start in range(0, len(ids), 900):
            touched += connection.execute(select(events.c.customer, events.c.ts).where(
                events.c.environment == environment, events.c.id.in_(ids[start:start + 900]))).all()
        rollups.refresh(connection, environment, touched)

