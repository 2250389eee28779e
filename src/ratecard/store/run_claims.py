"""Invoice runs shared by several worker processes: the run, its items (one per customer to bill)
and the claims on them.

A worker claims a few pending items at once and holds them under a lease (an instant, µs) that its
heartbeat keeps moving forward. An item whose lease ran out (its worker was killed, or hangs) is
claimable again, by anyone. On PostgreSQL the claim is `SELECT … FOR UPDATE SKIP LOCKED`: two
workers claiming at the same moment each get other items, without waiting on each other. On
SQLite the claim is one UPDATE statement, which takes the database's single write lock first.

Completing an item is conditional on the claim still being the worker's: a worker whose lease was
taken over completes nothing (its invoice writes were idempotent anyway: the run recomputes a
draft to the same content, and a cut's invoice is unique per subscription, boundary and mode).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, or_, select, text, update

from .db import Store
from .schema import invoice_run_items, invoice_run_reports, invoice_runs

PENDING, CLAIMED, DONE, FAILED = "pending", "claimed", "done", "failed"


@dataclass(frozen=True)
class Run:
    id: int
    environment: str
    until: str
    catalog_version: int
    now_us: int
    status: str
    workers: int
    chunk: int
    lease_us: int
    items: int
    created_at: int
    finished_at: int | None


@dataclass(frozen=True)
class Item:
    position: int
    customer: str | None  # None: the drafts of subscriptions no longer in the catalog
    subscriptions: tuple[str, ...]
    attempts: int


@dataclass(frozen=True)
class Progress:
    pending: int = 0
    claimed: int = 0
    done: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.claimed + self.done + self.failed

    @property
    def finished(self) -> bool:
        return self.pending == 0 and self.claimed == 0


def create_run(store: Store, environment: str, until: str, catalog_version: int, now_us: int, workers: int,
               chunk: int, lease_us: int, items: Sequence[tuple[str | None, Sequence[str]]]) -> Run:
    """Store a run and its items (pending, in the order given) in one transaction."""
    with store.engine.begin() as connection:
        run_id = connection.execute(insert(invoice_runs).values(
            environment=environment, until=until, catalog_version=catalog_version, now_us=now_us, status="open",
            workers=workers, chunk=chunk, lease_us=lease_us, items=len(items), created_at=now_us,
        ).returning(invoice_runs.c.id)).scalar_one()
        if items:
            connection.execute(insert(invoice_run_items), [
                {"run_id": run_id, "position": position, "customer": customer,
                 "subscriptions": json.dumps(list(references)), "status": PENDING, "attempts": 0}
                for position, (customer, references) in enumerate(items)])
    found = get_run(store, run_id)
    assert found is not None
    return found


def get_run(store: Store, run_id: int) -> Run | None:
    with store.engine.connect() as connection:
        row = connection.execute(select(invoice_runs).where(invoice_runs.c.id == run_id)).first()
    return Run(**row._mapping) if row is not None else None


def open_runs(store: Store, environment: str | None = None) -> list[Run]:
    """Runs not finished yet, oldest first (of one environment, or of all)."""
    query = select(invoice_runs).where(invoice_runs.c.status == "open").order_by(invoice_runs.c.id)
    if environment is not None:
        query = query.where(invoice_runs.c.environment == environment)
    with store.engine.connect() as connection:
        return [Run(**row._mapping) for row in connection.execute(query)]


_CLAIM_POSTGRES = text("""
WITH picked AS (
    SELECT run_id, position FROM invoice_run_items
    WHERE run_id = :run AND (status = 'pending' OR (status = 'claimed' AND lease_until < :now))
    ORDER BY position
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE invoice_run_items AS item
SET status = 'claimed', worker = :worker, lease_until = :until, attempts = item.attempts + 1
FROM picked
WHERE item.run_id = picked.run_id AND item.position = picked.position
RETURNING item.position, item.customer, item.subscriptions, item.attempts
""")

# one statement: SQLite takes its write lock before reading, so two claims never pick the same item
_CLAIM_SQLITE = text("""
UPDATE invoice_run_items
SET status = 'claimed', worker = :worker, lease_until = :until, attempts = attempts + 1
WHERE run_id = :run AND position IN (
    SELECT position FROM invoice_run_items
    WHERE run_id = :run AND (status = 'pending' OR (status = 'claimed' AND lease_until < :now))
    ORDER BY position
    LIMIT :limit
)
RETURNING position, customer, subscriptions, attempts
""")


def claim_items(store: Store, run_id: int, worker: str, limit: int, now_us: int, lease_until: int) -> list[Item]:
    """Up to `limit` items of the run nobody holds (pending, or their lease ran out before `now_us`),
    lowest positions first, now held by `worker` until `lease_until`."""
    statement = _CLAIM_POSTGRES if store.is_postgres else _CLAIM_SQLITE
    with store.engine.begin() as connection:
        rows = connection.execute(statement, {"run": run_id, "now": now_us, "limit": limit, "worker": worker,
                                              "until": lease_until}).all()
    return sorted((Item(row[0], row[1], tuple(json.loads(row[2])), row[3]) for row in rows),
                  key=lambda item: item.position)


def _held(run_id: int, worker: str, positions: Sequence[int] | None = None) -> list:
    conditions = [invoice_run_items.c.run_id == run_id, invoice_run_items.c.worker == worker,
                  invoice_run_items.c.status == CLAIMED]
    if positions is not None:
        conditions.append(invoice_run_items.c.position.in_(list(positions)))
    return conditions


def extend_leases(store: Store, run_id: int, worker: str, lease_until: int) -> int:
    """The heartbeat: every item the worker still holds, held until `lease_until`; how many."""
    with store.engine.begin() as connection:
        return connection.execute(update(invoice_run_items).where(*_held(run_id, worker))
                                  .values(lease_until=lease_until)).rowcount


def complete_items(store: Store, run_id: int, worker: str, positions: Sequence[int], batch: str,
                   report: dict, now_us: int) -> int:
    """Mark the items done and store the batch's report, in one transaction; only the items the
    worker still holds count (how many). A batch none of whose items it still holds leaves no report."""
    with store.engine.begin() as connection:
        done = connection.execute(update(invoice_run_items).where(*_held(run_id, worker, positions))
                                  .values(status=DONE, lease_until=None, finished_at=now_us)).rowcount
        if done:
            connection.execute(insert(invoice_run_reports).values(run_id=run_id, batch=batch, worker=worker,
                                                                  report=json.dumps(report), created_at=now_us))
    return done


def release_items(store: Store, run_id: int, worker: str, positions: Sequence[int], error: str,
                  max_attempts: int, now_us: int) -> int:
    """Give the items back after an unexpected error: pending again, or failed for good once they
    were tried `max_attempts` times (the error kept). Returns how many failed for good."""
    with store.engine.begin() as connection:
        failed = connection.execute(
            update(invoice_run_items).where(*_held(run_id, worker, positions),
                                            invoice_run_items.c.attempts >= max_attempts)
            .values(status=FAILED, lease_until=None, error=error[:2000], finished_at=now_us)).rowcount
        connection.execute(update(invoice_run_items).where(*_held(run_id, worker, positions))
                           .values(status=PENDING, worker=None, lease_until=None, error=error[:2000]))
    return failed


def run_progress(store: Store, run_id: int) -> Progress:
    query = (select(invoice_run_items.c.status, func.count()).where(invoice_run_items.c.run_id == run_id)
             .group_by(invoice_run_items.c.status))
    with store.engine.connect() as connection:
        counts = dict(connection.execute(query).all())
    return Progress(**{status: counts.get(status, 0) for status in (PENDING, CLAIMED, DONE, FAILED)})


def claimable(store: Store, run_id: int, now_us: int) -> int:
    """Items a worker could claim now (pending, or their lease ran out)."""
    items = invoice_run_items.c
    query = select(func.count()).where(items.run_id == run_id, or_(
        items.status == PENDING, and_(items.status == CLAIMED, items.lease_until < now_us)))
    with store.engine.connect() as connection:
        return connection.execute(query).scalar_one()


def finish_run(store: Store, run_id: int, now_us: int) -> bool:
    """Close the run once no item is pending or claimed; True for the one caller that closed it."""
    items = invoice_run_items.c
    unfinished = select(items.position).where(items.run_id == run_id, items.status.in_((PENDING, CLAIMED))).exists()
    with store.engine.begin() as connection:
        return connection.execute(update(invoice_runs).where(invoice_runs.c.id == run_id,
                                                             invoice_runs.c.status == "open", ~unfinished)
                                  .values(status="done", finished_at=now_us)).rowcount == 1


def run_reports(store: Store, run_id: int) -> list[dict]:
    """The stored report of every completed batch, in the order they were stored."""
    query = (select(invoice_run_reports.c.report).where(invoice_run_reports.c.run_id == run_id)
             .order_by(invoice_run_reports.c.created_at, invoice_run_reports.c.batch))
    with store.engine.connect() as connection:
        return [json.loads(report) for report in connection.execute(query).scalars()]


def failed_items(store: Store, run_id: int) -> list[tuple[str | None, tuple[str, ...], str]]:
    """(customer, subscriptions, error) of every item that failed for good."""
    items = invoice_run_items.c
    query = (select(items.customer, items.subscriptions, items.error)
             .where(items.run_id == run_id, items.status == FAILED).order_by(items.position))
    with store.engine.connect() as connection:
        return [(row[0], tuple(json.loads(row[1])), row[2] or "") for row in connection.execute(query)]


def item_holders(store: Store, run_id: int) -> dict[int, tuple[str, str | None]]:
    """position -> (status, worker): who holds what (shown by tests and by `--json` diagnostics)."""
    items = invoice_run_items.c
    query = select(items.position, items.status, items.worker).where(items.run_id == run_id)
    with store.engine.connect() as connection:
        return {row[0]: (row[1], row[2]) for row in connection.execute(query)}
