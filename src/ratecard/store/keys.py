"""API keys: random, shown once, stored as SHA-256, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from .db import Store
from .schema import api_keys

ENVIRONMENTS = ("sandbox", "live")
PREFIX = "rc"


@dataclass(frozen=True)
class ApiKey:
    id: str
    environment: str
    name: str | None
    created_at: int
    revoked_at: int | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(store: Store, environment: str, now_us: int, name: str | None = None) -> tuple[ApiKey, str]:
    """A new key; the returned token (rc_<env>_<id>_<secret>) is never stored and never shown again."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {', '.join(ENVIRONMENTS)}, got {environment!r}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with store.engine.begin() as connection:
        connection.execute(insert(api_keys).values(id=key_id, environment=environment, name=name,
                                                   secret_sha256=_digest(secret), created_at=now_us))
    return ApiKey(key_id, environment, name, now_us, None), f"{PREFIX}_{environment}_{key_id}_{secret}"


def list_keys(store: Store, environment: str | None = None, offset: int = 0,
              limit: int | None = None) -> list[ApiKey]:
    """Oldest first (the id breaks ties, so pages never overlap); a page when `limit` is given."""
    query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id).offset(offset)
    if environment is not None:
        query = query.where(api_keys.c.environment == environment)
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as connection:
        return [ApiKey(r.id, r.environment, r.name, r.created_at, r.revoked_at) for r in connection.execute(query)]


def revoke_key(store: Store, key_id: str, now_us: int, environment: str | None = None) -> bool:
    """False when no active key has that id (in `environment`, when given)."""
    query = update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
    if environment is not None:
        query = query.where(api_keys.c.environment == environment)
    with store.engine.begin() as connection:
        result = connection.execute(query.values(revoked_at=now_us))
        return result.rowcount == 1


def authenticate(store: Store, token: str) -> str | None:
    """The environment of a valid, unrevoked key; None otherwise (no hint which part was wrong)."""
    parts = token.strip().split("_", 3)
    if len(parts) != 4 or parts[0] != PREFIX or parts[1] not in ENVIRONMENTS:
        # compare anyway so a malformed key costs the same as a wrong one
        hmac.compare_digest(_digest(token), "0" * 64)
        return None
    _, environment, key_id, secret = parts
    with store.engine.connect() as connection:
        row = connection.execute(
            select(api_keys.c.environment, api_keys.c.secret_sha256, api_keys.c.revoked_at).where(api_keys.c.id == key_id)
        ).first()
    expected = row.secret_sha256 if row is not None else "0" * 64
    matches = hmac.compare_digest(_digest(secret), expected)
    if row is None or not matches or row.revoked_at is not None or row.environment != environment:
        return None
    return environment
