"""Event use cases: import a file (or into a pending backfill), list stored events, reprocess."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..catalog import Catalog
from ..domain.instants import to_micros
from ..ingest.group_commit import MAX_EVENTS as MAX_GROUP_EVENTS
from ..ingest.group_commit import MAX_WAIT as MAX_GROUP_WAIT
from ..ingest.group_commit import REQUEST_EVENTS as GROUP_REQUEST_EVENTS
from ..ingest.group_commit import GroupCommitter, GroupWriter, Outcome, StaleCatalog
from ..ingest.importer import ImportReport, import_checked, import_file, import_records, import_written
from ..ingest.readers import ReaderError, decode_json_line
from ..ingest.records import RawEvent, Rejection
from ..ingest.reprocess import reprocess
from ..ingest.validate import OUTSIDE_REASONS, UNPRICED_REASONS, EventValidator, validator_at
from ..store import Store
from ..store.backfills import BackfillError, BackfillNotFound
from ..store.catalog_state import Fingerprint
from ..store.db import batch_writer, reader
from ..store.events import EventWriter, Row, StoredEvent, list_events
from ..store.final_windows import Marks, final_windows_marked, final_windows_since
from ..store.invoices import finalized_windows
from ..store.partitions import archive_refused
from .catalog import current_catalog, optional_catalog
from .entitlements import usage_changed
from .errors import Conflict, InvalidInput, NotFound

# the ingestion types an entry point handles (parsing a request, caching a validator, rendering)
__all__ = ["EVENT_STATUSES", "GROUP_REQUEST_EVENTS", "MAX_GROUP_EVENTS", "MAX_GROUP_WAIT", "OUTSIDE_REASONS",
           "UNPRICED_REASONS", "EventImport", "EventValidator", "GroupCommitter", "ImportReport", "Outcome",
           "RawEvent", "Rejection", "Row", "StaleCatalog", "check_event_status", "check_one", "decode_event",
           "LateWindows", "find_events", "import_batch", "import_events", "late_windows", "reprocess_events"]

EVENT_STATUSES = ("matched", "unmatched", "unknown_customer", "unknown_meter", "no_subscription", "unpriced",
                  "invalid_value")
NO_CATALOG_WARNING = "no catalog applied: every event is stored as unknown_customer"
# a batch checked just before a month was archived and written just after (no group commit to
# check it again): the month's guard refused the write as a whole (store/partitions.py)
ARCHIVED_MEANWHILE = ("a month was archived while these events were checked, and the batch holds events of it: "
                      "nothing of the batch was stored; send it again (those events are then refused as "
                      "archived_period)")


@dataclass
class EventImport:
    report: ImportReport
    catalog_applied: bool
    backfill: str | None = None

    def as_dict(self) -> dict[str, Any]:
        document = self.report.as_dict()
        if self.backfill is not None:
            document["backfill"] = self.backfill
        if not self.catalog_applied:
            document["warning"] = NO_CATALOG_WARNING
        return document


def import_events(
    store: Store,
    path: Path,
    now: datetime,
    *,
    environment: str = "live",
    dry_run: bool = False,
    file_format: str | None = None,
    backfill: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    on_rejection: Callable[[Rejection], None] | None = None,
) -> EventImport:
    """Import one events file against the applied catalog (without one every event is unknown_customer).

    With `backfill`, the events go into that pending backfill (billed once it is closed)."""
    _, catalog = optional_catalog(store, environment)
    target: dict[str, Any] = {}
    if backfill is not None:
        from ..golive.backfill import import_target  # brings billing's corrections: only for backfills

        try:
            validator, writer_factory = import_target(store, catalog, now, backfill, environment)
        except BackfillNotFound as exc:
            raise NotFound(str(exc), field="backfill") from None
        except BackfillError as exc:
            raise Conflict(str(exc), field="backfill") from None
        target = {"validator": validator, "writer_factory": writer_factory}
    try:
        report = import_file(store, catalog, path, now, environment=environment, dry_run=dry_run,
                             file_format=file_format, on_progress=on_progress, on_total=on_total,
                             on_rejection=on_rejection, **target)
    except ReaderError as exc:
        raise InvalidInput(str(exc)) from None
    except BackfillError as exc:  # the backfill was closed or reverted while importing
        raise Conflict(f"{exc}; the batches stored before stay in it", field="backfill") from None
    except Exception as exc:
        if archive_refused(exc):
            raise Conflict(f"{ARCHIVED_MEANWHILE}; the batches stored before stay") from None
        raise
    if not dry_run:
        usage_changed(environment)
    return EventImport(report, catalog is not None, backfill)


def decode_event(position: int, text: bytes) -> RawEvent | Rejection:
    """One event given as a JSON object (`position` from 1 names it in a rejection)."""
    return decode_json_line(position, text)


def late_windows(store: Store, environment: str) -> dict[str, list[tuple[int, int]]]:
    """Per customer, the service windows [start, end) in µs a final invoice billed: an event inside one
    is stored flagged late (a cached validator is given them again whenever an invoice is finalized)."""
    return finalized_windows(store, environment)


class LateWindows:
    """Keeps one cached validator's late windows current as final documents are made, by any process.

    The first refresh reads every final document's windows; the next ones read only the documents
    finalized since, by their numbers (store.final_windows says why that is exact), and add them
    (EventValidator.add_finalized): one new final costs a few indexed lookups, not a read of every
    final invoice's lines. Everything is read again when the database does not continue what was
    read (a sequence went back, as the count of finals does after a restore, or its last document
    read is another one), or when many documents are new at once (FULL_AFTER: one read of all
    costs less than that many lookups)."""

    FULL_AFTER = 5_000

    def __init__(self) -> None:
        self.finals = -1  # the fingerprint's count of finals the windows were brought up to (-1: none)
        self.full_reads = 0  # how many refreshes read everything (the first one among them)
        self._marks: Marks | None = None
        self._lock = threading.Lock()

    def refresh(self, store: Store, environment: str, validator: EventValidator, finals: int) -> None:
        """Bring the validator's windows up to the fingerprint's count of finals (`finals`)."""
        with self._lock:
            if finals == self.finals:
                return
            if finals == 0:  # no final document yet: nothing to read (a later one is read by its number)
                validator.set_finalized({})
                self._marks, self.finals = {}, 0
                return
            store = reader(store)  # connections kept open: opening a SQLite one costs more than these reads
            update = None
            if self._marks is not None:
                # also when the count is below the last one: usually a request's fingerprint read
                # just before another request's, and a sequence that really went back (a restored
                # database) is refused by the read since itself
                update = final_windows_since(store, environment, self._marks, self.FULL_AFTER)
            if update is None:
                windows, self._marks = final_windows_marked(store, environment)
                validator.set_finalized(windows)
                self.full_reads += 1
            else:
                windows, self._marks = update
                validator.add_finalized(windows)
            self.finals = finals


def import_batch(store: Store, environment: str, now: datetime, records: list[RawEvent | Rejection], dry_run: bool,
                 validator: EventValidator | None, catalog: Catalog | None,
                 committer: GroupCommitter | None = None, validated_at: Fingerprint | None = None,
                 written: tuple[list[Row], Outcome] | None = None) -> ImportReport:
    """Validate and store one parsed batch, written inline (the caller waits for it), every rejection kept.

    A caller checking many small batches passes its cached validator with the catalog it was built for
    (None, None without a catalog: every event is stored as unknown_customer). With a `committer`, the
    rows share a transaction with other requests' (group commit) and are written only if `validated_at`
    is still the environment's fingerprint; else StaleCatalog is raised, nothing written or counted.
    `written`: the rows (from `check_one`) the caller submitted to the committer itself and their
    outcome; the batch is then checked and counted as usual, and not written again."""
    if validator is not None:
        validator.set_now(now)
    report = ImportReport("request", dry_run)
    factory = None
    if committer is not None and not dry_run:
        def discard() -> None:
            report.discarded = True

        def factory(_: Store) -> Any:
            return GroupWriter(committer, environment, validated_at, discard, written)
    elif not dry_run:
        def factory(_: Store) -> Any:  # written alone, on a connection kept open between requests
            return EventWriter(batch_writer(store))
    try:
        if written is not None and factory is not None and len(written[0]) == len(records) \
                and all(type(record) is RawEvent for record in records):
            # every event checked by the caller before it was written: counted as checked, not again
            rows, outcome = written
            if rows and outcome.stale is None and all(outcome.inserted) and len(outcome.inserted) == len(rows):
                report = import_written(store, rows, now, report, environment=environment,
                                        validator=validator or EventValidator(None, now))
            else:
                report = import_checked(store, rows, [record.line for record in records], now, report,
                                        environment=environment, validator=validator or EventValidator(None, now),
                                        writer_factory=factory)
        else:
            report = import_records(store, catalog, records, now, report, environment=environment,
                                    validator=validator, background=False, keep_rejections=len(records),
                                    writer_factory=factory)
    except Exception as exc:
        if archive_refused(exc):
            raise Conflict(ARCHIVED_MEANWHILE) from None
        raise
    if not dry_run and report.stored:
        usage_changed(environment, {customer for customer, _ in report.coverage} | {c for c, _ in report.outside})
    return report


def check_one(validator: EventValidator | None, environment: str, now: datetime, record: RawEvent,
              archived: str = "") -> Row | Rejection:
    """One event checked as `import_batch` checks it: the row it writes, or the rejection. Without
    a validator (no catalog) `archived`, the fingerprint's, says which months refuse events."""
    return validator_at(validator, now, archived).check_row(record, environment, to_micros(now))


def check_event_status(status: str | None) -> None:
    if status is not None and status not in EVENT_STATUSES:
        raise InvalidInput(f"{status!r} is not one of {', '.join(EVENT_STATUSES)}", field="status")


def find_events(store: Store, environment: str = "live", *, late: bool = False, status: str | None = None,
                customer: str | None = None, limit: int | None = 100) -> list[StoredEvent]:
    """Stored events, newest first; `late` keeps only those stored for a period already invoiced final."""
    check_event_status(status)
    return list_events(store, environment, late=True if late else None, status=status, customer=customer,
                       limit=limit)


def reprocess_events(store: Store, now: datetime, environment: str = "live") -> dict[str, Any]:
    """Re-match the unmatched events against the applied catalog (NoCatalog without one)."""
    _, catalog = current_catalog(store, environment)
    result = reprocess(store, catalog, now, environment)
    usage_changed(environment)  # events matched now count
    return result
