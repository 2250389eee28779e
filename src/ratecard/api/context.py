"""What every request needs, as one object: the caller's environment (from its API key), the
store, the moment the request is served at, and the process's caches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from ..clock import now as clock_now
from ..domain.instants import to_micros
from ..services.events import GROUP_REQUEST_EVENTS, GroupCommitter
from ..services.keys import environment_of
from ..store import Store
from ..store.catalog_state import Fingerprint, fingerprint
from .caches import CatalogCache, CatalogState, KeyCache
from .errors import ApiError
from .metrics import Metrics

if TYPE_CHECKING:
    from .solvimon.config import SolvimonCache

# Declares the key in the OpenAPI document (components.securitySchemes, and `security` on every
# operation that depends on `current_caller`); the key itself is read by `api_key`, which also accepts
# Authorization: Bearer.
API_KEY_SCHEME = APIKeyHeader(name="X-API-KEY", scheme_name="ApiKey", auto_error=False,
                              description="The environment's API key (`ratecard keys create`); "
                                          "`Authorization: Bearer <key>` is accepted too.")


@dataclass(frozen=True)
class Caller:
    """One authenticated request. `now` is read once, so every part of the request (validation,
    storing, rendering) sees the same moment; RATECARD_NOW pins it."""

    store: Store
    environment: str
    now: datetime
    catalogs: CatalogCache
    solvimon: SolvimonCache
    metrics: Metrics
    committer: GroupCommitter | None = None  # group commit of small event writes (None: each writes alone)

    @property
    def now_us(self) -> int:
        return to_micros(self.now)

    @cached_property
    def fingerprint(self) -> Fingerprint:
        """What the caches are checked against, read on first use and then kept for the request."""
        writes = self.catalogs.writes
        found = fingerprint(self.store, self.environment)
        self.catalogs.saw(self.environment, found, writes)
        return found

    def group_commit(self, events: int) -> GroupCommitter | None:
        """The committer for a write of `events` events, None when they are written alone (none
        configured, or a batch big enough to pay for its own commit: it COPYs on its own). With
        one, the request assumes the fingerprint this process saw last instead of reading it: the
        committer confirms it in its transaction."""
        if self.committer is None or events > GROUP_REQUEST_EVENTS:
            return None
        seen = self.catalogs.seen(self.environment)
        if seen is not None and "fingerprint" not in self.__dict__:
            self.__dict__["fingerprint"] = seen  # what cached_property would have stored
        return self.committer

    def reuse_recent_fingerprint(self, seconds: float) -> bool:
        """For a read that may be `seconds` behind another process's changes: use the fingerprint
        this process read less than `seconds` ago (no query), when there is one; True if so.
        This process's own writes make it read again (RequestIdAndLatency forgets the reads)."""
        if "fingerprint" in self.__dict__:
            return True
        recent = self.catalogs.seen_within(self.environment, seconds)
        if recent is None:
            return False
        self.__dict__["fingerprint"] = recent  # what cached_property would have stored
        return True

    def read_fingerprint_again(self) -> None:
        """Drop the fingerprint this request assumed or read: the next use reads it."""
        self.__dict__.pop("fingerprint", None)

    def validated_again(self, current: Fingerprint) -> None:
        """The committer found a newer fingerprint: use it from now on (the caches rebuild)."""
        self.catalogs.saw(self.environment, current)
        self.__dict__["fingerprint"] = current

    def catalog(self) -> CatalogState | None:
        """The environment's current catalog (built, cached), None when none was applied."""
        return self.catalogs.current(self.store, self.environment, self.fingerprint, self.now)


async def current_caller(request: Request, _: str | None = Depends(API_KEY_SCHEME)) -> Caller:
    """The FastAPI dependency of every route that needs a key; 401 for a missing, wrong or
    revoked key. A key in the few-seconds cache costs no thread hop (async); else it is looked
    up on a worker thread."""
    if credential_repeated(request.scope["headers"]):
        raise ApiError(401, "UNAUTHORISED", REPEATED_CREDENTIAL)
    key = api_key(request.headers)
    if not key:
        raise ApiError(401, "UNAUTHORISED", unauthorised_message(key))
    state = request.app.state
    found = state.keys.get(key)
    if found is None:
        found = await run_in_threadpool(key_environment, state, key)
    if found is None:
        raise ApiError(401, "UNAUTHORISED", unauthorised_message(key))
    return Caller(state.store, found, clock_now(), state.catalogs, state.solvimon, state.metrics,
                  getattr(state, "committer", None))


def api_key(headers: Mapping[str, str]) -> str | None:
    """The key from X-API-KEY, else from Authorization: Bearer (header names in lower case)."""
    key = headers.get("x-api-key")
    if key:
        return key
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


CREDENTIAL_HEADERS = (b"x-api-key", b"authorization")
REPEATED_CREDENTIAL = "send the API key once: one X-API-KEY or one Authorization header"


def credential_repeated(raw_headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """A request naming a credential header twice is refused whatever the values: which of two
    keys counts (the first? the last?) must never decide which environment a request writes to."""
    seen = [name.lower() for name, _ in raw_headers if name.lower() in CREDENTIAL_HEADERS]
    return len(seen) != len(set(seen))


def unauthorised_message(key: str | None) -> str:
    """The 401's sentence, the same from the body-bounding middleware and from the routes."""
    if not key:
        return "missing API key: send it in X-API-KEY or Authorization: Bearer"
    return "the API key is not valid or was revoked"


def key_environment(state: Any, key: str) -> str | None:
    """The environment of a valid, unrevoked key (through the few-seconds cache), else None.
    Shared by `current_caller` and the Idempotency-Key middleware."""
    cache: KeyCache = state.keys
    found = cache.get(key)
    if found is None:
        stamp = cache.stamp()
        found = environment_of(state.store, key)
        if found is not None:
            cache.put(key, found, stamp)
    return found
