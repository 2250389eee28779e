"""Import an events file: read, validate, match and store in batches, with a report.

Constant memory: the file is streamed and written in batches of BATCH_SIZE events, each batch
one transaction, so an interrupted import keeps every batch already committed and a re-run
skips them as duplicates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..catalog import Catalog
from ..store import Store
from ..store.events import existing_ids, insert_events
from .readers import read_events
from .records import Event, RawEvent, Rejection
from .validate import EventValidator, to_micros

BATCH_SIZE = 10_000
SAMPLE_SIZE = 5


@dataclass
class ImportReport:
    """What happened to every event of a file (or request)."""

    source: str
    dry_run: bool
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)  # the first few, for the report
    samples: dict[str, list[str]] = field(default_factory=dict)
    coverage: Counter = field(default_factory=Counter)  # (customer, meter) -> accepted events

    @property
    def accepted(self) -> int:
        return self.read - sum(self.rejected.values())

    def note_sample(self, key: str, value: str) -> None:
        bucket = self.samples.setdefault(key, [])
        if len(bucket) < SAMPLE_SIZE:
            bucket.append(value)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "read": self.read,
            "accepted": self.accepted,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": dict(self.rejected),
            "flags": dict(self.flags),
            "rejections": [
                {"line": r.line, "reason": r.reason, "message": r.message, "id": r.event_id}
                for r in self.rejections
            ],
            "samples": self.samples,
            "coverage": [
                {"customer": c, "meter": m, "events": n} for (c, m), n in sorted(self.coverage.items())
            ],
        }


def import_file(
    store: Store,
    catalog: Catalog | None,
    path: Path,
    now: datetime,
    *,
    environment: str = "live",
    dry_run: bool = False,
    file_format: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    keep_rejections: int = 1000,
    on_rejection: Callable[[Rejection], None] | None = None,
) -> ImportReport:
    report = ImportReport(str(path), dry_run)
    import_records(store, catalog, read_events(path, file_format), now, report, environment=environment,
                   on_progress=on_progress, keep_rejections=keep_rejections, on_rejection=on_rejection)
    return report


def import_records(
    store: Store,
    catalog: Catalog | None,
    records: Iterable[RawEvent | Rejection],
    now: datetime,
    report: ImportReport,
    *,
    environment: str = "live",
    on_progress: Callable[[int], None] | None = None,
    keep_rejections: int = 1000,
    on_rejection: Callable[[Rejection], None] | None = None,
) -> ImportReport:
    validator = EventValidator(catalog, now)
    received = to_micros(now)
    seen_in_dry_run: set[str] = set()
    batch: list[Event] = []

    def flush() -> None:
        if not batch:
            return
        if report.dry_run:
            _dry_run_duplicates(store, environment, batch, seen_in_dry_run, report)
        else:
            rows = [(environment, e.id, e.customer, e.meter, e.ts, e.properties, received, e.status, False)
                    for e in batch]
            stored = insert_events(store, rows)
            report.stored += stored
            report.duplicates += len(rows) - stored
            if len(rows) != stored:
                report.flags["duplicate"] += len(rows) - stored
        if on_progress is not None:
            on_progress(len(batch))
        batch.clear()

    for record in records:
        report.read += 1
        result = validator.check(record) if isinstance(record, RawEvent) else record
        if isinstance(result, Rejection):
            report.rejected[result.reason] += 1
            if len(report.rejections) < keep_rejections:
                report.rejections.append(result)
            if on_rejection is not None:
                on_rejection(result)
            if on_progress is not None:
                on_progress(1)
            continue
        if result.status != "matched":
            report.flags[result.status] += 1
            report.note_sample(result.status, result.id)
        report.coverage[(result.customer, result.meter)] += 1
        batch.append(result)
        if len(batch) >= BATCH_SIZE:
            flush()
    flush()
    return report


def _dry_run_duplicates(store: Store, environment: str, batch: list[Event], seen: set[str],
                        report: ImportReport) -> None:
    stored = existing_ids(store, environment, (e.id for e in batch))
    for event in batch:
        if event.id in stored or event.id in seen:
            report.duplicates += 1
            report.flags["duplicate"] += 1
            report.note_sample("duplicate", event.id)
        else:
            seen.add(event.id)
