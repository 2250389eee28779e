"""Catalog features and what plans grant: every problem reported with its path; values merged over
several subscriptions as the entitlements answer shows them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.catalog import check_document
from ratecard.catalog.schema import Feature
from ratecard.services.entitlements import CustomerEntitlements, Granted, SubscriptionEntitlements


def _document(features: list[dict[str, Any]], granted: dict[str, Any]) -> dict[str, Any]:
    return {"meters": [{"code": "api_calls", "aggregation": "count"}, {"code": "storage", "aggregation": "max",
                                                                       "field": "gb"}],
            "features": features,
            "plans": [{"code": "pro", "currency": "EUR", "features": granted, "charges": [
                {"code": "calls", "meter": "api_calls", "model": "per_unit", "unit_amount": "0"}]}]}


FEATURES = [{"code": "calls", "type": "number", "meter": "api_calls", "name": "API calls a month"},
            {"code": "sso", "type": "switch"},
            {"code": "support", "type": "enum", "values": ["basic", "priority", "dedicated"]}]


def test_a_plan_grants_numbers_switches_and_enum_values() -> None:
    document, problems = check_document(_document(FEATURES, {"calls": "10000", "sso": True,
                                                             "support": ["priority", "dedicated"]}))
    assert problems == []
    assert document is not None
    assert [(f.code, f.type, f.meter) for f in document.features] == [
        ("calls", "number", "api_calls"), ("sso", "switch", None), ("support", "enum", None)]
    assert document.plans[0].features == {"calls": "10000", "sso": True, "support": ["priority", "dedicated"]}


def test_every_problem_is_reported_with_its_path() -> None:
    features = [*FEATURES,
                {"code": "sso", "type": "switch"},  # duplicate
                {"code": "seats", "type": "number", "meter": "nope"},
                {"code": "tier", "type": "enum"},
                {"code": "flag", "type": "switch", "values": ["a"], "meter": "api_calls"},
                {"code": "disk", "type": "number", "meter": "storage"},
                {"code": "credit", "type": "amount"}]
    granted = {"calls": "-1", "sso": "yes", "support": "gold", "unknown": 1, "disk": 5, "tier": "x"}
    _, problems = check_document(_document(features, granted))
    found = {problem.path: problem.message for problem in problems}
    assert set(found) == {"features[3].code", "features[4].meter", "features[5].values", "features[6].values",
                          "features[6].meter", "features[8].type", "plans[0].features.calls",
                          "plans[0].features.sso", "plans[0].features.support", "plans[0].features.unknown",
                          "plans[0].features.disk", "plans[0].features.tier"}
    assert "unknown meter 'nope'" in found["features[4].meter"]
    assert "'gold' is not one of the feature's values (basic, priority, dedicated)" in found["plans[0].features.support"]
    assert "no charge of this plan reads" in found["plans[0].features.disk"]
    assert "must not be negative" in found["plans[0].features.calls"]


def test_too_many_values_and_long_codes_are_refused() -> None:
    features = [{"code": "x" * 201, "type": "switch"},
                {"code": "big", "type": "enum", "values": [f"v{i}" for i in range(51)]}]
    _, problems = check_document(_document(features, {}))
    assert {problem.path for problem in problems} == {"features[0].code", "features[1].values"}
    _, problems = check_document(_document(FEATURES, {"calls": "1e400"}))
    assert [problem.path for problem in problems] == ["plans[0].features.calls"]


def _granted(feature: Feature, value: Any, usage: Decimal | None = None) -> Granted:
    return Granted(feature, value, usage)


def test_two_subscriptions_merge_hand_computed() -> None:
    calls = Feature(code="calls", type="number", meter="api_calls")
    sso = Feature(code="sso", type="switch")
    support = Feature(code="support", type="enum", values=["basic", "priority", "dedicated"])
    first = SubscriptionEntitlements("s1", "pro", None, None, (
        _granted(calls, Decimal(10000), Decimal(2500)), _granted(sso, False), _granted(support, ["dedicated"])))
    second = SubscriptionEntitlements("s2", "team", None, None, (
        _granted(calls, Decimal(5000), Decimal(700)), _granted(sso, True), _granted(support, ["basic"])))
    merged = {g.feature.code: g for g in CustomerEntitlements("acme", 1, None, (first, second)).merged()}  # type: ignore[arg-type]
    # the largest quota, usage over both: 10000 - (2500 + 700) = 6800 left
    assert (merged["calls"].value, merged["calls"].usage, merged["calls"].remaining) == \
        (Decimal(10000), Decimal(3200), Decimal(6800))
    assert merged["sso"].value is True
    assert merged["support"].value == ["basic", "dedicated"]  # in the feature's order


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.decimals(0, 10**9, places=2), st.decimals(0, 10**9, places=2)), min_size=1, max_size=5))
def test_merged_number_is_the_largest_quota_and_remaining_never_negative(parts: list[tuple[Decimal, Decimal]]) -> None:
    calls = Feature(code="calls", type="number", meter="api_calls")
    subscriptions = tuple(SubscriptionEntitlements(f"s{i}", "p", None, None, (_granted(calls, value, used),))
                          for i, (value, used) in enumerate(parts))
    merged = CustomerEntitlements("c", 1, None, subscriptions).merged()[0]  # type: ignore[arg-type]
    assert merged.value == max(value for value, _ in parts)
    assert merged.usage == sum((used for _, used in parts), Decimal(0))
    assert merged.remaining == max(merged.value - merged.usage, Decimal(0))
    assert merged.remaining is not None and merged.remaining >= 0


def test_the_cache_serves_from_memory_and_the_ingest_hook_refreshes_it(monkeypatch: Any) -> None:
    from datetime import UTC, datetime

    from ratecard.services import entitlements

    computed: list[tuple[int, str]] = []
    usage = {"value": Decimal(0)}
    calls = Feature(code="calls", type="number", meter="api_calls")

    def fake(store: Any, environment: str, catalog: Any, version: int, customer: str, now: datetime,
             *_: Any) -> Any:
        computed.append((version, customer))
        granted = (Granted(calls, Decimal(100), usage["value"]),)
        return CustomerEntitlements(customer, version, now, (SubscriptionEntitlements("s", "p", None, None, granted),))

    monkeypatch.setattr(entitlements, "compute", fake)
    monkeypatch.setattr(entitlements, "reader", lambda store: store)  # no database here
    monkeypatch.setenv("RATECARD_NOW", "2026-01-25T00:00:00Z")  # the clock background refreshes read
    cache = entitlements.EntitlementCache(ttl=3600)
    now = datetime(2026, 1, 25, tzinfo=UTC)
    assert cache.get(None, "live", None, 1, "acme", now).merged()[0].usage == 0  # type: ignore[arg-type]
    cache.get(None, "live", None, 1, "acme", now)  # type: ignore[arg-type]
    assert computed == [(1, "acme")]  # the second read is a memory read
    usage["value"] = Decimal(7)
    cache.usage_changed("live", ["acme", "other"])  # the ingest hook: refreshed in the background
    cache.wait_idle()
    assert cache.get(None, "live", None, 1, "acme", now).merged()[0].usage == 7  # type: ignore[arg-type]
    assert computed == [(1, "acme"), (1, "acme")]
    cache.get(None, "live", None, 2, "acme", now)  # type: ignore[arg-type]  # a new catalog version: computed
    assert computed[-1] == (2, "acme") and len(computed) == 3
