"""The entitlement cache kept fresh by the ingest path, on SQLite and PostgreSQL: after an ingest a
read answers the previous figures with their own `as_of` until the background refresh has run, then
the new figures with a later `as_of`; an answer is never labelled newer than the data it counts.

The clock is RATECARD_NOW (what the background refresh reads), moved forward by the tests; events
are stored through the ingest service (services.events.import_batch), which tells the cache."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratecard.domain.instants import rfc3339, to_micros
from ratecard.services import entitlements
from ratecard.services.entitlements import CustomerEntitlements, EntitlementCache
from ratecard.services.events import decode_event, import_batch
from ratecard.store import Store

from .scenario import current, workspace

CATALOG = """
meters:
  - {code: api_calls, aggregation: count}
features:
  - {code: calls_quota, type: number, meter: api_calls}
  - {code: sso, type: switch}
plans:
  - code: pro
    currency: EUR
    charges: [{code: calls, meter: api_calls, model: per_unit, unit_amount: "0.01"}]
    features: {calls_quota: 100, sso: true}
customers:
  - {reference: acme, currency: EUR}
  - {reference: globex, currency: EUR}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-01-01}
  - {reference: globex-pro, customer: globex, plan: pro, start: 2026-01-01}
"""
T0 = datetime(2026, 1, 25, 12, tzinfo=UTC)
EVENT_TIME = "2026-01-10T08:00:00Z"  # inside every answer's period so far


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[EntitlementCache]:
    """A cache of its own as the process's: the ingest service's hook refreshes this one."""
    fresh = EntitlementCache(ttl=3600)  # no refresh by age: only the ingest hook's
    monkeypatch.setattr(entitlements, "ENTITLEMENTS", fresh)
    yield fresh
    fresh.wait_idle()


def _at(moment: datetime) -> None:
    os.environ["RATECARD_NOW"] = rfc3339(to_micros(moment))


_ids = iter(range(10**9))


def _ingest(store: Store, customer: str, count: int, now: datetime) -> None:
    version, catalog = current(store)
    records = [decode_event(i + 1, orjson.dumps({"id": f"ev-{next(_ids)}", "customer": customer, "meter": "api_calls",
                                                 "timestamp": EVENT_TIME})) for i in range(count)]
    report = import_batch(store, "live", now, records, False, None, catalog)
    assert report.stored == count


def _read(cache: EntitlementCache, store: Store, customer: str, now: datetime) -> CustomerEntitlements:
    version, catalog = current(store)
    return cache.get(store, "live", catalog, version, customer, now)


def _usage(answer: CustomerEntitlements) -> Decimal:
    quota = next(item for item in answer.merged() if item.feature.code == "calls_quota")
    assert quota.usage is not None
    return quota.usage


def test_an_ingest_shows_after_the_refresh_with_a_later_as_of_and_the_old_label_until_then(
        db_url: str, cache: EntitlementCache, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = workspace(db_url, CATALOG)
    monkeypatch.setenv("RATECARD_NOW", rfc3339(to_micros(T0)))
    try:
        _ingest(store, "acme", 3, T0)
        first = _read(cache, store, "acme", T0)
        assert (_usage(first), first.as_of) == (Decimal(3), T0)
        quota = next(item for item in first.merged() if item.feature.code == "calls_quota")
        assert (quota.value, quota.remaining) == (Decimal(100), Decimal(97))

        # hold the background refresh inside its measurement, to see what is served meanwhile
        entered, release = threading.Event(), threading.Event()
        measure = entitlements.usage_so_far

        def held(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread().name.startswith("entitlements"):
                entered.set()
                assert release.wait(30)
            return measure(*args, **kwargs)

        monkeypatch.setattr(entitlements, "usage_so_far", held)
        later = T0 + timedelta(minutes=1)
        _at(later)
        _ingest(store, "acme", 2, later)
        assert entered.wait(30)  # the ingest had the entry refreshed
        version, _ = current(store)
        meanwhile = cache.cached(store, "live", version, "acme", later)  # the route's memory read
        assert meanwhile is not None
        assert (_usage(meanwhile), meanwhile.as_of) == (Decimal(3), T0)  # old figures, old label
        assert (_usage(_read(cache, store, "acme", later)), _read(cache, store, "acme", later).as_of) == (3, T0)
        release.set()
        cache.wait_idle()
        after = _read(cache, store, "acme", later)
        assert (_usage(after), after.as_of) == (Decimal(5), later)
        assert _usage(_read(cache, store, "globex", later)) == 0  # another customer's events are not counted
    finally:
        store.dispose()


_workspaces: dict[str, Store] = {}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(["ingest", "read", "settle"]), st.sampled_from(["acme", "globex"]),
                                st.integers(1, 3)), min_size=1, max_size=10))
def test_every_answer_counts_all_it_is_labelled_with_and_settles_on_everything(
        db_url: str, steps: list[tuple[str, str, int]]) -> None:
    """Property: whatever the order of ingests and reads, every answer's usage counts at least the
    events stored before its `as_of` (never labelled newer than its data) and at most those stored
    so far; as_of never goes back; once the refreshes have run, the usage is every event stored.
    The background refreshes run only at the "settle" steps (held otherwise), so the reads between
    are answered by entries whose refresh is pending."""
    if db_url not in _workspaces:  # one database for every example: each counts from what it finds
        _workspaces.clear()
        _workspaces[db_url] = workspace(db_url, CATALOG)[0]
    store = _workspaces[db_url]
    cache = EntitlementCache(ttl=3600)
    saved = os.environ.get("RATECARD_NOW")
    gate = threading.Event()
    measure = entitlements.usage_so_far

    def gated(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("entitlements"):
            assert gate.wait(30)
        return measure(*args, **kwargs)

    def settle() -> None:
        gate.set()
        cache.wait_idle()
        gate.clear()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(entitlements, "ENTITLEMENTS", cache)
        patch.setattr(entitlements, "usage_so_far", gated)
        try:
            clock = T0
            _at(clock)
            version, catalog = current(store)
            found = {customer: _usage(entitlements.compute(store, "live", catalog, version, customer, clock))
                     for customer in ("acme", "globex")}
            stored: dict[str, list[datetime]] = {customer: [] for customer in found}  # the clock at each ingest
            last: dict[str, datetime] = {}
            for customer in stored:
                _read(cache, store, customer, clock)
            for action, customer, count in steps:
                clock += timedelta(seconds=1)
                _at(clock)
                if action == "ingest":
                    _ingest(store, customer, count, clock)
                    stored[customer] += [clock] * count
                    continue
                if action == "settle":
                    settle()
                answer = _read(cache, store, customer, clock)
                before = sum(1 for moment in stored[customer] if moment < answer.as_of)
                counted = _usage(answer) - found[customer]
                assert before <= counted <= len(stored[customer]), (answer.as_of, stored[customer])
                assert answer.as_of >= last.get(customer, answer.as_of)
                last[customer] = answer.as_of
            settle()
            for customer, moments in stored.items():
                settled = _read(cache, store, customer, clock)
                assert _usage(settled) - found[customer] == len(moments)
                assert not moments or settled.as_of >= max(moments)
        finally:
            gate.set()
            cache.wait_idle()
            if saved is None:
                os.environ.pop("RATECARD_NOW", None)
            else:
                os.environ["RATECARD_NOW"] = saved


def test_a_refresh_that_ends_after_its_entry_was_dropped_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """An override changed while a background refresh was measuring (`forget`): the refresh's answer
    (measured with the override before) is thrown away, and the next read computes the new one."""
    from ratecard.catalog.schema import Feature
    from ratecard.services.entitlements import Granted, SubscriptionEntitlements

    limit = {"value": Decimal(100)}
    entered, release = threading.Event(), threading.Event()

    def fake(store: Any, environment: str, catalog: Any, version: int, customer: str, now: datetime,
             *_: Any) -> CustomerEntitlements:
        value = limit["value"]
        if threading.current_thread().name.startswith("entitlements"):
            entered.set()
            assert release.wait(30)
        granted = (Granted(Feature(code="calls", type="number", meter="api_calls"), value, Decimal(0)),)
        return CustomerEntitlements(customer, version, now, (SubscriptionEntitlements("s", "p", None, None, granted),))

    monkeypatch.setattr(entitlements, "compute", fake)
    monkeypatch.setattr(entitlements, "reader", lambda store: store)
    monkeypatch.setenv("RATECARD_NOW", rfc3339(to_micros(T0)))
    cache = EntitlementCache(ttl=3600)
    assert cache.get(None, "live", None, 1, "acme", T0).merged()[0].value == 100  # type: ignore[arg-type]
    cache.usage_changed("live", ["acme"])
    assert entered.wait(30)  # measuring with the limit of 100
    limit["value"] = Decimal(500)
    cache.forget("live", ["acme"])  # the override changed: the entry is dropped
    release.set()
    cache.wait_idle()
    assert cache.cached(None, "live", 1, "acme", T0) is None  # type: ignore[arg-type]  # not the refresh's 100
    assert cache.get(None, "live", None, 1, "acme", T0).merged()[0].value == 500  # type: ignore[arg-type]


def test_a_read_computing_for_an_earlier_now_does_not_replace_a_later_answer(
        db_url: str, cache: EntitlementCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request whose `now` precedes the kept answer's as_of (it began before a refresh that ended
    meanwhile) gets an answer measured at its own `now`; the kept answer stays the later one."""
    store, _ = workspace(db_url, CATALOG)
    later = T0 + timedelta(minutes=5)
    monkeypatch.setenv("RATECARD_NOW", rfc3339(to_micros(later)))
    try:
        _ingest(store, "acme", 2, later)
        assert _read(cache, store, "acme", later).as_of == later
        earlier = _read(cache, store, "acme", T0)
        assert (earlier.as_of, _usage(earlier)) == (T0, Decimal(2))
        version, _ = current(store)
        kept = cache.cached(store, "live", version, "acme", later)
        assert kept is not None and kept.as_of == later
    finally:
        store.dispose()
