"""Backfill rows: a time window of historical usage that is imported while pending (stored in
backfill_events, never billed), made billable at close and taken back at revert.

The backfill's events stay in backfill_events for good; close copies them into events (the
table every invoice run reads, untouched by backfills otherwise). A replacing backfill first
moves the window's stored events out of events into backfill_replaced_events, so a corrected
event may reuse the id of the event it corrects; revert moves them back. Close and revert are
each one transaction, under the environment's lock.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, insert, select, text, update

from ..domain.instants import rfc3339
from . import rollups
from .catalogs import lock_environment
from .db import Store
from .schema import backfill_events, backfills

PENDING, CLOSED, REVERTED = "pending", "closed", "reverted"


class BackfillError(ValueError):
    """A backfill request that cannot be carried out; the message says why."""


class BackfillNotFound(BackfillError):
    pass


@dataclass
class Backfill:
    id: str
    environment: str
    start_ts: int
    end_ts: int
    customer: str | None
    replace: bool
    status: str
    created_at: int
    closed_at: int | None
    reverted_at: int | None
    result: dict | None
    events: int = 0  # events imported into it

    def overlaps(self, start_ts: int, end_ts: int, customer: str | None) -> bool:
        same_scope = self.customer is None or customer is None or self.customer == customer
        return same_scope and self.start_ts < end_ts and start_ts < self.end_ts


def _from_row(row: Any, events: int = 0) -> Backfill:
    data = row._mapping
    return Backfill(
        id=data["id"], environment=data["environment"], start_ts=data["start_ts"], end_ts=data["end_ts"],
        customer=data["customer"], replace=bool(data["replace"]), status=data["status"],
        created_at=data["created_at"], closed_at=data["closed_at"], reverted_at=data["reverted_at"],
        result=orjson.loads(data["result"]) if data["result"] else None, events=events,
    )


def _event_counts(connection: Any, ids: Sequence[str]) -> dict[str, int]:
    if not ids:
        return {}
    query = (select(backfill_events.c.backfill_id, func.count())
             .where(backfill_events.c.backfill_id.in_(list(ids))).group_by(backfill_events.c.backfill_id))
    return {backfill_id: count for backfill_id, count in connection.execute(query)}


def create_backfill(store: Store, environment: str, start_ts: int, end_ts: int, customer: str | None,
                    replace: bool, now_us: int) -> Backfill:
    """A new pending backfill; refused when it overlaps a pending one of the same scope."""
    if start_ts >= end_ts:
        raise BackfillError("--to must be after --from (the window is [from, to))")
    with store.engine.begin() as connection:
        lock_environment(connection, store, environment)
        pending = connection.execute(
            select(backfills).where(backfills.c.environment == environment, backfills.c.status == PENDING)
            .order_by(backfills.c.created_at)
        )
        for row in pending:
            other = _from_row(row)
            if other.overlaps(start_ts, end_ts, customer):
                raise BackfillError(
                    f"the window overlaps pending backfill {other.id} ({_span(other)}); close or revert it first")
        backfill_id = f"bf_{secrets.token_hex(6)}"
        connection.execute(insert(backfills).values(
            id=backfill_id, environment=environment, start_ts=start_ts, end_ts=end_ts, customer=customer,
            replace=replace, status=PENDING, created_at=now_us))
    return get_backfill(store, environment, backfill_id)


def _span(backfill: Backfill) -> str:
    scope = f", customer {backfill.customer}" if backfill.customer else ""
    return f"[{rfc3339(backfill.start_ts)}, {rfc3339(backfill.end_ts)}){scope}"


def get_backfill(store: Store, environment: str, backfill_id: str) -> Backfill:
    with store.engine.connect() as connection:
        row = connection.execute(
            select(backfills).where(backfills.c.environment == environment, backfills.c.id == backfill_id)
        ).first()
        if row is None:
            raise BackfillNotFound(f"no backfill {backfill_id!r} (see `ratecard backfill list`)")
        return _from_row(row, _event_counts(connection, [backfill_id]).get(backfill_id, 0))


def list_backfills(store: Store, environment: str, status: str | None = None, limit: int | None = None,
                   offset: int = 0) -> list[Backfill]:
    """Oldest first; `limit` and `offset` for one page of them."""
    query = select(backfills).where(backfills.c.environment == environment)
    if status is not None:
        query = query.where(backfills.c.status == status)
    query = query.order_by(backfills.c.created_at, backfills.c.id)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    with store.engine.connect() as connection:
        rows = list(connection.execute(query))
        counts = _event_counts(connection, [row.id for row in rows])
    return [_from_row(row, counts.get(row.id, 0)) for row in rows]


def set_result(store: Store, backfill_id: str, result: dict) -> None:
    with store.engine.begin() as connection:
        connection.execute(update(backfills).where(backfills.c.id == backfill_id)
                           .values(result=orjson.dumps(result).decode()))


class BackfillWriter:
    """Stores an import's events in a pending backfill (the import's EventWriter stand-in):
    each batch one transaction; an id already in the backfill is a duplicate, never doubled."""

    def __init__(self, store: Store, backfill_id: str) -> None:
        self.store = store
        self.backfill_id = backfill_id
        properties = "CAST(:properties AS JSONB)" if store.is_postgres else ":properties"
        conflict = "ON CONFLICT (backfill_id, id) DO NOTHING"
        self.statement = text(
            "INSERT INTO backfill_events (backfill_id, id, environment, customer, meter, ts, properties, "
            f"received_at, status, applied) VALUES (:bf, :id, :env, :customer, :meter, :ts, {properties}, "
            f":received, :status, false) {conflict}"
        )

    def write(self, rows: Sequence[tuple]) -> int:
        """rows as the importer builds them: (environment, id, customer, meter, ts, properties JSON
        text, received_at, status, late, subscription: always None, the validator refuses one).
        Returns how many were new to the backfill."""
        if not rows:
            return 0
        with self.store.engine.begin() as connection:
            status = connection.execute(
                select(backfills.c.status).where(backfills.c.id == self.backfill_id)
            ).scalar()
            if status != PENDING:
                raise BackfillError(f"backfill {self.backfill_id} is {status}: events can only be added "
                                    "to a pending backfill")
            count = select(func.count()).where(backfill_events.c.backfill_id == self.backfill_id)
            before = connection.execute(count).scalar_one()
            connection.execute(self.statement, [
                {"bf": self.backfill_id, "env": env, "id": event_id, "customer": customer, "meter": meter, "ts": ts,
                 "properties": properties, "received": received, "status": status}
                for env, event_id, customer, meter, ts, properties, received, status, *_late_and_more in rows
            ])
            return connection.execute(count).scalar_one() - before

    def close(self) -> None:
        pass


EVENT_FIELDS = "environment, id, customer, meter, ts, properties, received_at, status"


def _window_condition(backfill: Backfill, params: dict[str, Any]) -> str:
    params.update(env=backfill.environment, start=backfill.start_ts, end=backfill.end_ts)
    condition = "environment = :env AND ts >= :start AND ts < :end AND deleted_at IS NULL"
    if backfill.customer is not None:
        params["customer"] = backfill.customer
        condition += " AND customer = :customer"
    return condition


def _refresh_rollups(connection: Any, backfill: Backfill) -> None:
    """The roll-ups of the hours a close or a revert changed: the window's, and its events' own."""
    rollups.refresh_span(connection, backfill.environment, backfill.start_ts, backfill.end_ts, backfill.customer)
    rollups.refresh(connection, backfill.environment, connection.execute(
        select(backfill_events.c.customer, backfill_events.c.ts).where(backfill_events.c.backfill_id == backfill.id)
        .distinct()).all())


def _locked_backfill(connection: Any, store: Store, environment: str, backfill_id: str) -> Backfill:
    """The backfill, read under the environment's lock (the caller's transaction holds it)."""
    lock_environment(connection, store, environment)
    row = connection.execute(
        select(backfills).where(backfills.c.environment == environment, backfills.c.id == backfill_id)
    ).first()
    if row is None:
        raise BackfillNotFound(f"no backfill {backfill_id!r} (see `ratecard backfill list`)")
    return _from_row(row)


def apply_backfill(store: Store, environment: str, backfill_id: str, now_us: int) -> dict[str, int] | None:
    """Close a pending backfill in one transaction: with replace, the window's stored events (in
    its scope) move aside; then its events go into events. None when it was not pending."""
    with store.engine.begin() as connection:
        backfill = _locked_backfill(connection, store, environment, backfill_id)
        if backfill.status != PENDING:
            return None
        params: dict[str, Any] = {"bf": backfill_id}
        replaced = 0
        if backfill.replace:
            condition = _window_condition(backfill, params)
            connection.execute(text(
                f"INSERT INTO backfill_replaced_events (backfill_id, {EVENT_FIELDS}, late) "
                f"SELECT :bf, {EVENT_FIELDS}, late FROM events WHERE {condition}"), params)
            replaced = connection.execute(text(f"DELETE FROM events WHERE {condition}"), params).rowcount
        # an event whose id is still stored (outside the window or scope, or kept by a
        # non-replacing backfill) is the same event: counted once, never doubled
        # (on PostgreSQL event_ids holds every id stored, archived months' included)
        held = "event_ids" if store.is_postgres else "events"
        connection.execute(text(
            f"UPDATE backfill_events SET applied = NOT EXISTS (SELECT 1 FROM {held} e "
            "WHERE e.environment = backfill_events.environment AND e.id = backfill_events.id) "
            "WHERE backfill_id = :bf"), params)
        added = connection.execute(text(
            f"INSERT INTO events ({EVENT_FIELDS}, late) SELECT {EVENT_FIELDS}, false FROM backfill_events "
            "WHERE backfill_id = :bf AND applied ON CONFLICT DO NOTHING"), params).rowcount
        total = connection.execute(
            select(func.count()).where(backfill_events.c.backfill_id == backfill_id)).scalar_one()
        _refresh_rollups(connection, backfill)
        # closing order decides which backfill a revert must undo first: strictly increasing, even
        # when the clock is pinned or two closes fall in one microsecond
        last = connection.execute(
            select(func.max(backfills.c.closed_at)).where(backfills.c.environment == environment)).scalar()
        connection.execute(update(backfills).where(backfills.c.id == backfill_id)
                           .values(status=CLOSED, closed_at=max(now_us, (last or 0) + 1)))
    return {"added": added, "already_stored": total - added, "replaced": replaced}


def unapply_backfill(store: Store, environment: str, backfill_id: str, now_us: int) -> dict[str, int] | None:
    """Revert in one transaction: the events a closed backfill added leave events and the ones it
    replaced come back; a pending backfill just ends. None when it was already reverted."""
    with store.engine.begin() as connection:
        backfill = _locked_backfill(connection, store, environment, backfill_id)
        if backfill.status == REVERTED:
            return None
        removed = restored = 0
        if backfill.status == CLOSED:
            later = connection.execute(
                select(backfills).where(backfills.c.environment == environment, backfills.c.status == CLOSED,
                                        backfills.c.closed_at > backfill.closed_at)
                .order_by(backfills.c.closed_at.desc())
            )
            for other_row in later:
                other = _from_row(other_row)
                if other.overlaps(backfill.start_ts, backfill.end_ts, backfill.customer):
                    raise BackfillError(f"backfill {other.id} ({_span(other)}) was closed later over the same "
                                        f"events; revert it first")
            params = {"bf": backfill_id, "env": environment}
            removed = connection.execute(text(
                "DELETE FROM events WHERE environment = :env AND id IN "
                "(SELECT id FROM backfill_events WHERE backfill_id = :bf AND applied)"), params).rowcount
            restored = connection.execute(text(
                f"INSERT INTO events ({EVENT_FIELDS}, late) SELECT {EVENT_FIELDS}, late "
                "FROM backfill_replaced_events WHERE backfill_id = :bf ON CONFLICT DO NOTHING"),
                params).rowcount
            _refresh_rollups(connection, backfill)
        connection.execute(update(backfills).where(backfills.c.id == backfill_id)
                           .values(status=REVERTED, reverted_at=now_us))
    return {"removed": removed, "restored": restored, "was": backfill.status}
