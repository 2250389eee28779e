"""Meter data (Solvimon's events over ratecard's): check a batch whole, store it, read, soft-delete.

A batch is all or nothing for invalid events: the first rejection stores nothing (and is counted
in the per-minute ingestion figures). Stored events are counted there too; a repeated id is kept
as a duplicate record that never takes effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..domain.instants import to_micros
from ..ingest.figures import record_batch, record_rejection
from ..ingest.records import RawEvent, Rejection
from ..ingest.validate import EventValidator
from ..store import Store
from ..store.meter_data import MeterDataRow, NewEvent, get_meter_data, insert_meter_data, list_meter_data, soft_delete
from .errors import Conflict, NotFound

__all__ = ["MeterDataRow", "NewEvent", "RejectedEvent", "StoredBatch", "check_events", "delete_event",
           "find_event", "find_events", "store_events"]

find_event = get_meter_data  # by id (dup_<n> for a duplicate record) or reference; None when unknown
find_events = list_meter_data  # (total, one page), newest first


@dataclass
class RejectedEvent:
    """The first event of a batch that was refused: its position (from 0) and why."""

    index: int
    rejection: Rejection


def check_events(store: Store, environment: str, now: datetime, events: Sequence[RawEvent],
                 validator: EventValidator | None) -> list[NewEvent] | RejectedEvent:
    """Every event checked against the catalog the validator was built for (without one every event
    is unknown_customer); the first rejection refuses the batch and is counted."""
    if validator is None:
        validator = EventValidator(None, now)
    else:
        validator.set_now(now)
    checked = []
    for index, raw in enumerate(events):
        result = validator.check(raw)
        if isinstance(result, Rejection):
            record_rejection(store, environment, now, result.reason)  # per-minute ingestion figures
            return RejectedEvent(index, result)
        checked.append(NewEvent(result.id, result.customer, result.meter, result.ts, result.properties,
                                result.status, result.late))
    return checked


@dataclass
class StoredBatch:
    """Each checked event with the number of the duplicate record kept for it (None: stored)."""

    events: list[NewEvent]
    duplicate_of: list[int | None]
    received_at: int

    @property
    def duplicates(self) -> int:
        return sum(1 for seq in self.duplicate_of if seq is not None)

    @property
    def unmatched(self) -> int:
        return sum(1 for event, seq in zip(self.events, self.duplicate_of, strict=True)
                   if seq is None and event.status != "matched")

    def rows(self) -> list[MeterDataRow]:
        """What was stored, as it reads back: the event, or the duplicate record kept for it."""
        return [MeterDataRow("duplicate" if seq is not None else "event", event.id, seq, event.customer, event.meter,
                             event.ts, event.properties, self.received_at,
                             event.status if seq is None else "duplicate", event.late if seq is None else False, None)
                for event, seq in zip(self.events, self.duplicate_of, strict=True)]


def store_events(store: Store, environment: str, now: datetime, events: list[NewEvent]) -> StoredBatch:
    """Store checked events in one transaction and count them in the per-minute ingestion figures."""
    received = to_micros(now)
    outcome = insert_meter_data(store, environment, events, received)
    record_batch(store, environment, now, events, outcome)
    return StoredBatch(events, outcome, received)


def delete_event(store: Store, environment: str, key: str, now: datetime) -> MeterDataRow:
    """Soft-delete an event by id or reference (idempotent): it leaves usage and is never re-matched."""
    row = get_meter_data(store, environment, key)
    if row is None:
        raise NotFound(f"meter data {key!r} does not exist")
    if row.source == "duplicate":
        raise Conflict(f"{key!r} is a DUPLICATE record, which never takes effect; delete the event {row.id!r} itself")
    deleted = soft_delete(store, environment, row.id, to_micros(now))
    assert deleted is not None  # it was read just above, and deleting is idempotent
    return deleted
