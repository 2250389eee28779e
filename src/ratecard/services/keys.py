"""API keys: one environment each; the secret is shown once and only its hash is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain.instants import rfc3339, to_micros
from ..store import Store
from ..store.keys import ENVIRONMENTS, ApiKey, authenticate, create_key, list_keys, revoke_key
from .errors import InvalidInput, NotFound

MAX_KEY_NAME = 200  # the stored column's width


def check_environment(environment: str, field: str = "env") -> None:
    if environment not in ENVIRONMENTS:
        raise InvalidInput(f"{environment!r} is not one of {', '.join(ENVIRONMENTS)}", field=field)


def create(store: Store, environment: str, now: datetime, name: str | None = None) -> dict[str, Any]:
    """A new key: {"id", "environment", "name", "key"}; `key` is the secret, never retrievable again."""
    check_environment(environment)
    if name is not None and len(name) > MAX_KEY_NAME:
        raise InvalidInput(f"a key's name must be at most {MAX_KEY_NAME} characters (this one has {len(name)})",
                           field="name")
    if name is not None and not name.isprintable():
        raise InvalidInput("a key's name must be printable text on one line", field="name")
    key, token = create_key(store, environment, to_micros(now), name)
    return {"id": key.id, "environment": key.environment, "name": key.name, "key": token}


def find(store: Store, environment: str | None = None, offset: int = 0,
         limit: int | None = None) -> list[dict[str, Any]]:
    """Every key (of one environment, or all), or a page of them: ids and state, never secrets."""
    if environment is not None:
        check_environment(environment)
    return [_document(key) for key in list_keys(store, environment, offset, limit)]


def _document(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "environment": key.environment, "name": key.name, "revoked": key.revoked_at is not None,
            "created_at": rfc3339(key.created_at)}


_revocations = [0]  # keys revoked by this process (a list: one mutable number shared by its readers)


def revocations() -> int:
    """How many keys this process revoked: a cache of valid keys drops what it holds when this moves."""
    return _revocations[0]


def revoke(store: Store, key_id: str, now: datetime, environment: str | None = None) -> None:
    """Requests with the key get 401 from then on: at once in this process (its key cache is
    dropped), within the cache's few seconds in other server processes. With `environment`, only a
    key of that environment is revoked (the console never touches the other environment's keys)."""
    found = revoke_key(store, key_id, to_micros(now), environment)
    _revocations[0] += 1  # even when not found: another process may have revoked it meanwhile
    if not found:
        raise NotFound(f"no active key {key_id!r} (see `ratecard keys list`)")


def environment_of(store: Store, token: str) -> str | None:
    """The environment a presented key works in; None when it is unknown, revoked or malformed
    (with no hint which: the caller answers 401 alike)."""
    return authenticate(store, token)
