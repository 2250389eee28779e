"""Idempotency-Key: a key is claimed atomically before its request runs, and the first answer is
stored for retries.

The claim is the row itself: inserting (environment, key) succeeds for exactly one request, on
SQLite and PostgreSQL alike and across processes (the primary key decides). Until the answer is
stored the row holds status 0, "in progress"; a claim left by a process that died is taken over
once it is older than CLAIM_EXPIRES_US.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from .db import Store
from .schema import idempotency_keys

KEEP_FOR_US = 48 * 3600 * 1_000_000  # at least the 24 hours promised, with room to spare
IN_PROGRESS = 0  # never an HTTP status
# longer than any request runs (invoice runs included), short enough that a crash heals by itself
CLAIM_EXPIRES_US = 10 * 60 * 1_000_000


@dataclass(frozen=True)
class StoredResponse:
    request_sha256: str
    status_code: int
    body: str

    @property
    def in_progress(self) -> bool:
        return self.status_code == IN_PROGRESS


def claim(store: Store, environment: str, key: str, method: str, path: str, request_sha256: str,
          now_us: int) -> StoredResponse | None:
    """None when this request now owns the key (it runs, then `finish` or `release`); else what
    is stored under the key: a finished answer, or another request's claim still in progress."""
    try:
        with store.engine.begin() as connection:
            connection.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < now_us - KEEP_FOR_US))
            connection.execute(idempotency_keys.insert().values(
                environment=environment, key=key, method=method, path=path, request_sha256=request_sha256,
                status_code=IN_PROGRESS, response_body="", created_at=now_us))
        return None
    except IntegrityError:
        pass
    row = _row(store, environment, key)
    if row is None:  # released between our insert and our read: one more try
        return claim(store, environment, key, method, path, request_sha256, now_us)
    stored, created_at = StoredResponse(*row[:3]), row[3]
    if stored.in_progress and created_at < now_us - CLAIM_EXPIRES_US and _take_over(
            store, environment, key, method, path, request_sha256, created_at, now_us):
        return None
    return stored


def finish(store: Store, environment: str, key: str, status_code: int, body: str) -> None:
    """Store the claimed request's answer for its retries."""
    with store.engine.begin() as connection:
        connection.execute(update(idempotency_keys)
                           .where(idempotency_keys.c.environment == environment, idempotency_keys.c.key == key)
                           .values(status_code=status_code, response_body=body))


def release(store: Store, environment: str, key: str) -> None:
    """Give the key up (the request failed in a way a retry may fix): the next request claims it."""
    with store.engine.begin() as connection:
        connection.execute(delete(idempotency_keys).where(
            idempotency_keys.c.environment == environment, idempotency_keys.c.key == key,
            idempotency_keys.c.status_code == IN_PROGRESS))


def _row(store: Store, environment: str, key: str) -> tuple | None:
    with store.engine.connect() as connection:
        return connection.execute(
            select(idempotency_keys.c.request_sha256, idempotency_keys.c.status_code,
                   idempotency_keys.c.response_body, idempotency_keys.c.created_at)
            .where(idempotency_keys.c.environment == environment, idempotency_keys.c.key == key)
        ).first()


def _take_over(store: Store, environment: str, key: str, method: str, path: str, request_sha256: str,
               stale_created_at: int, now_us: int) -> bool:
    """Compare-and-set on the stale claim: only one of several late comers gets it."""
    with store.engine.begin() as connection:
        taken = connection.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.environment == environment, idempotency_keys.c.key == key,
                   idempotency_keys.c.status_code == IN_PROGRESS, idempotency_keys.c.created_at == stale_created_at)
            .values(method=method, path=path, request_sha256=request_sha256, created_at=now_us))
    return taken.rowcount == 1
