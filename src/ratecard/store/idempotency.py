"""Stored responses for Idempotency-Key: a retry gets the first answer, a changed body a 409."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from .db import Store
from .schema import idempotency_keys

KEEP_FOR_US = 48 * 3600 * 1_000_000  # at least the 24 hours promised, with room to spare


@dataclass(frozen=True)
class StoredResponse:
    request_sha256: str
    status_code: int
    body: str


def find(store: Store, environment: str, key: str) -> StoredResponse | None:
    with store.engine.connect() as connection:
        row = connection.execute(
            select(idempotency_keys.c.request_sha256, idempotency_keys.c.status_code, idempotency_keys.c.response_body)
            .where(idempotency_keys.c.environment == environment, idempotency_keys.c.key == key)
        ).first()
    return StoredResponse(*row) if row is not None else None


def remember(store: Store, environment: str, key: str, method: str, path: str, request_sha256: str,
             status_code: int, body: str, now_us: int) -> StoredResponse:
    """Store the first response; when another request won the race, return the one it stored."""
    try:
        with store.engine.begin() as connection:
            connection.execute(idempotency_keys.insert().values(
                environment=environment, key=key, method=method, path=path, request_sha256=request_sha256,
                status_code=status_code, response_body=body, created_at=now_us))
            connection.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < now_us - KEEP_FOR_US))
    except IntegrityError:
        existing = find(store, environment, key)
        if existing is not None:
            return existing
        raise
    return StoredResponse(request_sha256, status_code, body)
