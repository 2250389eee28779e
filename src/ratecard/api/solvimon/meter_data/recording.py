"""Storing Solvimon events: all or nothing for invalid ones, resources created under
DYNAMIC, per-minute figures and metrics counted, each stored event rendered back."""

from __future__ import annotations

from typing import Any

from ....ingest.figures import record_batch, record_rejection
from ....ingest.records import Rejection
from ....ingest.validate import EventValidator
from ....store.meter_data import MeterDataRow, NewEvent, get_meter_data, insert_meter_data, soft_delete
from ....store.resources import config_change
from ...context import Caller
from ...errors import invalid_operation, not_found
from ..config import View, snapshot
from .checking import check_static, needs_new_resources, rejection_error
from .dynamic import create_dynamic
from .reading import prepare
from .rendering import render


def record_events(caller: Caller, items: list[Any], prefixes: list[str], validation: str) -> list[dict[str, Any]]:
    """Validate every event (all or nothing), create DYNAMIC resources, store, render."""
    store, env, moment = caller.store, caller.environment, caller.now
    snap = snapshot(caller)
    events = [prepare(item, prefix, snap.view, moment) for item, prefix in zip(items, prefixes, strict=True)]
    if validation == "STATIC":
        for event in events:
            check_static(event, snap.view)
    if snap.catalog_state is not None:
        validator = snap.catalog_state.validator
        validator.set_now(moment)
    else:
        validator = EventValidator(None, moment)  # no catalog: every event is NOT_MATCHED (unknown customer)
    checked = []
    for index, event in enumerate(events):
        result = validator.check(event.raw(index + 1))
        if isinstance(result, Rejection):
            record_rejection(store, env, moment, result.reason)  # per-minute ingestion figures
            raise rejection_error(result, event.prefix)
        checked.append(NewEvent(result.id, result.customer, result.meter, result.ts, result.properties,
                                result.status, result.late))
    received = caller.now_us
    view = snap.view
    if validation == "DYNAMIC" and needs_new_resources(events, snap.view):
        with config_change(store, env, received) as change:
            create_dynamic(change, events)
            view = View(env, change.resources, snap.view.document)
    outcome = insert_meter_data(store, env, checked, received)
    record_batch(store, env, moment, checked, outcome)  # per-minute ingestion figures
    duplicates = sum(1 for seq in outcome if seq is not None)
    unmatched = sum(1 for event, seq in zip(checked, outcome, strict=True) if seq is None and event.status != "matched")
    caller.metrics.observe_import(len(checked), duplicates, unmatched, {})
    rendered = []
    for event, seq in zip(checked, outcome, strict=True):
        row = MeterDataRow("duplicate" if seq is not None else "event", event.id, seq, event.customer, event.meter,
                           event.ts, event.properties, received, event.status if seq is None else "duplicate",
                           event.late if seq is None else False, None)
        rendered.append(render(view, row))
    return rendered


def delete_event(caller: Caller, key: str) -> dict[str, Any]:
    """Soft-delete an event by id or reference (idempotent); returns it rendered."""
    row = get_meter_data(caller.store, caller.environment, key)
    if row is None:
        raise not_found("meter data", key)
    if row.source == "duplicate":
        raise invalid_operation(f"{key!r} is a DUPLICATE record, which never takes effect; delete the event "
                                f"{row.id!r} itself")
    deleted = soft_delete(caller.store, caller.environment, row.id, caller.now_us)
    assert deleted is not None
    return render(snapshot(caller).view, deleted)
