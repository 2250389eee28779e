"""`ratecard rollups rebuild|check|status`: build the continuous roll-ups of the current catalog's
meters from the raw events, compare them with the raw events, list them (docs/rollups.md)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..billing.run import charged_meters
from ..catalog import MeterSpec
from ..domain.instants import to_micros
from ..store import Store, rollups
from .catalog import current_catalog
from .errors import ServiceError

log = logging.getLogger(__name__)


def catalog_meters(store: Store, environment: str) -> list[MeterSpec]:
    """Every meter of the current catalog, and the per-dimension meter of every charge priced per
    dimension (the invoice run measures those as meters of their own)."""
    _, catalog = current_catalog(store, environment)
    meters = {meter.code: meter for meter in catalog.meters.values()}
    for meter in charged_meters(catalog, catalog.subscriptions.values()):
        meters.setdefault(meter.code, meter)
    return [meters[code] for code in sorted(meters)]


def rebuild_rollups(store: Store, environment: str, now: datetime, *, meter: str | None = None,
                    dry_run: bool = False, force: bool = False,
                    on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Build the roll-ups the catalog's meters need and are not ready (all of `meter`'s with --meter,
    even when ready: a rebuild from the raw events), drop those no meter uses. Until built, the
    invoice run reads a meter's raw events; so this can run any time, ingest going on."""
    meters = catalog_meters(store, environment)
    if meter is not None:
        chosen = [item for item in meters if item.code == meter or item.meter_code == meter]
        if not chosen:
            raise ServiceError(f"unknown meter {meter!r} in the current catalog")
        meters, force = chosen, True
    found = rollups.plan(store, environment, meters, force)
    drop = [] if meter is not None else found.drop
    document: dict[str, Any] = {
        "dry_run": dry_run,
        "build": [{"key": key, "meters": codes} for key, _, codes in found.build],
        "ready": [{"key": key, "meters": codes} for key, codes in found.keep],
        "drop": drop,
        "events": {},
    }
    if dry_run:
        return document
    rollups.drop(store, environment, drop)
    for key, definition, codes in found.build:
        def progress(done: int, total: int, codes: str = codes) -> None:
            if on_progress is not None:
                on_progress(codes, done, total)

        document["events"][codes] = rollups.build(store, environment, key, definition, to_micros(now), progress)
    return document


def check_rollups(store: Store, environment: str) -> dict[str, Any]:
    """Every roll-up against the raw events: rows compared and the ones that differ."""
    with store.engine.connect() as connection:
        entries = rollups.registered(connection, environment)
    codes = {rollups.key_of(definition): meter.code for meter in catalog_meters(store, environment)
             if (definition := rollups.definition_of(meter)) is not None}
    report = []
    for entry in sorted(entries, key=lambda item: item.key):
        compared, problems = rollups.differences(store, environment, entry)
        report.append({"key": entry.key, "meter": codes.get(entry.key), "state": entry.state, "rows": compared,
                       "differences": problems})
    return {"rollups": report, "ok": all(not item["differences"] for item in report)}


def rollup_status(store: Store, environment: str) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        entries = rollups.registered(connection, environment)
        done = rollups.progress(connection, environment)
    codes = {rollups.key_of(definition): meter.code for meter in catalog_meters(store, environment)
             if (definition := rollups.definition_of(meter)) is not None}
    return [{"key": entry.key, "meter": codes.get(entry.key), "state": entry.state,
             "customers_done": done.get(entry.key, (0, 0))[0], "customers": done.get(entry.key, (0, 0))[1]}
            for entry in entries]


def rebuild_in_background(store: Store, environment: str, now: datetime) -> threading.Thread | None:
    """After a new catalog version: when this environment uses roll-ups (one was ever built) and a
    meter's definition changed (or a meter is new), rebuild in a background thread; until it is
    done the invoice run reads those meters' raw events. `ratecard rollups status` shows the
    progress. None when there is nothing to do."""
    with store.engine.connect() as connection:
        if not rollups.registered(connection, environment):
            return None
    found = rollups.plan(store, environment, catalog_meters(store, environment))
    if not found.build and not found.drop:
        return None

    def work() -> None:
        try:
            rebuild_rollups(store, environment, now)
        except Exception:  # a background thread has no caller: the next rebuild or status tells
            log.exception("rebuilding the roll-ups after a catalog change failed")

    thread = threading.Thread(target=work, name=f"rollups-{environment}", daemon=True)
    thread.start()
    return thread
