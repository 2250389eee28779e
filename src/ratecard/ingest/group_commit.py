"""Group commit: small concurrent writes of events share one transaction.

A server process keeps one `GroupCommitter`: a queue and writer threads (one, or a few on
PostgreSQL), each with its own database connection. A request validates its events on its own
thread (or on the event loop: `submit`), hands the rows to the committer and waits; a writer
takes every request already queued (and, while other requests are still being validated, waits
up to `max_wait` seconds for them, never past `max_events` rows), writes them all in one
transaction, commits, and only then answers each request with its own outcome:
which of its rows were inserted, which ids were already held (with the stored content, to tell
a duplicate from a conflict), and for Solvimon's ingestion the duplicate records kept.

Each request's rows were validated against a catalog fingerprint (catalog version, resources
revision, final invoices); the writer reads the environment's fingerprint inside the transaction,
once per batch, and writes nothing for a request validated against an older one: that request is
answered `stale` with the current fingerprint and validates again. So a request never reads the
fingerprint itself, and an event is stored only if it was checked against the catalog current
when it was written.

Failures: a batch that fails is rolled back whole (nothing of it was acknowledged), then each of
its requests is written again alone, so one bad request fails only itself; a request whose lone
write fails gets the error, unless it failed on its connection (the server ended it: an idle
timeout, a restart), when it is written once more on a new one. A lost connection is replaced
for the next batch. A commit whose
outcome is unknown (the connection dropped during COMMIT) is retried the same way; the store's
uniqueness keeps each event stored once, and the retry reports such an event as a duplicate.
On PostgreSQL a batch written at once (`_at_once`) is committed before the ids it found held
are looked up; a failed lookup is made again on a new connection rather than the batch written again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, InvalidStateError
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..store import Store
from ..store.catalog_state import Fingerprint, fingerprint_on
from ..store.db import is_connection_failure
from ..store.events import Content, Row, insert_at_once, insert_confirmed, stored_contents
from ..store.meter_data import keep_duplicate
from ..store.partitions import archive_refused

log = logging.getLogger(__name__)

MAX_EVENTS = 1_000  # rows per shared transaction
MAX_WAIT = 0.002  # seconds the writer may wait for requests still being checked
REQUEST_EVENTS = 100  # a request with more events pays for its own commit (and COPYs on PostgreSQL)
AT_ONCE_PAUSE = 10.0  # seconds an environment is written the usual way after `_at_once` was refused for it


class CommitterClosed(RuntimeError):
    """The server is shutting down; the request was not written."""


@dataclass
class Outcome:
    """What one request's rows became. `stale` (nothing written): the fingerprint to validate again with."""

    inserted: list[bool] = field(default_factory=list)
    duplicates: list[int | None] = field(default_factory=list)  # duplicate record numbers (keep_duplicates)
    held: dict[str, Content] = field(default_factory=dict)  # stored content of the ids already held
    stale: Fingerprint | None = None

    @property
    def new(self) -> int:
        return sum(self.inserted)


@dataclass
class _Job:
    environment: str
    rows: Sequence[Row]
    expected: Fingerprint | None
    keep_duplicates: bool
    future: Future | asyncio.Future = field(default_factory=Future)
    loop: asyncio.AbstractEventLoop | None = None  # the event loop of an asyncio future (`wait`)


class GroupCommitter:
    """Writer threads sharing one queue; `write` is called from any request thread and blocks until
    its rows are committed (or refused); `submit` returns a future instead."""

    def __init__(self, store: Store, max_events: int = MAX_EVENTS, max_wait: float = MAX_WAIT,
                 writers: int = 1) -> None:
        """`writers`: writer threads, each with its own connection, taking batches from the same
        queue, so that one batch is written while another commits (PostgreSQL; SQLite has one
        writer at a time whatever the threads)."""
        self.store = store
        self.max_events = max_events
        self.max_wait = max_wait
        self._queue: deque[_Job] = deque()
        self._arriving = 0  # announced requests still validating: they will write soon
        self._local = threading.local()
        self._writer = threading.local()  # each writer thread's connection
        self._connections: list[Any] = []
        self._condition = threading.Condition()
        self._closing = False
        # each event loop's requests of its current turn, handed to the writers together (`wait`)
        self._held_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[_Job]] = \
            weakref.WeakKeyDictionary()
        self.batches = 0  # transactions committed (for tests and figures)
        self._at_once_paused: dict[str, float] = {}  # environment -> until when `_at_once` is not tried
        self._threads = [threading.Thread(target=self._run, name=f"ratecard-group-commit-{number}", daemon=True)
                         for number in range(max(1, writers))]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ request side

    @contextmanager
    def announced(self) -> Iterator[None]:
        """Around a request that validates events it will write: while it validates, the writer may
        wait (up to max_wait) for its rows to share the transaction with the others."""
        with self._condition:
            self._arriving += 1
        mine = object()
        self._local.pending = mine
        try:
            yield
        finally:
            with self._condition:
                if getattr(self._local, "pending", None) is mine:
                    self._arriving -= 1  # it did not write
                    self._condition.notify_all()
                self._local.pending = None

    def write(self, environment: str, rows: Sequence[Row], expected: Fingerprint | None,
              keep_duplicates: bool = False) -> Outcome:
        """Write rows (distinct ids not required) in the next shared transaction; returns once it
        committed. Raises what the write raised when it failed."""
        return self.submit(environment, rows, expected, keep_duplicates).result()

    def submit(self, environment: str, rows: Sequence[Row], expected: Fingerprint | None,
               keep_duplicates: bool = False) -> Future:
        """`write` without the wait: the future is done (an Outcome, or the write's error) once the
        shared transaction committed. For a caller that must not block (an event loop)."""
        return self._queued(_Job(environment, rows, expected, keep_duplicates)).future

    def wait(self, environment: str, rows: Sequence[Row], expected: Fingerprint | None,
             keep_duplicates: bool = False) -> asyncio.Future:
        """`submit` for a caller on the running event loop: an asyncio future, done once the shared
        transaction committed (its result an Outcome; CommitterClosed when the server is closing).

        The loop's requests are handed to the writers together: the first one of a turn of the loop
        schedules the hand-over after the requests the loop is running in that turn, so those that
        arrived together share a transaction and wake the writer once. The writer answers a batch's
        requests waiting on one loop with one callback on that loop (one wake-up, not one each)."""
        loop = asyncio.get_running_loop()
        job = _Job(environment, rows, expected, keep_duplicates, loop.create_future(), loop)
        held = self._held_by_loop.get(loop)
        if held is None:
            held = self._held_by_loop[loop] = []
        if not held:
            loop.call_soon(self._hand_over, held)
        held.append(job)
        return job.future

    def _hand_over(self, held: list[_Job]) -> None:
        """On the loop: queue the jobs its requests held back this turn."""
        jobs = held[:]
        held.clear()
        try:
            with self._condition:
                if self._closing:
                    raise CommitterClosed("the server is shutting down")
                self._queue.extend(jobs)
                self._condition.notify_all()
        except CommitterClosed as closed:
            _settle([(job.future, closed) for job in jobs])

    def _queued(self, job: _Job) -> _Job:
        with self._condition:
            if getattr(self._local, "pending", None) is not None:
                self._arriving -= 1  # announced: it is here now
                self._local.pending = None
            if self._closing:
                raise CommitterClosed("the server is shutting down")
            self._queue.append(job)
            self._condition.notify_all()
        return job

    def close(self) -> None:
        """Write what is queued, then stop the thread and close the connection."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout=60)
        with self._condition:
            left, self._connections = self._connections, []
        for connection in left:
            _close(connection)

    # ------------------------------------------------------------------ writer side

    def _run(self) -> None:
        batch: list[_Job] | None = None
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                self._write(batch)
                batch = None
        except BaseException as exc:  # the thread is ending: no request may wait for it forever
            with self._condition:
                self._closing = True
                waiting = [*(batch or []), *self._queue]
                self._queue.clear()
            _answer([(job, CommitterClosed(f"the event writer stopped: {exc!r}")) for job in waiting])
            raise

    def _next_batch(self) -> list[_Job] | None:
        with self._condition:
            while not self._queue:
                if self._closing:
                    return None
                self._condition.wait()
            batch: list[_Job] = []
            rows = 0
            deadline = time.monotonic() + self.max_wait
            while True:
                while self._queue and rows < self.max_events:
                    job = self._queue.popleft()
                    batch.append(job)
                    rows += len(job.rows)
                if rows >= self.max_events or self._arriving <= 0 or self._closing:
                    return batch
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return batch
                self._condition.wait(remaining)

    def _write(self, batch: list[_Job]) -> None:
        try:
            outcomes = self._transaction(batch)
        except Exception as exc:  # noqa: BLE001 - each request gets its own answer below
            self._drop_connection()
            if len(batch) == 1:
                _answer([(batch[0], self._again_if_disconnected(batch[0], exc))])
                return
            log.warning("a group commit of %d requests failed (%s); writing each alone",
                        len(batch), str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            for job in batch:
                try:
                    outcome: Outcome | BaseException = self._transaction([job])[0]
                except Exception as alone:  # noqa: BLE001 - this request's own failure
                    self._drop_connection()
                    outcome = alone
                _answer([(job, outcome)])
            return
        _answer(list(zip(batch, outcomes, strict=True)))

    def _again_if_disconnected(self, job: _Job, failure: Exception) -> Outcome | BaseException:
        """A lone request whose write failed on the connection rather than on its rows (the server
        ended a connection idle for long, or restarted) is written once more on a new connection,
        as a failed batch's requests each are; any other failure is its answer. Should the first
        attempt have committed before the connection went, the store keeps each event once and
        the second reports them held, as for a commit whose outcome is unknown."""
        if not is_connection_failure(self.store, failure):
            return failure
        log.warning("an event write failed on its connection (%s); writing it again on a new one",
                    str(failure).splitlines()[0] if str(failure) else type(failure).__name__)
        try:
            return self._transaction([job])[0]
        except Exception as again:  # noqa: BLE001 - the request's answer
            self._drop_connection()
            return again

    def _transaction(self, batch: list[_Job]) -> list[Outcome]:
        """One transaction for the batch. The rows are inserted and the fingerprints read together
        (optimistically); if a request was checked against an older fingerprint, the transaction
        is rolled back and written again without it (it is answered stale).

        PostgreSQL tries first to write the batch in one statement that commits by itself
        (`_at_once`).

        A month archived since a request was checked (a detach by another process) also moved its
        fingerprint, but the guard of that month (store/partitions.py) may refuse the insert
        before the fingerprints are compared, as they are read in the same statement: the batch
        is then written the usual way, and when the guard refuses it there, the requests whose
        fingerprint moved are answered stale (checked again, their events of that month refused
        one by one); a refusal with no such request is the batch's error."""
        if self.store.is_postgres:
            try:
                outcomes = self._at_once(batch)
            except Exception as exc:
                if not archive_refused(exc):
                    raise
                outcomes = None
            if outcomes is not None:
                self.batches += 1
                return outcomes
        connection = self._connect()
        stale: dict[int, Fingerprint] = {}
        while True:
            try:
                with connection.begin():
                    outcomes = self._attempt(connection, batch, stale)
            except _Restart as restart:
                stale.update(restart.stale)
                continue
            except Exception as exc:
                if not archive_refused(exc):
                    raise
                moved = self._moved(connection, batch, stale)
                if not moved:
                    raise
                stale.update(moved)
                continue
            self.batches += 1
            return outcomes

    def _moved(self, connection: Any, batch: list[_Job], stale: dict[int, Fingerprint]) -> dict[int, Fingerprint]:
        """The requests (not stale already) checked against a fingerprint that is no longer current."""
        live = [n for n in range(len(batch)) if n not in stale and batch[n].expected is not None]
        with connection.begin():
            current = {environment: fingerprint_on(connection, environment)
                       for environment in {batch[n].environment for n in live}}
        return {n: current[batch[n].environment] for n in live if current[batch[n].environment] != batch[n].expected}

    def _at_once(self, batch: list[_Job]) -> list[Outcome] | None:
        """PostgreSQL: the batch's rows in one statement on an autocommit connection, which commits
        without a COMMIT round trip of its own (a single event's transaction took one round trip
        for the insert and one for the COMMIT, the second as long as the first). The statement
        writes only when every request's fingerprint is current and no roll-up is to be
        maintained (`insert_at_once`); else nothing was written and None says to write the batch
        the usual way. Environments refused so are written the usual way for AT_ONCE_PAUSE
        seconds (a roll-up, once built, stays: no statement is wasted on each batch)."""
        now = time.monotonic()
        if any(self._at_once_paused.get(job.environment, 0.0) > now for job in batch):
            return None
        live = list(range(len(batch)))
        first, unique = _first_rows(batch, live)
        expected = list({(job.environment, job.expected) for job in batch if job.expected is not None})
        inserted = insert_at_once(self._connect(autocommit=True), expected, unique)
        if inserted is None:
            for job in batch:
                self._at_once_paused[job.environment] = now + AT_ONCE_PAUSE
            return None
        outcomes = [Outcome() for _ in batch]
        if len(inserted) == sum(len(job.rows) for job in batch):  # every row new: nothing to look up
            _settle_rows(None, batch, live, first, inserted, outcomes)
            return outcomes
        # the ids already held: their stored content, or Solvimon's duplicate records. The rows are
        # committed by now, so a failure here must not send the batch to be written again (its new
        # events would then be answered as duplicates of themselves, and Solvimon's kept as duplicate
        # records): this connection, idle since its last use, may have been dropped by the server;
        # the lookup is made again once on a fresh one
        try:
            self._settle_held(batch, live, first, inserted, outcomes)
        except Exception:  # noqa: BLE001 - made again once; a second failure is the batch's error
            log.warning("the lookup of a batch's held ids failed; trying again on a new connection")
            self._drop_connection(also_autocommit=False)
            self._settle_held(batch, live, first, inserted, outcomes)
        return outcomes

    def _settle_held(self, batch: list[_Job], live: list[int], first: dict[tuple[str, str], tuple[int, int]],
                     inserted: set[tuple[str, str]], outcomes: list[Outcome]) -> None:
        with (connection := self._connect()).begin():
            _settle_rows(connection, batch, live, first, inserted, outcomes)

    def _attempt(self, connection: Any, batch: list[_Job], stale: dict[int, Fingerprint]) -> list[Outcome]:
        outcomes = [Outcome(stale=stale.get(number)) for number in range(len(batch))]
        live = [number for number in range(len(batch)) if number not in stale]
        first, unique = _first_rows(batch, live)
        environments = sorted({batch[n].environment for n in live if batch[n].expected is not None})
        current, inserted = insert_confirmed(connection, environments, unique)
        moved = {n: current[batch[n].environment] for n in live
                 if batch[n].expected is not None and current[batch[n].environment] != batch[n].expected}
        if moved:
            raise _Restart(moved)  # rolls this transaction back
        _settle_rows(connection, batch, live, first, inserted, outcomes)
        return outcomes

    def _connect(self, autocommit: bool = False) -> Any:
        """This writer thread's connection (opened on first use, kept); `autocommit`: its second
        one, on which each statement is its own transaction (`_at_once`)."""
        name = "autocommit" if autocommit else "connection"
        connection = getattr(self._writer, name, None)
        if connection is None:
            connection = self.store.engine.connect()
            if autocommit:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            setattr(self._writer, name, connection)
            with self._condition:
                self._connections.append(connection)
        return connection

    def _drop_connection(self, also_autocommit: bool = True) -> None:
        """Close this writer thread's connection (and its autocommit one, unless `also_autocommit`
        is False); the next use opens a new one."""
        for name in ("connection", "autocommit") if also_autocommit else ("connection",):
            connection = getattr(self._writer, name, None)
            setattr(self._writer, name, None)
            if connection is not None:
                with self._condition:
                    if connection in self._connections:
                        self._connections.remove(connection)
                _close(connection)


def _first_rows(batch: list[_Job], live: list[int]) -> tuple[dict[tuple[str, str], tuple[int, int]], list[Row]]:
    """Each (environment, id)'s first row among the live requests: key -> (request, row), and
    those rows in order (the ones written; a later row with the same id is a duplicate)."""
    first: dict[tuple[str, str], tuple[int, int]] = {}
    unique: list[Row] = []
    for number in live:
        for index, row in enumerate(batch[number].rows):
            key = (row[0], row[1])
            if key not in first:
                first[key] = (number, index)
                unique.append(row)
    return first, unique


def _settle_rows(connection: Any, batch: list[_Job], live: list[int], first: dict[tuple[str, str], tuple[int, int]],
                 inserted: set[tuple[str, str]], outcomes: list[Outcome]) -> None:
    """Each live request's outcome: which of its rows were inserted; for the others, the stored
    content of the ids already held, or (Solvimon) the duplicate records kept."""
    for number in live:
        job, outcome = batch[number], outcomes[number]
        outcome.inserted = [(row[0], row[1]) in inserted and first[(row[0], row[1])] == (number, index)
                            for index, row in enumerate(job.rows)]
        held = [row for row, new in zip(job.rows, outcome.inserted, strict=True) if not new]
        if not held:
            outcome.duplicates = [None] * len(job.rows)
        elif job.keep_duplicates:
            outcome.duplicates = [None if new else keep_duplicate(connection, row)
                                  for row, new in zip(job.rows, outcome.inserted, strict=True)]
        else:
            outcome.held = stored_contents(connection, job.environment, (row[1] for row in held))


def _answer(answers: Sequence[tuple[_Job, Outcome | BaseException]]) -> None:
    """Settle each job's future with its outcome (or error), from a writer thread. Futures of an
    event loop are settled by one callback per loop, which the loop runs in its own thread."""
    on_loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Outcome | BaseException]]] = {}
    in_threads: list[tuple[Future, Outcome | BaseException]] = []
    for job, outcome in answers:
        if job.loop is not None:
            on_loops.setdefault(job.loop, []).append((job.future, outcome))
        else:
            in_threads.append((job.future, outcome))
    _settle(in_threads)
    for loop, settled in on_loops.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:  # the loop is closed: no request waits on it any more
            pass


def _settle(settled: Sequence[tuple[Future | asyncio.Future, Outcome | BaseException]]) -> None:
    """Each future's outcome (or error), unless it was cancelled: its request is gone."""
    for future, outcome in settled:
        if future.done():
            continue
        try:
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        except InvalidStateError:  # a thread's future cancelled by its caller since done()
            pass


def _close(connection: Any) -> None:
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped anyway
        pass


class _Restart(Exception):  # noqa: N818 - internal: roll back and write again without these requests
    def __init__(self, stale: dict[int, Fingerprint]) -> None:
        super().__init__("requests checked against an older fingerprint")
        self.stale = stale


class StaleCatalog(Exception):  # noqa: N818 - a signal to validate again, not an error
    """The rows were validated against an older catalog fingerprint; nothing was written."""

    def __init__(self, current: Fingerprint) -> None:
        super().__init__("validated against an older catalog")
        self.current = current


class GroupWriter:
    """An EventWriter for import_records that writes through the committer (one request's rows)."""

    def __init__(self, committer: GroupCommitter, environment: str, expected: Fingerprint | None,
                 on_stale: Any = None, written: tuple[Sequence[Row], Outcome] | None = None) -> None:
        self.committer = committer
        self.environment = environment
        self.expected = expected
        self.on_stale = on_stale
        # rows the caller submitted to the committer itself, with their outcome: `write` takes it
        # instead of writing them again (the importer counts them as usual)
        self.written = written
        self._held: dict[str, Content] = {}
        self._wrote = False

    def write(self, rows: Sequence[Row]) -> int:
        if not rows:
            return 0
        if self.written is not None:
            submitted, outcome = self.written
            if list(rows) != list(submitted):
                raise RuntimeError("the rows checked again are not the rows written")
            self.written = None
        else:
            outcome = self.committer.write(self.environment, rows, self.expected)
        if outcome.stale is not None:
            self._stale(outcome.stale)
        self._wrote = True
        self._held.update(outcome.held)
        return outcome.new

    def _stale(self, current: Fingerprint) -> None:
        self._wrote = True  # settled: nothing left to confirm at close
        if self.on_stale is not None:
            self.on_stale()
        raise StaleCatalog(current)

    def held(self, environment: str, ids: Any) -> dict[str, Content]:
        return {event_id: self._held[event_id] for event_id in ids if event_id in self._held}

    def close(self) -> None:
        """Nothing was written (every event refused): the refusals were judged against `expected`,
        which no transaction confirmed, so it is read now."""
        if not self._wrote:
            confirm(self.committer.store, self.environment, self.expected, self._stale)


def confirm(store: Store, environment: str, expected: Fingerprint | None, on_stale: Any) -> None:
    """Call `on_stale(current)` when `expected` is no longer the environment's fingerprint."""
    if expected is None:
        return
    with store.engine.connect() as connection:
        current = fingerprint_on(connection, environment)
    if current != expected:
        on_stale(current)
