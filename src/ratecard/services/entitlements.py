"""What a customer is entitled to right now (Solvimon's entitlements): the features the plans of
its active subscriptions grant, and for a usage-limited feature the usage of its meter over the
subscription's current period so far.

Apps ask this on their own request path, so a long-running process answers from an in-process
cache (EntitlementCache): one entry per (environment, customer), computed from the plan features
and the upcoming invoice's usage (billing.preview, the invoice run's own measure), refreshed in
the background when
  - the ingest path stores events for the customer (`usage_changed`, called by the ingest services
    behind the API's ingest routes and by file imports),
  - it is older than TTL seconds (what another process ingested is seen within about TTL),
and computed again before answering when the catalog version changed or its billing period ended.
Every answer carries `as_of`: the instant its usage was measured at.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from .. import clock
from ..billing.preview import usage_so_far
from ..catalog import Catalog
from ..catalog.features import NUMBER, SWITCH, as_number, enum_values
from ..catalog.schema import Feature
from ..store import Store, reader
from .customer_views import plan_in_force
from .entitlement_overrides import customer_overrides

TTL = 5.0  # seconds an entry is trusted without an ingest in this process telling otherwise
TTL_VARIABLE = "RATECARD_ENTITLEMENTS_TTL"  # overrides TTL (0.5 to 3600 seconds)


def ttl_setting() -> float:
    """TTL, or RATECARD_ENTITLEMENTS_TTL when set to a number of seconds in range (else TTL)."""
    try:
        seconds = float(os.environ.get(TTL_VARIABLE, "").strip() or TTL)
    except ValueError:
        return TTL
    return seconds if 0.5 <= seconds <= 3600 else TTL


MAX_ENTRIES = 50_000
# seconds the list of ready roll-ups read by one computation may be reused by the next ones (a
# roll-up built or dropped by another process is seen within this; by this process, at once)
ROLLUP_REGISTRY_AGE = 1.0


@dataclass(frozen=True)
class Granted:
    """One feature one subscription's plan grants."""

    feature: Feature
    value: Any  # Decimal (number) | bool (switch) | list[str] (enum)
    usage: Decimal | None = None  # a usage-limited number feature: its meter's usage this period
    override: bool = False  # the value is the customer's own (services.entitlement_overrides), not the plan's

    @property
    def remaining(self) -> Decimal | None:
        if self.usage is None or not isinstance(self.value, Decimal):
            return None
        return max(self.value - self.usage, Decimal(0))


@dataclass(frozen=True)
class SubscriptionEntitlements:
    subscription: str
    plan: str
    period_start: datetime | None
    period_end: datetime | None
    granted: tuple[Granted, ...]


@dataclass(frozen=True)
class CustomerEntitlements:
    customer: str
    catalog_version: int
    as_of: datetime
    subscriptions: tuple[SubscriptionEntitlements, ...]
    valid_until: datetime | None = None  # the earliest end of the periods the usage was measured in

    def merged(self) -> list[Granted]:
        """One value per feature over all subscriptions: the largest number (usages added up), a switch on
        when any grants it, the union of enum values (in the feature's order)."""
        by_code: dict[str, Granted] = {}
        for subscription in self.subscriptions:
            for item in subscription.granted:
                seen = by_code.get(item.feature.code)
                by_code[item.feature.code] = item if seen is None else _merge(seen, item)
        return list(by_code.values())


def _merge(a: Granted, b: Granted) -> Granted:
    if a.feature.type == NUMBER:
        usage = None if a.usage is None and b.usage is None else (a.usage or Decimal(0)) + (b.usage or Decimal(0))
        return Granted(a.feature, max(a.value, b.value), usage, a.override or b.override)
    if a.feature.type == SWITCH:
        return Granted(a.feature, a.value or b.value, override=a.override or b.override)
    return Granted(a.feature, [v for v in a.feature.values if v in a.value or v in b.value],
                   override=a.override or b.override)


def plan_value(feature: Feature, value: Any) -> Any:
    if feature.type == NUMBER:
        return as_number(value)
    if feature.type == SWITCH:
        return bool(value)
    return [v for v in feature.values if v in enum_values(value)]


def compute(store: Store, environment: str, catalog: Catalog, catalog_version: int, customer: str,
            now: datetime, registry_age: float = 0.0) -> CustomerEntitlements:
    """The customer's entitlements at `now`, measured from the store (no cache). `registry_age`:
    which roll-ups are ready may be what this process read that many seconds ago (see
    store.usage.few_windows_usage; the figures are the same either way)."""
    features = {feature.code: feature for feature in catalog.document.features}
    plans = {plan.code: plan for plan in catalog.document.plans}
    active = [spec for spec in catalog.subscriptions_of(customer) if spec.schedule().period_containing(now) is not None]
    overrides = customer_overrides(store, environment, catalog.document, customer) if active else {}
    metered = any(features[code].meter for spec in active for code in plans[plan_in_force(spec, now)].features
                  if code in features) or any(features[code].meter for code in overrides if code in features)
    measured = usage_so_far(store, catalog, customer, now, environment, registry_age) if metered else {}
    out = []
    for spec in active:
        code = plan_in_force(spec, now)
        usage = {item.meter: item.quantity for item in measured.get(spec.reference, [])}
        granted = []
        for feature_code, raw in plans[code].features.items():
            feature = features.get(feature_code)
            if feature is None:
                continue
            used = usage.get(feature.meter, Decimal(0)) if feature.meter else None
            granted.append(Granted(feature, plan_value(feature, raw), used))
        granted = with_overrides(granted, overrides, features, usage)
        period = spec.schedule().period_containing(now)
        out.append(SubscriptionEntitlements(spec.reference, code, period.start if period else None,
                                            period.end if period else None, tuple(granted)))
    ends = [item.period_end for item in out if item.period_end is not None]
    return CustomerEntitlements(customer, catalog_version, now, tuple(out), min(ends) if ends else None)


def with_overrides(granted: list[Granted], overrides: dict[str, Any], features: dict[str, Feature],
                   usage: dict[str, Decimal]) -> list[Granted]:
    """One subscription's grants with the customer's overrides applied: an overridden feature takes
    the customer's value (its usage stays the meter's); one the plan does not grant is added, its
    usage measured when the plan's invoices measure its meter (else none is shown)."""
    if not overrides:
        return granted
    out = [replace(item, value=overrides[item.feature.code], override=True) if item.feature.code in overrides
           else item for item in granted]
    seen = {item.feature.code for item in granted}
    for code, value in overrides.items():
        feature = features.get(code)
        if feature is not None and code not in seen:
            out.append(Granted(feature, value, usage.get(feature.meter) if feature.meter else None, True))
    return out


def _measure(store: Store, environment: str, catalog: Catalog, catalog_version: int, customer: str,
             now: datetime) -> CustomerEntitlements:
    """`compute` as the cache runs it: on the store's reader (connections kept open), with the roll-up
    registry read at most ROLLUP_REGISTRY_AGE seconds ago; tried once more after a failure (a kept
    connection the database closed fails its first use, and its pool replaces it)."""
    measuring = reader(store)
    try:
        return compute(measuring, environment, catalog, catalog_version, customer, now, ROLLUP_REGISTRY_AGE)
    except Exception:  # noqa: BLE001 - read-only: the second attempt's failure is the one reported
        return compute(measuring, environment, catalog, catalog_version, customer, now, ROLLUP_REGISTRY_AGE)


@dataclass
class _Entry:
    catalog_version: int
    expires: float  # time.monotonic() after which the entry is refreshed (another process may have ingested)
    answer: CustomerEntitlements
    store: Store
    catalog: Catalog
    stale: bool = False  # events were stored since: served, and refreshed in the background


class EntitlementCache:
    """Per process: each customer's entitlements, served from memory.

    Kept fresh by the ingest path: `usage_changed` (called after events are stored) marks the
    customers' entries stale and has a background thread recompute them, so a read right after an
    ingest is still a memory read: it answers the previous figures (their `as_of` says when they were
    measured) until the refreshed ones replace them, a few milliseconds later. An entry older than
    TTL seconds (what other processes ingested) is served and refreshed the same way. A read with no
    entry, a new catalog version or a billing period that has ended computes before it answers."""

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = ttl_setting() if ttl is None else ttl
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str, str], _Entry] = {}
        # per (environment, customer), bumped by every usage change (entry or not): an answer computed
        # across a change is refreshed again; `_epoch` moves when the counters are cleared
        self._generation: dict[tuple[str, str], int] = {}
        self._epoch = 0
        self._queued: set[tuple[int, str, str]] = set()
        self._stores: set[int] = set()  # the stores entries were computed from (one, but for tests)
        self._pool: ThreadPoolExecutor | None = None

    def get(self, store: Store, environment: str, catalog: Catalog, catalog_version: int, customer: str,
            now: datetime) -> CustomerEntitlements:
        key = (id(store), environment, customer)  # the entry holds the store: the id is not reused meanwhile
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry.catalog_version == catalog_version and now >= entry.answer.as_of \
                and (entry.answer.valid_until is None or now < entry.answer.valid_until):
            if entry.stale or entry.expires <= time.monotonic():
                self._refresh_later(key)
            return entry.answer
        with self._lock:
            generation = self._stamp(key)
        answer = _measure(store, environment, catalog, catalog_version, customer, now)
        self._keep(key, generation, _Entry(catalog_version, time.monotonic() + self.ttl, answer, store, catalog))
        return answer

    def cached(self, store: Store, environment: str, catalog_version: int, customer: str,
               now: datetime) -> CustomerEntitlements | None:
        """What `get` answers when it answers from memory (a stale or old entry queued for its
        background refresh), else None: `get` would compute, so the caller calls it off its event loop."""
        with self._lock:
            entry = self._entries.get((id(store), environment, customer))
        if entry is None or entry.catalog_version != catalog_version or now < entry.answer.as_of \
                or (entry.answer.valid_until is not None and now >= entry.answer.valid_until):
            return None
        if entry.stale or entry.expires <= time.monotonic():
            self._refresh_later((id(store), environment, customer))
        return entry.answer

    def _stamp(self, key: tuple[int, str, str]) -> tuple[int, int]:
        return self._epoch, self._generation.get((key[1], key[2]), 0)

    def _keep(self, key: tuple[int, str, str], generation: tuple[int, int], entry: _Entry) -> None:
        """Keep a read's computation, unless the entry holds a later measurement of the same catalog
        version (a request whose `now` precedes a refresh that ended meanwhile computed its own):
        a customer's kept answer never goes back in time."""
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current.catalog_version == entry.catalog_version \
                    and current.answer.as_of > entry.answer.as_of:
                return
            entry.stale = self._stamp(key) != generation  # changed meanwhile: refresh again
            if len(self._entries) >= MAX_ENTRIES and key not in self._entries:
                self._entries.clear()
            self._entries[key] = entry
            self._stores.add(key[0])
        if entry.stale:
            self._refresh_later(key)

    def _refresh_later(self, key: tuple[int, str, str]) -> None:
        with self._lock:
            if key in self._queued or key not in self._entries:
                return
            self._queued.add(key)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="entitlements")
            pool = self._pool
        pool.submit(self._refresh, key)

    def _refresh(self, key: tuple[int, str, str]) -> None:
        """Recompute one entry; still queued until kept, so a change meanwhile (a newer generation)
        queues it again once this one is kept. The answer replaces the entry it was computed for
        only: one dropped meanwhile (`forget`) or replaced by a read's computation is newer."""
        with self._lock:
            entry = self._entries.get(key)
            generation = self._stamp(key)
        try:
            answer = None if entry is None else _measure(entry.store, key[1], entry.catalog, entry.catalog_version,
                                                        key[2], clock.now())
        except Exception:  # noqa: BLE001 - a failed refresh drops the entry: the next read computes and reports
            answer = None
        with self._lock:
            self._queued.discard(key)
            if entry is None or self._entries.get(key) is not entry:
                return
            if answer is None:
                del self._entries[key]
                return
            kept = replace(entry, expires=time.monotonic() + self.ttl, answer=answer,
                           stale=self._stamp(key) != generation)  # changed meanwhile: refresh again
            self._entries[key] = kept
        if kept.stale:
            self._refresh_later(key)

    def usage_changed(self, environment: str, customers: Iterable[str] | None) -> None:
        """Events were stored for these customers (None: any customer of the environment): their
        entries are refreshed in the background (with None, on their next read)."""
        refresh = []
        wanted = None if customers is None else set(customers)
        with self._lock:
            if wanted is None or len(self._generation) + len(wanted) > MAX_ENTRIES:
                self._generation.clear()
                self._epoch += 1  # every answer being computed now is refreshed once kept
            else:
                for customer in wanted:
                    self._generation[(environment, customer)] = self._generation.get((environment, customer), 0) + 1
            keys = [key for key in self._entries if key[1] == environment] if wanted is None else \
                [(store, environment, customer) for customer in wanted for store in self._stores]
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.stale = True
                    refresh.append(key)
        if customers is not None:
            for key in refresh:
                self._refresh_later(key)

    def forget(self, environment: str, customers: Iterable[str]) -> None:
        """The customers' answers changed for another reason than usage (an override, a usage limit):
        their entries are dropped, so the next read computes; an answer being computed meanwhile is
        refreshed once kept."""
        wanted = set(customers)
        with self._lock:
            for customer in wanted:
                self._generation[(environment, customer)] = self._generation.get((environment, customer), 0) + 1
            for key in [key for key in self._entries if key[1] == environment and key[2] in wanted]:
                del self._entries[key]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Until no refresh is queued (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._queued:
                    return
            time.sleep(0.005)


ENTITLEMENTS = EntitlementCache()


def usage_changed(environment: str, customers: Iterable[str] | None = None) -> None:
    """The ingest path's hook: events were stored for `customers` (None: unknown, all of them)."""
    ENTITLEMENTS.usage_changed(environment, customers)
