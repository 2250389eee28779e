"""Meter data (Solvimon's events over ratecard's): check a batch whole, store it, read, soft-delete.

A batch is all or nothing for invalid events: the first rejection stores nothing (and is counted
in the per-minute ingestion figures). Stored events are counted there too; a repeated id is kept
as a duplicate record that never takes effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..domain.instants import to_micros
from ..ingest.figures import record_batch, record_rejection
from ..ingest.group_commit import GroupCommitter, StaleCatalog, confirm
from ..ingest.records import RawEvent, Rejection
from ..ingest.validate import EventValidator, validator_at
from ..store import Store
from ..store.catalog_state import Fingerprint
from ..store.events import Row
from ..store.meter_data import MeterDataRow, NewEvent, get_meter_data, insert_meter_data, list_meter_data, soft_delete
from ..store.partitions import archive_refused
from ..store.resources import ConfigChange, Resource, config_change
from .entitlements import usage_changed
from .errors import Conflict, NotFound
from .events import ARCHIVED_MEANWHILE
from .resources.model import METER, PREFIX, PROPERTY, VALUE, View

__all__ = ["MeterDataRow", "NewEvent", "Prepared", "PropertyIn", "RejectedEvent", "StoredBatch", "ValueIn",
           "add_dynamic_resources", "check_events", "confirm_validation", "delete_event", "find_event", "find_events",
           "group_rows", "record_rejection", "store_events", "stored_batch"]

find_event = get_meter_data  # by id (dup_<n> for a duplicate record) or reference; None when unknown
find_events = list_meter_data  # (total, one page), newest first


@dataclass
class ValueIn:
    reference: str
    number: Decimal
    is_amount: bool
    settings: dict[str, Any]
    currency: str | None = None  # an AMOUNT value's ISO 4217 code, kept next to its quantity


# An AMOUNT value `cost` is stored as the number `cost` (what meters aggregate) and its currency
# as the property "cost currency": a key no reference can be (references have no whitespace).
CURRENCY_SUFFIX = " currency"


@dataclass
class PropertyIn:
    reference: str
    value: str
    settings: dict[str, Any]


@dataclass
class Prepared:
    prefix: str
    reference: str
    customer: str
    meter: str
    meter_field: str
    timestamp: datetime
    values: list[ValueIn] = field(default_factory=list)
    properties: list[PropertyIn] = field(default_factory=list)
    subscription: str | None = None  # the subscription that bills the event, if it names one

    def raw(self, line: int) -> RawEvent:
        data: dict[str, Any] = {v.reference: v.number for v in self.values}
        data.update({v.reference + CURRENCY_SUFFIX: v.currency for v in self.values if v.currency is not None})
        data.update({p.reference: p.value for p in self.properties})
        return RawEvent(self.reference, self.customer, self.meter, self.timestamp.isoformat(), data, line,
                        self.subscription)


@dataclass
class RejectedEvent:
    """The first event of a batch that was refused: its position (from 0) and why."""

    index: int
    rejection: Rejection


def check_events(store: Store, environment: str, now: datetime, events: Sequence[RawEvent],
                 validator: EventValidator | None, count_rejection: bool = True,
                 archived: str = "") -> list[NewEvent] | RejectedEvent:
    """Every event checked against the catalog the validator was built for (without one every event
    is unknown_customer, and `archived`, the request's fingerprint's, says which months refuse
    events); the first rejection refuses the batch and is counted."""
    validator = validator_at(validator, now, archived)
    checked = []
    for index, raw in enumerate(events):
        result = validator.check(raw)
        if isinstance(result, Rejection):
            if count_rejection:
                record_rejection(store, environment, now, result.reason)  # per-minute ingestion figures
            return RejectedEvent(index, result)
        checked.append(NewEvent(result.id, result.customer, result.meter, result.ts, result.properties,
                                result.status, result.late, result.subscription))
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
                             event.status if seq is None else "duplicate", event.late if seq is None else False, None,
                             event.subscription if seq is None else None)
                for event, seq in zip(self.events, self.duplicate_of, strict=True)]


def store_events(store: Store, environment: str, now: datetime, events: list[NewEvent],
                 committer: GroupCommitter | None = None, validated_at: Fingerprint | None = None) -> StoredBatch:
    """Store checked events in one transaction and count them in the per-minute ingestion figures.

    With a `committer` the transaction is shared with other requests' (group commit) and written only
    if `validated_at` is still the environment's fingerprint; else StaleCatalog, nothing written."""
    if committer is not None:
        written = committer.write(environment, group_rows(environment, now, events), validated_at,
                                  keep_duplicates=True)
        if written.stale is not None:
            raise StaleCatalog(written.stale)
        outcome = written.duplicates
    else:
        try:
            outcome = insert_meter_data(store, environment, events, to_micros(now))
        except Exception as exc:
            if archive_refused(exc):  # checked just before a month was archived, written just after
                raise Conflict(ARCHIVED_MEANWHILE) from None
            raise
    return stored_batch(store, environment, now, events, outcome)


def group_rows(environment: str, now: datetime, events: list[NewEvent]) -> list[Row]:
    """The rows a group committer writes for checked events (with keep_duplicates=True)."""
    received = to_micros(now)
    return [(environment, e.id, e.customer, e.meter, e.ts, e.properties, received, e.status, e.late, e.subscription)
            for e in events]


def stored_batch(store: Store, environment: str, now: datetime, events: list[NewEvent],
                 duplicate_of: list[int | None]) -> StoredBatch:
    """Checked events once written (`duplicate_of`: the committer's outcome): counted in the
    per-minute figures, the entitlements of their customers told."""
    record_batch(store, environment, now, events, duplicate_of)
    usage_changed(environment, {event.customer for event in events})
    return StoredBatch(events, duplicate_of, to_micros(now))


def confirm_validation(store: Store, environment: str, validated_at: Fingerprint | None) -> None:
    """Raise StaleCatalog when `validated_at` (a fingerprint assumed, not read) is no longer current:
    a refusal judged against it must be judged again."""
    def stale(current: Fingerprint) -> None:
        raise StaleCatalog(current)
    confirm(store, environment, validated_at, stale)


# ---------------------------------------------------------------- meter_validation=DYNAMIC


def add_dynamic_resources(store: Store, environment: str, now: datetime, events: list[Prepared], view: View) -> View:
    """Create what the events name and `view` lacks (meters, values, properties; new values of an
    ENUM property), in one locked transaction; the view to render the events with."""
    if not needs_new_resources(events, view):
        return view
    with config_change(store, environment, to_micros(now)) as change:
        create_dynamic(change, events)
        return View(environment, change.resources, view.document)


def needs_new_resources(events: list[Prepared], view: View) -> bool:
    for event in events:
        meter_row = view.resources.by_reference.get((METER, event.meter))
        if meter_row is None:
            return True
        values = {row.reference for row, _ in view.linked(meter_row, VALUE)}
        properties = {row.reference: row for row, _ in view.linked(meter_row, PROPERTY)}
        if any(v.reference not in values for v in event.values):
            return True
        for prop in event.properties:
            row = properties.get(prop.reference)
            if row is None or (row.body.get("type") == "ENUM" and prop.value not in row.body.get("enum_values", [])):
                return True
    return False


def create_dynamic(change: ConfigChange, events: list[Prepared]) -> None:
    """meter_validation=DYNAMIC: create what the events name and does not exist yet (meter,
    values, properties, all ACTIVE), link it to the meter as not required, and add new values of
    an ENUM property. dynamic_validation_settings set type and required of what is created."""
    resources = change.resources
    for event in events:
        meter_row = resources.by_reference.get((METER, event.meter))
        meter_body = dict(meter_row.body) if meter_row is not None else {
            "name": event.meter, "status": "ACTIVE", "meter_values": [], "meter_properties": []}
        dirty = meter_row is None
        for kind, items in ((VALUE, event.values), (PROPERTY, event.properties)):
            key = "meter_values" if kind == VALUE else "meter_properties"
            links = list(meter_body.get(key, []))
            for item in items:
                row = resources.by_reference.get((kind, item.reference))
                created = row is None
                if created:
                    if kind == VALUE:
                        kind_type = item.settings.get("type") or ("AMOUNT" if item.is_amount else "NUMBER")
                        body: dict[str, Any] = {"name": item.reference, "status": "ACTIVE", "type": kind_type}
                    else:
                        kind_type = item.settings.get("type") or "STRING"
                        body = {"name": item.reference, "status": "ACTIVE", "type": kind_type}
                        if kind_type == "ENUM":
                            body["enum_values"] = [item.value]
                    row = change.put(Resource(change.new_id(PREFIX[kind], kind, item.reference), kind,
                                              item.reference, body, 0, 0))
                elif kind == PROPERTY and row.body.get("type") == "ENUM" and \
                        item.value not in (row.body.get("enum_values") or []):
                    values = [*(row.body.get("enum_values") or []), item.value]
                    if len(values) <= 300:
                        row = change.put(Resource(row.id, kind, row.reference, {**row.body, "enum_values": values},
                                                  0, 0))
                if not any(link["id"] == row.id for link in links):
                    links.append({"id": row.id, "required": bool(item.settings.get("required", False))
                                  if created else False})
                    dirty = True
            meter_body[key] = links
        if dirty:
            meter_id = meter_row.id if meter_row is not None else change.new_id(PREFIX[METER], METER, event.meter)
            change.put(Resource(meter_id, METER, event.meter, meter_body, 0, 0))


def delete_event(store: Store, environment: str, key: str, now: datetime) -> MeterDataRow:
    """Soft-delete an event by id or reference (idempotent): it leaves usage and is never re-matched."""
    row = get_meter_data(store, environment, key)
    if row is None:
        raise NotFound(f"meter data {key!r} does not exist")
    if row.source == "duplicate":
        raise Conflict(f"{key!r} is a DUPLICATE record, which never takes effect; delete the event {row.id!r} itself")
    deleted = soft_delete(store, environment, row.id, to_micros(now))
    assert deleted is not None  # it was read just above, and deleting is idempotent
    usage_changed(environment, [row.customer])
    return deleted
