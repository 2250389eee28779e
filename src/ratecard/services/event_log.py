"""Ingestion through an event log (NATS JetStream): what `ratecard serve --log` and `ratecard worker` run.

A server checks each event's shape (with the environment's cached validator, as the embedded path
does), publishes the valid ones and answers once JetStream persisted them. Workers pull batches and
store them with `import_batch`, the embedded path's own use case, then acknowledge. See
ratecard.ingest.log for the stream and docs/scaling.md for the guarantees.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..catalog import Catalog
from ..clock import now as clock_now
from ..ingest.log import (
    DEFAULT_ACK_WAIT,
    DEFAULT_DEDUP_WINDOW,
    DEFAULT_STREAM,
    Consumer,
    Delivery,
    LogError,
    LogSettings,
    Publisher,
    check_stream,
)
from ..ingest.records import RawEvent, Rejection
from ..ingest.validate import EventValidator, validator_at
from ..store import Store
from ..store.catalog_state import fingerprint
from .catalog import catalog_at
from .errors import InvalidInput, ServiceError
from .events import LateWindows, import_batch

__all__ = ["DEFAULT_ACK_WAIT", "DEFAULT_DEDUP_WINDOW", "DEFAULT_STREAM", "LogSettings", "LogUnavailable",
           "QueuedBatch", "WorkerStats", "check_for_log", "log_settings", "prepare_log", "publisher_from_environment",
           "queue_batch", "run_worker"]

# what `ratecard serve --log` hands its server processes
ENV_URL = "RATECARD_EVENT_LOG"
ENV_STREAM = "RATECARD_EVENT_LOG_STREAM"
ENV_DEDUP = "RATECARD_EVENT_LOG_DEDUP_WINDOW"


class LogUnavailable(ServiceError):
    """The log did not confirm a batch: nothing is promised, the client sends it again."""


def log_settings(url: str, stream: str = DEFAULT_STREAM, dedup_window: float = DEFAULT_DEDUP_WINDOW,
                 ack_wait: float = DEFAULT_ACK_WAIT) -> LogSettings:
    try:
        return LogSettings(url, stream=stream, dedup_window=dedup_window, ack_wait=ack_wait)
    except LogError as exc:
        raise InvalidInput(str(exc)) from None


def prepare_log(settings: LogSettings) -> dict[str, str]:
    """Create (or check) the stream once, before the server processes start; returns the environment
    variables that hand the settings to them (`publisher_from_environment` reads them)."""
    try:
        asyncio.run(check_stream(settings))
    except LogError as exc:
        raise LogUnavailable(str(exc)) from None
    return {ENV_URL: settings.url, ENV_STREAM: settings.stream, ENV_DEDUP: repr(settings.dedup_window)}


def publisher_from_environment() -> Publisher | None:
    """The server process's publisher when `serve --log` started it, else None (the embedded default)."""
    url = os.environ.get(ENV_URL)
    if not url:
        return None
    return Publisher(LogSettings(url, stream=os.environ.get(ENV_STREAM, DEFAULT_STREAM),
                                 dedup_window=float(os.environ.get(ENV_DEDUP, DEFAULT_DEDUP_WINDOW))))


@dataclass
class QueuedBatch:
    """One request's events: those to publish (id, event), those refused, then what the log said."""

    received: int
    events: list[tuple[str, RawEvent]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    queued: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": False,
            "received": self.received,
            "accepted": len(self.events),
            "queued": self.queued,
            "duplicates": self.duplicates,
            "rejected": dict(Counter(r.reason for r in self.rejections)),
            "errors": [{"index": r.line, "id": r.event_id, "reason": r.reason, "message": r.message}
                       for r in self.rejections],
        }


def check_for_log(environment: str, now: datetime, records: list[RawEvent | Rejection],
                  validator: EventValidator | None, archived: str = "") -> QueuedBatch:
    """Refuse what the embedded path would refuse (shape, the months archived, and the catalog's
    required fields with its validator; without one `archived`, the fingerprint's, names the months);
    the rest is published as received. Matching happens in the worker, which checks again."""
    validator = validator_at(validator, now, archived)
    batch = QueuedBatch(len(records))
    for record in records:
        if type(record) is not RawEvent:
            batch.rejections.append(record)  # type: ignore[arg-type]
            continue
        row = validator.check_row(record, environment, 0)
        if type(row) is Rejection:
            batch.rejections.append(row)
        else:
            batch.events.append((row[1], record))  # type: ignore[index]
    return batch


async def queue_batch(publisher: Publisher, environment: str, batch: QueuedBatch) -> QueuedBatch:
    if batch.events:
        try:
            published = await publisher.publish(environment, batch.events)
        except LogError as exc:
            raise LogUnavailable(f"{exc}; send the batch again (resends are dropped as duplicates)") from None
        batch.queued, batch.duplicates = published.queued, published.duplicates
    return batch


class _Catalogs:
    """A worker's current catalog and validator per environment (rebuilt when a version is applied,
    its late windows re-read when an invoice is finalized), as the server's catalog cache does."""

    def __init__(self) -> None:
        self._states: dict[str, tuple[int, Catalog, EventValidator, LateWindows]] = {}

    def current(self, store: Store, environment: str, now: datetime) -> tuple[EventValidator | None, Catalog | None]:
        """Without a catalog (None, None): import_batch then builds a validator reading the archived months."""
        stamp = fingerprint(store, environment)
        if stamp.catalog_version is None:
            return None, None
        state = self._states.get(environment)
        if state is None or state[0] != stamp.catalog_version:
            catalog = catalog_at(store, stamp.catalog_version, environment)
            if catalog is None:
                return None, None
            state = (stamp.catalog_version, catalog, EventValidator(catalog, now), LateWindows())
        state[3].refresh(store, environment, state[2], stamp.finals)
        state[2].follow_archived(stamp.archived)
        self._states[environment] = state
        return state[2], state[1]


@dataclass
class WorkerStats:
    """What one worker did; latencies are event-to-billable: the server's acceptance to the worker's commit,
    over the last KEEP events stored."""

    consumed: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    unreadable: int = 0
    batches: int = 0
    retries: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=WorkerStats.KEEP))

    KEEP = 100_000

    def percentile(self, fraction: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def as_dict(self) -> dict[str, Any]:
        p50, p99 = self.percentile(0.5), self.percentile(0.99)
        return {"consumed": self.consumed, "stored": self.stored, "duplicates": self.duplicates,
                "rejected": self.rejected, "unreadable": self.unreadable, "batches": self.batches,
                "retries": self.retries,
                "latency_ms": {"p50": round(p50, 2) if p50 is not None else None,
                               "p99": round(p99, 2) if p99 is not None else None,
                               "samples": len(self.latencies_ms)}}


def _store_deliveries(store: Store, catalogs: _Catalogs, deliveries: list[Delivery], stats: WorkerStats) -> None:
    """Store one pulled batch, grouped by environment, through the embedded path's use case."""
    now = clock_now()
    by_environment: dict[str, list[RawEvent | Rejection]] = {}
    for delivery in deliveries:
        if delivery.event is not None:
            by_environment.setdefault(delivery.environment, []).append(delivery.event)
    for environment, records in by_environment.items():
        validator, catalog = catalogs.current(store, environment, now)
        report = import_batch(store, environment, now, records, False, validator, catalog)
        stats.stored += report.stored
        stats.duplicates += report.duplicates
        stats.rejected += sum(report.rejected.values())


async def run_worker(store: Store, settings: LogSettings, *, batch: int, wait: float, stop: asyncio.Event,
                     on_batch: Callable[[WorkerStats], None] | None = None) -> WorkerStats:
    """Pull, store, acknowledge, until `stop` is set (the batch in hand is finished first).

    A batch the store could not take (database down) is handed back for redelivery after a pause;
    a message that is not an event is terminated (JetStream never redelivers it)."""
    consumer = Consumer(settings, batch)
    try:
        await consumer.open()
    except LogError as exc:
        raise LogUnavailable(str(exc)) from None
    stats = WorkerStats()
    catalogs = _Catalogs()
    lock = threading.Lock()  # one batch at a time per worker: the store thread is never shared

    def store_batch(deliveries: list[Delivery]) -> None:
        with lock:
            _store_deliveries(store, catalogs, deliveries, stats)

    try:
        while not stop.is_set():
            deliveries = await consumer.fetch(wait)
            if not deliveries:
                continue
            unreadable = [d for d in deliveries if d.event is None]
            readable = [d for d in deliveries if d.event is not None]
            try:
                await asyncio.to_thread(store_batch, readable)
            except Exception:  # noqa: BLE001 - the store failed: nothing acknowledged, redelivered later
                stats.retries += 1
                await consumer.retry_later(readable, delay=1.0)
                await asyncio.sleep(1.0)
                continue
            billable_us = time.time_ns() // 1000
            await consumer.ack(readable)
            await consumer.drop(unreadable)
            stats.consumed += len(deliveries)
            stats.unreadable += len(unreadable)
            stats.batches += 1
            stats.latencies_ms.extend((billable_us - d.accepted_us) / 1000 for d in readable
                                      if d.accepted_us is not None)
            if on_batch is not None:
                on_batch(stats)
    finally:
        await consumer.close()
    return stats
