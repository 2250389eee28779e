"""Import an events file: read, validate, match and store in batches, with a report.

Constant memory: the file is streamed and written in batches of BATCH_SIZE events, each batch
one transaction, so an interrupted import keeps every batch already committed and a re-run
skips them as duplicates.

An event whose id is already held (stored before, or earlier in the file) is never stored again:
the first write wins. Each is flagged `duplicate`; those whose content (customer, meter,
timestamp, properties, subscription named) differs from the event held are also flagged
`conflict`, and listed with their line: the first write won over other data, which someone
should look at.
Only a batch with ids not inserted pays for the comparison: one SELECT of that batch's ids.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from ..catalog import Catalog
from ..collector import cyclic_gc_paused
from ..domain.instants import to_micros
from ..store import Store
from ..store.events import EventWriter, Row, refresh_statistics, stored_contents
from ..store.invoices import finalized_windows
from ..store.partitions import guarded_spans
from .figures import record_import
from .readers import count_rows, meter_streams, read_events
from .records import ALREADY_HELD, RawEvent, Rejection, event_content
from .validate import OUTSIDE_REASONS, EventValidator

BATCH_SIZE = 25_000
SAMPLE_SIZE = 5
LISTED_CONFLICTS = 100


@dataclass
class ImportReport:
    """What happened to every event of a file (or request)."""

    source: str
    dry_run: bool
    read: int = 0
    stored: int = 0
    duplicates: int = 0  # ids already held, whatever their content (flags["conflict"]: content differs)
    rejected: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)  # the first few, for the report
    samples: dict[str, list[str]] = field(default_factory=dict)
    conflicts: list[tuple[str, int]] = field(default_factory=list)  # the first (id, line) conflicts
    coverage: Counter = field(default_factory=Counter)  # (customer, meter) -> accepted events
    # (customer, one of OUTSIDE_REASONS) -> no_subscription events
    outside: Counter = field(default_factory=Counter)
    # (customer, meter, one of UNPRICED_REASONS) -> unpriced events: taken, yet counted by no charge
    unpriced: Counter = field(default_factory=Counter)
    # the rows were validated against an older catalog and not written: the caller validates
    # again with a new report, and this one is counted nowhere
    discarded: bool = False

    @property
    def accepted(self) -> int:
        return self.read - sum(self.rejected.values())

    def flagged_not_held(self) -> int:
        """Events flagged for anything but an id already held (unmatched, late)."""
        return sum(n for flag, n in self.flags.items() if flag not in ALREADY_HELD)

    def note_sample(self, key: str, value: str) -> None:
        bucket = self.samples.setdefault(key, [])
        if len(bucket) < SAMPLE_SIZE:
            bucket.append(value)

    def note_held(self, tally: HeldTally) -> None:
        """Events not stored because their id was already held: all duplicates; conflicts also
        flagged and listed."""
        held = tally.plain + tally.conflicting
        self.duplicates += held
        if held:
            self.flags["duplicate"] += held
        if tally.conflicting:
            self.flags["conflict"] += tally.conflicting
        self.conflicts.extend(tally.listed[: LISTED_CONFLICTS - len(self.conflicts)])

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
            "conflicts": [{"id": event_id, "line": line} for event_id, line in self.conflicts],
            "coverage": [
                {"customer": c, "meter": m, "events": n} for (c, m), n in sorted(self.coverage.items())
            ],
            "outside_subscriptions": self.outside_by_customer(),
            "unpriced": self.unpriced_rows(),
        }

    def unpriced_rows(self) -> list[dict]:
        """Events a subscription takes but no charge counts, per customer, meter and why (UNPRICED_REASONS)."""
        return [{"customer": customer, "meter": meter, "reason": reason, "events": count}
                for (customer, meter, reason), count in sorted(self.unpriced.items())]

    def outside_by_customer(self) -> list[dict]:
        """Events of known customers no subscription takes, per customer and why (OUTSIDE_REASONS)."""
        rows: dict[str, dict] = {}
        for (customer, reason), count in sorted(self.outside.items()):
            rows.setdefault(customer, {"customer": customer, **dict.fromkeys(OUTSIDE_REASONS, 0)})[reason] = count
        return list(rows.values())


@dataclass
class HeldTally:
    """Events whose id was already held, split by content: the same (plain) or not (conflicting)."""

    plain: int = 0
    conflicting: int = 0
    listed: list[tuple[str, int]] = field(default_factory=list)  # (id, line), the first conflicts

    def add(self, event_id: str, line: int, same: bool) -> None:
        if same:
            self.plain += 1
            return
        self.conflicting += 1
        if len(self.listed) < LISTED_CONFLICTS:
            self.listed.append((event_id, line))


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
    on_total: Callable[[int], None] | None = None,
    keep_rejections: int = 1000,
    on_rejection: Callable[[Rejection], None] | None = None,
    validator: EventValidator | None = None,
    writer_factory: Callable[[Store], EventWriter] | None = None,
) -> ImportReport:
    """Import one file (JSONL, JSON array, CSV, Solvimon CSV template or Parquet).

    `now` refuses events from the future and stamps template rows without a timestamp.
    `on_total` gets the number of rows up front when the format knows it cheaply (Parquet).
    `validator` and `writer_factory` redirect the import (a backfill: its window, its table).
    """
    report = ImportReport(str(path), dry_run)
    records = read_events(path, file_format, now=now, streams=meter_streams(catalog))
    if on_total is not None:
        total = count_rows(path, file_format)
        if total is not None:
            on_total(total)
    with cyclic_gc_paused():
        import_records(store, catalog, records, now, report, environment=environment,
                       on_progress=on_progress, keep_rejections=keep_rejections, on_rejection=on_rejection,
                       validator=validator, writer_factory=writer_factory)
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
    validator: EventValidator | None = None,
    background: bool | None = None,
    writer_factory: Callable[[Store], EventWriter] | None = None,
) -> ImportReport:
    """Validate, match and store records in batches. A caller that checks many small batches
    (the API) passes its cached `validator`, and `background=False` to write inline.

    A validator built here knows the service windows of the final invoices, so events inside
    one are stored flagged `late` (a cached validator must be given them: `set_finalized`), and
    the months archived, so events in one are refused (`set_archived`)."""
    if validator is None:
        windows = finalized_windows(store, environment) if catalog is not None else None
        validator = EventValidator(catalog, now, windows, guarded_spans(store))
    received = to_micros(now)
    seen_in_dry_run: dict[str, int] = {}
    batch: list[Row] = []
    lines: list[int] = []  # the line (or index) of each row of the batch, for the conflicts listed
    writer = None if report.dry_run else _start_writer(store, on_progress, background, writer_factory)

    def flush() -> None:
        nonlocal batch, lines
        if not batch:
            return
        _count_batch(report, batch, validator)
        if writer is not None:
            writer.submit(batch, lines)  # the writer owns these lists now
        else:
            _dry_run_duplicates(store, environment, batch, lines, seen_in_dry_run, report)
            if on_progress is not None:
                on_progress(len(batch))
        batch = []
        lines = []

    check = _row_checker(validator)
    read = 0
    try:
        for record in records:
            read += 1
            result = check(record, environment, received) if type(record) is RawEvent else record
            if type(result) is Rejection:
                _note_rejection(report, result, keep_rejections, on_rejection, on_progress)
                continue
            batch.append(result)
            lines.append(record.line)
            if len(batch) >= BATCH_SIZE:
                flush()
        flush()
    finally:
        report.read += read
        if writer is not None:
            _close_writer(writer, report)
        if not report.discarded:
            record_import(store, environment, now, report)  # per-minute ingestion figures
    if stored_enough_to_replan(report.stored):
        refresh_statistics(store)
    return report


def import_checked(store: Store, rows: Sequence[Row], lines: Sequence[int], now: datetime, report: ImportReport, *,
                   environment: str, validator: EventValidator, writer_factory: Callable[[Store], EventWriter]
                   ) -> ImportReport:
    """Rows checked already (the single-event lane checks its event before it is written): counted,
    written and recorded as `import_records` does with what it checks, without checking again."""
    report.read += len(rows)
    writer = _start_writer(store, None, False, writer_factory)
    try:
        if rows:
            _count_batch(report, list(rows), validator)
            writer.submit(list(rows), list(lines))
    finally:
        _close_writer(writer, report)
        if not report.discarded:
            record_import(store, environment, now, report)  # per-minute ingestion figures
    return report


def import_written(store: Store, rows: Sequence[Row], now: datetime, report: ImportReport, *, environment: str,
                   validator: EventValidator) -> ImportReport:
    """Rows checked already and written by the caller, every one of them new (the single-event
    lane's event, inserted): counted and recorded as `import_checked` counts such rows, without
    a writer to hand them to (the writer's bookkeeping was most of a single event's counting)."""
    report.read += len(rows)
    _count_batch(report, list(rows), validator)
    report.stored += len(rows)
    record_import(store, environment, now, report)  # per-minute ingestion figures
    return report


def _start_writer(store: Store, on_progress: Callable[[int], None] | None, background: bool | None,
                  writer_factory: Callable[[Store], EventWriter] | None) -> BackgroundWriter | InlineWriter:
    # PostgreSQL works in its own process, so writing on a second thread overlaps with
    # parsing here; SQLite works inside this process and gains nothing from a thread.
    threaded = store.is_postgres if background is None else background
    kind = BackgroundWriter if threaded else InlineWriter
    return kind((writer_factory or EventWriter)(store), on_progress)


def _close_writer(writer: BackgroundWriter | InlineWriter, report: ImportReport) -> None:
    """Wait for the last batch; rows the store already held are duplicates or conflicts."""
    stored = writer.close()
    report.stored += stored
    report.note_held(writer.held)


def _tally_held(writer: EventWriter, rows: list[Row], lines: list[int], new: int, tally: HeldTally) -> None:
    """Compare the rows of a written batch with what is stored under their ids, when some were
    not inserted. An inserted row is what is stored, so exactly the rows differing from the
    stored event are conflicts; the other rows not inserted are duplicates."""
    held = len(rows) - new
    held_contents = getattr(writer, "held", None)  # a backfill's writer cannot tell: all duplicates
    if not held or held_contents is None:
        tally.plain += held
        return
    stored = held_contents(rows[0][0], (row[1] for row in rows))
    conflicting = 0
    for row, line in zip(rows, lines, strict=True):
        content = stored.get(row[1])
        if content is None:
            continue
        mine = _content(row)
        if content == mine or event_content(*content) == event_content(*mine):
            continue
        conflicting += 1
        tally.add(row[1], line, same=False)
    tally.plain += held - conflicting


def _count_batch(report: ImportReport, batch: list[Row], validator: Any) -> None:
    """A checked batch into the report: coverage, and each row's flag (not matched, or late)."""
    report.coverage.update(map(_coverage_key, batch))
    if all(map(_plainly_matched, batch)):
        return
    for row in batch:
        status = row[7]
        if status != "matched":
            report.flags[status] += 1
            report.note_sample(status, row[1])
            if status == "no_subscription":
                report.outside[(row[2], validator.outside_reason(row[2], row[4], row[3], row[9]))] += 1
            elif status == "unpriced":
                report.unpriced[(row[2], row[3], validator.unpriced_reason(row[2], row[4], row[3], row[9]))] += 1
        elif row[8]:
            report.flags["late"] += 1
            report.note_sample("late", row[1])


def _note_rejection(report: ImportReport, rejection: Rejection, keep: int,
                    on_rejection: Callable[[Rejection], None] | None,
                    on_progress: Callable[[int], None] | None) -> None:
    report.rejected[rejection.reason] += 1
    if len(report.rejections) < keep:
        report.rejections.append(rejection)
    if on_rejection is not None:
        on_rejection(rejection)
    if on_progress is not None:
        on_progress(1)


_coverage_key = itemgetter(2, 3)  # (customer, meter) of an events row
_content = itemgetter(2, 3, 4, 5, 9)  # (customer, meter, ts, properties, subscription): records.event_content


def _plainly_matched(row: Row) -> bool:
    """Matched and not late: nothing to flag."""
    return row[7] == "matched" and not row[8]


def _row_checker(validator: Any) -> Callable[[RawEvent, str, int], Row | Rejection]:
    """The validator's check_row; a validator with only `check` (a backfill's) is adapted."""
    check_row = getattr(validator, "check_row", None)
    if check_row is not None:
        return check_row
    check = validator.check

    def adapted(raw: RawEvent, environment: str, received: int) -> Row | Rejection:
        result = check(raw)
        if type(result) is Rejection:
            return result
        return (environment, result.id, result.customer, result.meter, result.ts, result.properties, received,
                result.status, result.late, result.subscription)

    return adapted


def stored_enough_to_replan(stored: int) -> bool:
    return stored >= 10 * BATCH_SIZE


class InlineWriter:
    """Writes each batch as it comes, on this thread (SQLite)."""

    def __init__(self, writer: EventWriter, on_progress: Callable[[int], None] | None) -> None:
        self.writer = writer
        self.on_progress = on_progress
        self.stored = 0
        self.held = HeldTally()

    def submit(self, rows: list, lines: list[int]) -> None:
        new = self.writer.write(rows)
        self.stored += new
        _tally_held(self.writer, rows, lines, new, self.held)
        if self.on_progress is not None:
            self.on_progress(len(rows))

    def close(self) -> int:
        """Rows new; `held` tells the others apart."""
        self.writer.close()
        return self.stored


class BackgroundWriter:
    """Writes batches on a second thread while the next batch is parsed and validated.

    The drivers release the GIL while the database works, so parsing and writing overlap on
    two cores. At most two batches wait in the queue (bounded memory). A failed write stops
    the import: batches already committed stay committed, later ones are not written.
    """

    def __init__(self, writer: EventWriter, on_progress: Callable[[int], None] | None) -> None:
        self.writer = writer
        self.on_progress = on_progress
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.stored = 0
        self.held = HeldTally()  # filled on the writing thread, read after it ends
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="ratecard-event-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue
            rows, lines = item
            try:
                new = self.writer.write(rows)
                self.stored += new
                _tally_held(self.writer, rows, lines, new, self.held)
                if self.on_progress is not None:
                    self.on_progress(len(rows))
            except BaseException as exc:  # noqa: BLE001 - handed to the importing thread
                self.error = exc

    def submit(self, rows: list, lines: list[int]) -> None:
        if self.error is not None:
            self._raise()
        self.queue.put((rows, lines))

    def close(self) -> int:
        """Wait for every queued batch; returns the rows new (`held` tells the others apart)."""
        self.queue.put(None)
        self.thread.join()
        self.writer.close()
        if self.error is not None:
            self._raise()
        return self.stored

    def _raise(self) -> None:
        error, self.error = self.error, None
        raise error  # type: ignore[misc]


def _dry_run_duplicates(store: Store, environment: str, batch: list[Row], lines: list[int],
                        seen: dict[str, int], report: ImportReport) -> None:
    """What an import would count as duplicates and conflicts: ids stored, or earlier in the
    file (remembered with a hash of their content, not the content)."""
    stored = stored_contents(store, environment, (row[1] for row in batch))
    tally = HeldTally()
    for row, line in zip(batch, lines, strict=True):
        event_id = row[1]
        content = event_content(*_content(row))
        held = stored.get(event_id)
        if held is not None:
            same = event_content(*held) == content
        elif event_id in seen:
            same = seen[event_id] == hash(content)
        else:
            seen[event_id] = hash(content)
            continue
        tally.add(event_id, line, same)
        if same:
            report.note_sample("duplicate", event_id)
    report.note_held(tally)
