"""Background jobs (reprocess) in the database, so every worker process sees every job."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update

from .db import Store
from .schema import jobs

PENDING, RUNNING, DONE, FAILED = "PENDING", "RUNNING", "DONE", "FAILED"
STATUSES = (PENDING, RUNNING, DONE, FAILED)
# a job that has not reported progress for this long lost its worker (killed, restarted)
STALE_AFTER_US = 10 * 60 * 1_000_000


@dataclass(frozen=True)
class Job:
    id: str
    environment: str
    type: str
    status: str
    percentage: int
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created_at: int
    updated_at: int
    finished_at: int | None

    def as_seen_at(self, now_us: int) -> Job:
        """A job still PENDING/RUNNING without progress for STALE_AFTER_US died with its worker."""
        if self.status in (PENDING, RUNNING) and now_us - self.updated_at > STALE_AFTER_US:
            return Job(self.id, self.environment, self.type, FAILED, self.percentage, self.params, self.result,
                       "the worker running this job stopped; start a new one", self.created_at, self.updated_at,
                       self.updated_at)
        return self


def _job(row: Any) -> Job:
    return Job(row.id, row.environment, row.type, row.status, row.percentage, orjson.loads(row.params),
               orjson.loads(row.result) if row.result else None, row.error, row.created_at, row.updated_at,
               row.finished_at)


def create_job(store: Store, environment: str, kind: str, params: dict[str, Any], now_us: int) -> Job:
    job_id = f"rep_{secrets.token_hex(10)}"
    with store.engine.begin() as connection:
        connection.execute(insert(jobs).values(
            id=job_id, environment=environment, type=kind, status=PENDING, percentage=0,
            params=orjson.dumps(params).decode(), created_at=now_us, updated_at=now_us))
    found = get_job(store, environment, job_id)
    assert found is not None
    return found


def get_job(store: Store, environment: str, job_id: str) -> Job | None:
    with store.engine.connect() as connection:
        row = connection.execute(select(jobs).where(jobs.c.environment == environment, jobs.c.id == job_id)).first()
    return _job(row) if row is not None else None


def list_jobs(store: Store, environment: str, kind: str | None = None, status: str | None = None,
              limit: int = 10, offset: int = 0, descending: bool = True) -> tuple[int, list[Job]]:
    conditions = [jobs.c.environment == environment]
    if kind is not None:
        conditions.append(jobs.c.type == kind)
    if status is not None:
        conditions.append(jobs.c.status == status)
    order = (jobs.c.created_at.desc(), jobs.c.id.desc()) if descending else (jobs.c.created_at, jobs.c.id)
    with store.engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(jobs).where(*conditions)).scalar_one()
        rows = connection.execute(select(jobs).where(*conditions).order_by(*order).limit(limit).offset(offset))
        return total, [_job(row) for row in rows]


def update_job(store: Store, job_id: str, now_us: int, *, status: str | None = None, percentage: int | None = None,
               result: dict[str, Any] | None = None, error: str | None = None) -> None:
    values: dict[str, Any] = {"updated_at": now_us}
    if status is not None:
        values["status"] = status
        if status in (DONE, FAILED):
            values["finished_at"] = now_us
    if percentage is not None:
        values["percentage"] = max(0, min(100, int(percentage)))
    if result is not None:
        values["result"] = orjson.dumps(result).decode()
    if error is not None:
        values["error"] = error[:2000]
    with store.engine.begin() as connection:
        connection.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
