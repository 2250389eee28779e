"""Storing Solvimon events: all or nothing for invalid ones, resources created under
DYNAMIC, per-minute figures and metrics counted, each stored event rendered back."""

from __future__ import annotations

from typing import Any

from ....services import meter_data
from ....services.events import GroupCommitter, StaleCatalog
from ...context import Caller
from ..config import snapshot
from .checking import check_static, rejection_error
from .reading import prepare
from .rendering import render

STALE_RETRIES = 5


def record_events(caller: Caller, items: list[Any], prefixes: list[str], validation: str) -> list[dict[str, Any]]:
    """Validate every event (all or nothing), create DYNAMIC resources, store, render.

    Through the process's group committer when it takes this many events: if the catalog or the
    resources moved since this process last looked, the events are validated again."""
    committer = caller.group_commit(len(items))
    if committer is None:
        return _record(caller, items, prefixes, validation, None)
    for _ in range(STALE_RETRIES):
        with committer.announced():
            try:
                return _record(caller, items, prefixes, validation, committer)
            except StaleCatalog as stale:
                caller.validated_again(stale.current)
    return _record(caller, items, prefixes, validation, None)


def _record(caller: Caller, items: list[Any], prefixes: list[str], validation: str,
            committer: GroupCommitter | None) -> list[dict[str, Any]]:
    store, env, moment = caller.store, caller.environment, caller.now
    # with a committer the fingerprint may be assumed: a refusal is confirmed against the current one
    # (and counted) only then; a write is confirmed by the committer's transaction
    validated_at = caller.fingerprint if committer is not None else None
    try:
        snap = snapshot(caller)
        events = [prepare(item, prefix, snap.view, moment) for item, prefix in zip(items, prefixes, strict=True)]
        if validation == "STATIC":
            for event in events:
                check_static(event, snap.view)
    except StaleCatalog:
        raise
    except Exception:
        meter_data.confirm_validation(store, env, validated_at)
        raise
    validator = snap.catalog_state.validator if snap.catalog_state is not None else None
    checked = meter_data.check_events(store, env, moment, [event.raw(index + 1) for index, event in enumerate(events)],
                                      validator, count_rejection=committer is None,
                                      archived=caller.fingerprint.archived)
    if isinstance(checked, meter_data.RejectedEvent):
        if committer is not None:
            meter_data.confirm_validation(store, env, validated_at)
            meter_data.record_rejection(store, env, moment, checked.rejection.reason)
        raise rejection_error(checked.rejection, events[checked.index].prefix)
    view = snap.view
    if validation == "DYNAMIC":
        view = meter_data.add_dynamic_resources(store, env, moment, events, view)
    stored = meter_data.store_events(store, env, moment, checked, committer, validated_at)
    caller.metrics.observe_import(len(checked), stored.duplicates, stored.unmatched, {})
    return [render(view, row) for row in stored.rows()]


def delete_event(caller: Caller, key: str) -> dict[str, Any]:
    """Soft-delete an event by id or reference (idempotent); returns it rendered."""
    deleted = meter_data.delete_event(caller.store, caller.environment, key, caller.now)
    return render(snapshot(caller).view, deleted)
