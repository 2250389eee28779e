"""Storing Solvimon events: all or nothing for invalid ones, resources created under
DYNAMIC, per-minute figures and metrics counted, each stored event rendered back."""

from __future__ import annotations

from typing import Any

from ....services import meter_data
from ...context import Caller
from ..config import snapshot
from .checking import check_static, rejection_error
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
    validator = snap.catalog_state.validator if snap.catalog_state is not None else None
    checked = meter_data.check_events(store, env, moment, [event.raw(index + 1) for index, event in enumerate(events)],
                                      validator)
    if isinstance(checked, meter_data.RejectedEvent):
        raise rejection_error(checked.rejection, events[checked.index].prefix)
    view = snap.view
    if validation == "DYNAMIC":
        view = meter_data.add_dynamic_resources(store, env, moment, events, view)
    stored = meter_data.store_events(store, env, moment, checked)
    caller.metrics.observe_import(len(checked), stored.duplicates, stored.unmatched, {})
    return [render(view, row) for row in stored.rows()]


def delete_event(caller: Caller, key: str) -> dict[str, Any]:
    """Soft-delete an event by id or reference (idempotent); returns it rendered."""
    deleted = meter_data.delete_event(caller.store, caller.environment, key, caller.now)
    return render(snapshot(caller).view, deleted)
