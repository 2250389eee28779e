"""Per-process caches every worker keeps: valid API keys, and the current catalog of each
environment with its event validator. Each is checked against the database on use, so what
another worker changes is seen on the next request."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from ..catalog import Catalog
from ..services.catalog import catalog_at
from ..services.events import EventValidator, LateWindows
from ..services.keys import revocations
from ..store import Store
from ..store.catalog_state import Fingerprint


class KeyCache:
    """Valid keys for a few seconds, so a burst of requests does not hash and query per call.

    Short-lived on purpose: a key revoked by another process (`ratecard keys revoke`, another
    worker's console) stops working within TTL seconds on every worker; a key revoked by this
    process stops at once (services.keys counts its revocations, and the cache is dropped when
    the count moves).
    """

    TTL = 5.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, float]] = {}
        self._revocations = revocations()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            if self._revocations != revocations():
                self._entries.clear()
                self._revocations = revocations()
            entry = self._entries.get(key)
            if entry is None or entry[1] < time.monotonic():
                return None
            return entry[0]

    def stamp(self) -> int:
        """Taken before a key is looked up in the database, and given back to `put`."""
        return revocations()

    def put(self, key: str, env: str, stamp: int | None = None) -> None:
        """Keep a key found valid; not when a key was revoked in this process since `stamp`
        (the lookup may have read the key just before its revocation)."""
        with self._lock:
            if stamp is not None and stamp != revocations():
                return
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (env, time.monotonic() + self.TTL)


@dataclass
class CatalogState:
    """One environment's current catalog, built, and the validator events are checked with.
    `late` keeps the validator's late windows current (`late.finals`: the fingerprint's count of
    finals they were read at), reading only the documents finalized since. The validator follows
    the fingerprint's archived months (`follow_archived`: it refuses events in them)."""

    version: int
    catalog: Catalog
    validator: EventValidator
    late: LateWindows = field(default_factory=LateWindows)


class CatalogCache:
    """The current catalog per environment, rebuilt only when a new version was applied; its
    validator's finalized windows are re-read only when an invoice was finalized (from any
    process: finalizing changes which events are late), its archived months set again only when
    the fingerprint's moved (a detach by the CLI)."""

    def __init__(self) -> None:
        self._states: dict[str, CatalogState] = {}
        self._seen: dict[str, Fingerprint] = {}
        self._read_at: dict[str, float] = {}  # time.monotonic() the fingerprint was last read
        self.writes = 0  # bumped by forget_reads: a read that began before a write does not count as recent
        self._lock = threading.Lock()

    def seen(self, env: str) -> Fingerprint | None:
        """The environment's fingerprint as this process last read it (None: never read)."""
        return self._seen.get(env)

    def saw(self, env: str, stamp: Fingerprint, writes: int | None = None) -> None:
        """Record the fingerprint; with `writes` (the counter when the read began) it also counts
        as a recent read, unless this process served a write since the read began. A stamp behind
        the one recorded (a slow read finishing after a newer one: catalog versions and resource
        revisions only grow) is not recorded."""
        recorded = self._seen.get(env)
        if recorded is not None and ((recorded.catalog_version or 0) > (stamp.catalog_version or 0)
                                     or recorded.resources_revision > stamp.resources_revision):
            return
        self._seen[env] = stamp
        if writes is not None and writes == self.writes:
            self._read_at[env] = time.monotonic()

    def seen_within(self, env: str, seconds: float) -> Fingerprint | None:
        """The fingerprint read less than `seconds` ago and not forgotten since, else None."""
        stamp, read_at = self._seen.get(env), self._read_at.get(env)
        if stamp is None or read_at is None or time.monotonic() - read_at >= seconds:
            return None
        return stamp

    def forget_reads(self) -> None:
        """A write was served by this process: the next read that may reuse a recent fingerprint
        reads it again (so a process sees its own changes at once)."""
        self.writes += 1
        self._read_at.clear()

    def cached(self, env: str, stamp: Fingerprint) -> CatalogState | None:
        """The state for `stamp` when it is built already (no database work), else None."""
        with self._lock:
            state = self._states.get(env)
        if state is None or state.version != stamp.catalog_version or state.late.finals != stamp.finals \
                or state.validator.archived_figure != stamp.archived:
            return None
        return state

    def current(self, store: Store, env: str, stamp: Fingerprint, now: datetime) -> CatalogState | None:
        """The state for `stamp` (the environment's fingerprint, read by the caller this request)."""
        if stamp.catalog_version is None:
            return None
        with self._lock:
            state = self._states.get(env)
        if state is None or state.version != stamp.catalog_version:
            catalog = catalog_at(store, stamp.catalog_version, env)
            if catalog is None:
                return None
            state = CatalogState(stamp.catalog_version, catalog, EventValidator(catalog, now))
        state.late.refresh(store, env, state.validator, stamp.finals)  # nothing to do when they are current
        state.validator.follow_archived(stamp.archived)  # a month archived (or re-attached) by any process
        with self._lock:
            self._states[env] = state
        return state
