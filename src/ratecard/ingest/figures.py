"""Ingestion figures per minute, the counting side: what each import (a file, an API batch) did,
counted once per import call into `ingestion_counters` (golive/monitor.py reads them back).

Metrics: `accepted` (new events stored), `rejected` (by reason), `duplicate` (an id already
stored), `unmatched` (by status: unknown_customer, unknown_meter, no_subscription, …) and `late`
(stored for a period whose invoice is final). A minute is the minute the events were received
("now" of the import). The counting never fails an ingestion: a counter that cannot be written
is logged and dropped.

Counts are added up in memory per process and written at most once a second (one upsert per
environment and minute), by a timer, at exit, and before this process reads the figures. One
write transaction per API request would double the latency of small batches on SQLite
(measured: 11 -> 21 ms for 10 events); the price is that a process killed hard loses up to a
second of figures (never events), and another process sees them up to a second late.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..domain.instants import to_micros
from ..store import Store
from ..store.monitoring import MINUTE_US, add_counters
from .records import ALREADY_HELD

log = logging.getLogger(__name__)

def minute_of(micros: int) -> int:
    return micros - micros % MINUTE_US


FLUSH_SECONDS = 1.0
_lock = threading.Lock()
_write_lock = threading.Lock()  # held while counts are written: a closing store waits for the timer's write
# id(store) -> (store, (environment, minute) -> (metric, reason) -> count)
_pending: dict[int, tuple[Store, dict[tuple[str, int], dict[tuple[str, str], int]]]] = {}
_timer: threading.Timer | None = None


def record(store: Store, environment: str, now: datetime, counts: Mapping[tuple[str, str], int]) -> None:
    """Add one ingestion's counts ((metric, reason) -> n) to the minute of `now`: in memory now,
    in the database within FLUSH_SECONDS. Never raises."""
    global _timer
    key = (environment, minute_of(to_micros(now)))
    with _lock:
        held = _pending.get(id(store))
        if held is None:
            # a store closed before the timer fires gets its figures first, not a write after it
            # closed (which on SQLite would recreate a database file its owner is removing)
            store.before_dispose("ingestion figures", lambda: flush_store(store))
            held = _pending[id(store)] = (store, {})
        minute = held[1].get(key)
        if minute is None:
            minute = held[1][key] = {}
        # plain additions: a Counter's update cost more than the rest of a single event's figures
        for name, n in counts.items():
            if n:
                minute[name] = minute.get(name, 0) + n
        if _timer is None:
            _timer = threading.Timer(FLUSH_SECONDS, flush)
            _timer.daemon = True
            _timer.start()


def flush() -> None:
    """Write every count held in memory (one upsert per store, environment and minute). Returns
    once every count recorded before the call is in the database, also those another thread (the
    timer) took just before and is still writing: a reader that flushes first sees them all."""
    global _timer
    # the write lock before the counts are taken: whoever took counts writes them before the next
    # flush can return (taking them and then waiting for the lock left a window where a reader's
    # flush found nothing to take and read the database before the timer's write committed)
    with _write_lock:
        with _lock:
            taken = list(_pending.values())
            _pending.clear()
            if _timer is not None:
                _timer.cancel()
                _timer = None
        for store, by_minute in taken:
            _write(store, by_minute)


def flush_store(store: Store) -> None:
    """Write the counts held for this one store now (it is about to close); returns once they and
    any the timer is writing are in the database."""
    with _write_lock:
        with _lock:
            entry = _pending.pop(id(store), None)
        if entry is not None:
            _write(*entry)


def _write(store: Store, by_minute: dict[tuple[str, int], dict[tuple[str, str], int]]) -> None:
    """Upsert the counts; the caller holds _write_lock."""
    for (environment, minute), counts in sorted(by_minute.items()):
        try:
            add_counters(store, environment, minute, dict(counts))
        except Exception as exc:  # noqa: BLE001 - figures must never fail an ingestion (or an exit)
            log.warning("ingestion figures of %s (minute %s) were not written: %s", environment, minute,
                        str(exc).splitlines()[0])


atexit.register(flush)


def record_import(store: Store, environment: str, now: datetime, report: Any) -> None:
    """The importer's hook: count one import call from its report (nothing for a dry run).

    Unmatched and late come from the report's flags, so, as in the import report, they count
    every event so flagged in the call, a duplicate resubmission included."""
    if report.dry_run:
        return
    counts = {("accepted", ""): report.stored, ("duplicate", ""): report.duplicates}
    for reason, n in report.rejected.items():
        counts["rejected", reason] = counts.get(("rejected", reason), 0) + n
    for flag, n in report.flags.items():
        if flag == "late":
            counts["late", ""] = counts.get(("late", ""), 0) + n
        elif flag not in ALREADY_HELD:
            counts["unmatched", flag] = counts.get(("unmatched", flag), 0) + n
    record(store, environment, now, counts)


def record_batch(store: Store, environment: str, now: datetime, events: Sequence[Any],
                 duplicates_of: Sequence[Any]) -> None:
    """Solvimon's ingest hook: `events` stored with their status and late flag; `duplicates_of[i]`
    is not None when events[i] was a duplicate (kept as a DUPLICATE record, not stored again)."""
    counts: Counter = Counter()
    for event, duplicate in zip(events, duplicates_of, strict=True):
        if duplicate is not None:
            counts["duplicate", ""] += 1
            continue
        counts["accepted", ""] += 1
        if event.status != "matched":
            counts["unmatched", event.status] += 1
        elif event.late:
            counts["late", ""] += 1
    record(store, environment, now, counts)


def record_rejection(store: Store, environment: str, now: datetime, reason: str) -> None:
    """One rejected event (Solvimon's ingest refuses its whole batch for it)."""
    record(store, environment, now, Counter({("rejected", reason): 1}))
