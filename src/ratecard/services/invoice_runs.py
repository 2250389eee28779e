"""Invoice runs shared by worker processes: `invoices generate --workers N` starts one and
`ratecard worker --invoices` processes help with it.

The run is planned once (one item per customer, store/run_claims.py) with the catalog version and
the "now" every worker then uses, so the invoices are those one process would write. Each worker
claims a few items, bills them (billing/claims.py), marks them done with its report and claims
more. A heartbeat thread keeps its claims' lease; a worker that dies stops the heartbeat, and once
the lease runs out another worker claims those items again. Billing an item twice is harmless:
the run recomputes drafts to the same content and a cut's invoice is unique.

SQLite has one writer: there a worker claims every item left at once, so other workers wait and
take over only if it dies (they take turns); `generate --workers N` runs one worker process.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from ..billing.claims import bill_share, merge_reports, parse_until, plan_items
from ..billing.run import HorizonError, check_horizon
from ..catalog import Catalog
from ..domain.instants import from_micros, to_micros
from ..store import Store
from ..store.invoices import existing_cuts
from ..store.run_claims import (
    Item,
    Progress,
    Run,
    claim_items,
    claimable,
    complete_items,
    create_run,
    extend_leases,
    failed_items,
    finish_run,
    get_run,
    open_runs,
    release_items,
    run_progress,
    run_reports,
)
from . import webhook_events
from .catalog import catalog_at, current_catalog
from .errors import InvalidInput, NotFound, Refused

log = logging.getLogger(__name__)

DEFAULT_LEASE = 30.0  # seconds a claim lasts without a heartbeat
MAX_ATTEMPTS = 3  # an item that failed this often (an unexpected error each time) is reported, not retried
MAX_CHUNK = 500


def worker_name() -> str:
    """host:pid:token, unique per worker; the pid lets an operator find the process holding a claim."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def wall_us() -> int:
    """Leases run on the wall clock, not on the run's "now" (which a test or a re-run may pin)."""
    return int(time.time() * 1_000_000)


def chunk_for(items: int, workers: int, postgres: bool) -> int:
    """Items claimed at once. PostgreSQL: about four claims per worker, so a slow share does not
    leave the others idle at the end, and few enough claims that each pays for its usage query.
    SQLite (one writer, one worker at a time): the whole run in one batch, the same single pass over
    the events as a run of one process."""
    if not postgres:
        return max(1, items)
    return max(1, min(MAX_CHUNK, -(-items // (workers * 4))))


def start_run(store: Store, until: date | datetime, now: datetime, environment: str, workers: int, *,
              lease: float = DEFAULT_LEASE, chunk: int | None = None) -> Run:
    """Plan a shared run: its items, the catalog version and the "now" its workers use."""
    try:
        check_horizon(until, now)
    except HorizonError as exc:
        raise InvalidInput(str(exc)) from None
    for run in open_runs(store, environment):
        raise Refused(f"invoice run {run.id} (until {run.until}) is still open: `ratecard worker --invoices "
                       f"--run {run.id}` finishes it; then start this one")
    version, catalog = current_catalog(store, environment)
    _remember(store, environment, version, catalog)
    items = plan_items(catalog, existing_cuts(store, environment))
    return create_run(store, environment, until.isoformat(), version, to_micros(now), workers,
                      chunk or chunk_for(len(items), workers, store.is_postgres), int(lease * 1_000_000), items)


# the catalog versions this process built for its runs (a version never changes): `generate
# --workers N` plans the run and then bills it, with one build of a catalog of 10,000 customers
# (about a second) instead of two
_BUILT: dict[tuple[str, str, int], Catalog] = {}


def _remember(store: Store, environment: str, version: int, catalog: Catalog) -> None:
    if len(_BUILT) >= 2:
        _BUILT.pop(next(iter(_BUILT)))
    _BUILT[(store.url, environment, version)] = catalog


def _catalog_of(store: Store, run: Run) -> Catalog | None:
    found = _BUILT.get((store.url, run.environment, run.catalog_version))
    if found is None:
        found = catalog_at(store, run.catalog_version, run.environment)
        if found is not None:
            _remember(store, run.environment, run.catalog_version, found)
    return found


def find_run(store: Store, run_id: int) -> Run:
    run = get_run(store, run_id)
    if run is None:
        raise NotFound(f"no invoice run {run_id}")
    return run


@dataclass
class WorkerTally:
    """What one worker did on one run."""

    items: int = 0
    batches: int = 0
    lost: int = 0  # items it billed after another worker had taken them over (its lease ran out)
    errors: list[str] = field(default_factory=list)
    finished_run: bool = False


class _Heartbeat(threading.Thread):
    """Moves the worker's leases forward every third of the lease, until stopped."""

    def __init__(self, store: Store, run: Run, worker: str) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{run.id}")
        self.store, self.shared, self.worker = store, run, worker
        self.halt = threading.Event()

    def run(self) -> None:  # threading.Thread's entry point
        period = self.shared.lease_us / 3_000_000
        while not self.halt.wait(period):
            try:
                extend_leases(self.store, self.shared.id, self.worker, wall_us() + self.shared.lease_us)
            except Exception:  # noqa: BLE001 - a missed beat only shortens the lease; the next one retries
                log.exception("heartbeat of invoice run %s failed", self.shared.id)


def work_on_run(store: Store, run: Run, *, worker: str | None = None, wait_for_others: bool = False,
                stop: threading.Event | None = None, on_batch: Callable[[int], None] | None = None,
                on_total: Callable[[int], None] | None = None,
                on_progress: Callable[[int], None] | None = None) -> WorkerTally:
    """Claim and bill the run's items until none is left to claim. `wait_for_others`: also wait for
    the items other workers hold, taking them over if their lease runs out (the last one standing).
    `on_batch(items)`: after each batch completed; `on_total`, `on_progress`: each batch's cuts to
    price and priced. The worker that completes the run closes it and sends the `invoice.created`
    webhooks of the run's new drafts."""
    worker = worker or worker_name()
    tally = WorkerTally()
    catalog = _catalog_of(store, run)
    if catalog is None:
        raise NotFound(f"invoice run {run.id} prices with catalog version {run.catalog_version}, which is gone")
    until, now = parse_until(run.until), from_micros(run.now_us)
    heartbeat = _Heartbeat(store, run, worker)
    heartbeat.start()
    claimed: list[Item] = []
    try:
        while stop is None or not stop.is_set():
            # SQLite: one writer, so one worker holds every item left; the others take turns
            limit = run.chunk if store.is_postgres else run.items
            claimed = claim_items(store, run.id, worker, limit, wall_us(), wall_us() + run.lease_us)
            if not claimed:
                progress = run_progress(store, run.id)
                if progress.finished or not wait_for_others:
                    break
                _wait_for_claimable(store, run, stop)
                continue
            for start in range(0, len(claimed), run.chunk):
                if stop is not None and stop.is_set():
                    break
                _bill_batch(store, run, catalog, until, now, worker, claimed[start:start + run.chunk], tally,
                            on_total, on_progress)
                if on_batch is not None:
                    on_batch(len(claimed[start:start + run.chunk]))
    finally:
        heartbeat.halt.set()
        heartbeat.join()
    if stop is not None and stop.is_set():
        # what it still holds goes back at once rather than when the lease runs out
        release_items(store, run.id, worker, [item.position for item in claimed], "the worker was stopped",
                      MAX_ATTEMPTS + 1, wall_us())
    elif finish_run(store, run.id, wall_us()):
        tally.finished_run = True
    return tally


def _bill_batch(store: Store, run: Run, catalog: Catalog, until: date | datetime, now: datetime, worker: str,
                batch: list[Item], tally: WorkerTally, on_total: Callable[[int], None] | None,
                on_progress: Callable[[int], None] | None) -> None:
    positions = [item.position for item in batch]
    try:
        # the batch's new drafts queue their invoice.created webhooks in the transaction that writes them
        report = bill_share(store, catalog, run.catalog_version, until, now, run.environment,
                            [reference for item in batch for reference in item.subscriptions],
                            on_total=on_total, on_progress=on_progress,
                            then=webhook_events.invoices_step(store, run.environment, "invoice.created",
                                                              from_micros(run.now_us)))
    except Exception as exc:  # noqa: BLE001 - one batch's error never stops the run: retried, then reported
        log.exception("invoice run %s: batch at item %s failed", run.id, positions[0])
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        tally.errors.append(message)
        release_items(store, run.id, worker, positions, message, MAX_ATTEMPTS, wall_us())
        return
    done = complete_items(store, run.id, worker, positions, uuid.uuid4().hex, report.as_dict(), wall_us())
    tally.items += done
    tally.batches += 1
    tally.lost += len(positions) - done


def _wait_for_claimable(store: Store, run: Run, stop: threading.Event | None) -> None:
    """Until an item can be claimed (a lease ran out, an item was given back) or the run is done."""
    deadline = time.monotonic() + run.lease_us / 1_000_000 + 1
    while time.monotonic() < deadline and (stop is None or not stop.is_set()):
        if claimable(store, run.id, wall_us()) or run_progress(store, run.id).finished:
            return
        time.sleep(0.2)


def progress_of(store: Store, run_id: int) -> Progress:
    return run_progress(store, run_id)


def run_report(store: Store, run: Run) -> dict:
    """The run's report in the shape of a run of one process, plus `run` (its id) and `items`."""
    report = merge_reports(run.until, run_reports(store, run.id), failed_items(store, run.id))
    progress = run_progress(store, run.id)
    report["run"] = {"id": run.id, "workers": run.workers, "items": progress.total, "done": progress.done,
                     "failed": progress.failed, "unfinished": progress.pending + progress.claimed}
    return report


def serve_runs(store: Store, stop: threading.Event, *, run_id: int | None = None, poll: float = 1.0,
               on_batch: Callable[[int], None] | None = None) -> WorkerTally:
    """`ratecard worker --invoices`: help with every open run (or only `run_id`, then return) until
    stopped."""
    total = WorkerTally()
    while not stop.is_set():
        runs = [find_run(store, run_id)] if run_id is not None else open_runs(store)
        for run in runs:
            if run.status != "open" or stop.is_set():
                continue
            tally = work_on_run(store, run, wait_for_others=run_id is not None, stop=stop, on_batch=on_batch)
            total.items += tally.items
            total.batches += tally.batches
            total.lost += tally.lost
            total.errors += tally.errors
            total.finished_run = total.finished_run or tally.finished_run
        if run_id is not None:
            break
        stop.wait(poll)
    return total
