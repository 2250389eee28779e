"""The request path's shortcuts keep the answers: the route index finds the route the full walk
finds, a revoked key stops working (at once in this process, within the key cache's lifetime
elsewhere), and the entitlements route's reuse of a recent fingerprint never hides this
process's own catalog change and hides another process's for at most its bound. SQLite and
PostgreSQL."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
import yaml
from starlette.routing import Match

from ratecard.api.app import create_app
from ratecard.api.caches import KeyCache
from ratecard.api.dispatch import RouteIndex
from ratecard.api.solvimon import entitlements as entitlements_route
from ratecard.services import keys
from ratecard.store import open_store
from ratecard.store.catalogs import save_version
from ratecard.store.keys import list_keys, revoke_key

from .conftest import Api

NOW = "2026-01-25T12:00:00Z"


def _concrete(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def _walk(routes: list, scope: dict) -> object | None:
    """The route the router's own walk picks: the first that matches fully."""
    for route in routes:
        if route.matches(dict(scope))[0] is Match.FULL:
            return route
    return None


def test_the_route_index_picks_the_route_the_full_walk_picks() -> None:
    app = create_app("sqlite:///:memory:")
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    paths = {_concrete(getattr(route, "path", "/"), value) for route in app.router.routes
             for value in ("acme", "a/b", "entitlements")}
    paths |= {"/", "/v1", "/v1/", "/v1/customers/", "/v1/customers/acme/entitlements/x", "/nowhere/at/all",
              "/console", "/console/", "/console/customers", "/healthz/", "/v1/events/", "/v1/unknown/thing"}
    checked = 0
    for path in sorted(paths):
        for method in ("GET", "POST", "PATCH", "DELETE"):
            scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
            expected = _walk(app.router.routes, scope)
            words = tuple(path.split("/", 3)[1:3])
            candidates = index._candidates(words)
            found = _walk(list(candidates), scope) if candidates is not None else None
            assert found is expected, (method, path)
            checked += expected is not None
    assert checked > 300  # most routes were found, through the index, as by the walk


def test_unknown_operations_still_answer_the_not_implemented_envelope(api: Api) -> None:
    for method, path in (("GET", "/v1/nothing-here"), ("POST", "/v1/customers/acme/entitlements"),
                         ("DELETE", "/v1/webhooks/actions"), ("GET", "/v2/customers")):
        response = api.client.request(method, path, headers=api.headers())
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "RESOURCE_NOT_FOUND"


def _key_id(api: Api) -> str:
    store = open_store(api.url)
    try:
        return [k.id for k in list_keys(store, "live")][0]
    finally:
        store.dispose()


def test_a_key_revoked_by_this_process_is_refused_at_once(api: Api) -> None:
    assert api.get("/v1/webhooks/actions").status_code == 200  # the key is in the few-seconds cache now
    store = open_store(api.url)
    try:
        keys.revoke(store, _key_id(api), datetime(2026, 1, 25, tzinfo=UTC))  # what the console's revoke does
    finally:
        store.dispose()
    refused = api.get("/v1/webhooks/actions")
    assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORISED"
    assert api.post("/v1/events", json=[]).status_code == 401  # the body-bounding middleware's check too


def test_a_key_revoked_by_another_process_is_refused_once_the_cache_lifetime_passed(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KeyCache, "TTL", 0.3)
    assert api.get("/v1/webhooks/actions").status_code == 200
    store = open_store(api.url)
    try:  # the store's own revoke: what `ratecard keys revoke` does in its own process
        assert revoke_key(store, _key_id(api), 1)
    finally:
        store.dispose()
    time.sleep(0.35)
    assert api.get("/v1/webhooks/actions").status_code == 401


def _document(quota: int) -> dict:
    return {
        "meters": [{"code": "calls", "aggregation": "count"}],
        "features": [{"code": "calls_quota", "type": "number", "meter": "calls"}],
        "plans": [{"code": "pro", "currency": "EUR", "charges": [
            {"code": "calls", "meter": "calls", "model": "per_unit", "unit_amount": "0.01"}],
            "features": {"calls_quota": quota}}],
        "customers": [{"reference": "acme"}],
        "subscriptions": [{"reference": "acme-pro", "customer": "acme", "plan": "pro", "start": "2026-01-01"}],
    }


def _quota(api: Api) -> str:
    response = api.get("/v1/customers/acme/entitlements")
    assert response.status_code == 200, response.text
    return next(i["number"] for i in response.json()["entitlements"] if i["feature_reference"] == "calls_quota")


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATECARD_NOW", NOW)


def test_entitlements_see_a_catalog_applied_through_this_server_at_once(api: Api, pinned: None) -> None:
    api.apply_catalog(yaml.safe_dump(_document(100)))
    assert _quota(api) == "100"
    assert _quota(api) == "100"  # answered from memory, the fingerprint reused
    api.apply_catalog(yaml.safe_dump(_document(250)))
    assert _quota(api) == "250"


def test_an_event_ingest_keeps_the_entitlements_reads_in_memory_and_a_catalog_change_does_not(
        api: Api, pinned: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Storing events changes no catalog version, resource revision or final invoice: the reads
    after it reuse the recent fingerprint (no query); a catalog applied through this server is
    still read again at once. The ingested event shows once the background refresh ran."""
    from ratecard.api import context
    from ratecard.services.entitlements import ENTITLEMENTS

    reads: list[str] = []
    real = context.fingerprint

    def counted(store, environment):  # noqa: ANN001, ANN202
        reads.append(environment)
        return real(store, environment)

    monkeypatch.setattr(context, "fingerprint", counted)
    api.apply_catalog(yaml.safe_dump(_document(100)))
    assert _quota(api) == "100"
    reads.clear()
    event = [{"id": "fresh-1", "customer": "acme", "meter": "calls", "timestamp": "2026-01-24T10:00:00Z"}]
    assert api.post("/v1/events", json=event).status_code == 200
    ingest_reads = len(reads)
    ENTITLEMENTS.wait_idle()
    answer = api.get("/v1/customers/acme/entitlements").json()
    assert len(reads) == ingest_reads  # the entitlements read queried no fingerprint
    assert next(i["usage"] for i in answer["entitlements"] if i["feature_reference"] == "calls_quota") == "1"
    api.apply_catalog(yaml.safe_dump(_document(250)))
    reads.clear()
    assert _quota(api) == "250"
    assert reads  # read again after this process's catalog change


def test_entitlements_see_a_catalog_applied_elsewhere_within_their_bound(
        api: Api, pinned: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entitlements_route, "FINGERPRINT_MAX_AGE", 0.3)
    api.apply_catalog(yaml.safe_dump(_document(100)))
    assert _quota(api) == "100"
    from ratecard.catalog import check_document

    document, problems = check_document(_document(400))
    assert document is not None and not problems
    store = open_store(api.url)
    try:  # not through this server: as `ratecard catalog apply` or another worker would
        save_version(store, document, 1)
    finally:
        store.dispose()
    time.sleep(0.35)
    assert _quota(api) == "400"


def test_entitlements_of_a_customer_created_elsewhere_are_found_at_once(
        api: Api, pinned: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entitlements_route, "FINGERPRINT_MAX_AGE", 3600.0)  # the reused fingerprint never expires
    api.apply_catalog(yaml.safe_dump(_document(100)))
    assert _quota(api) == "100"
    assert api.get("/v1/customers/newcomer/entitlements").status_code == 404
    from ratecard.catalog import check_document

    grown = _document(100)
    grown["customers"].append({"reference": "newcomer"})
    grown["subscriptions"].append({"reference": "newcomer-pro", "customer": "newcomer", "plan": "pro",
                                   "start": "2026-01-01"})
    document, problems = check_document(grown)
    assert document is not None and not problems
    store = open_store(api.url)
    try:  # not through this server
        save_version(store, document, 1)
    finally:
        store.dispose()
    found = api.get("/v1/customers/newcomer/entitlements")
    assert found.status_code == 200 and found.json()["customer_reference"] == "newcomer"


def test_the_server_process_hands_the_gil_over_every_half_millisecond_unless_told_otherwise(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import sys

    from ratecard.api.app import app_from_environment

    before = sys.getswitchinterval()
    monkeypatch.setenv("RATECARD_DATABASE_URL", f"sqlite:///{tmp_path / 'switch.db'}")
    try:
        monkeypatch.delenv("RATECARD_SWITCH_INTERVAL_MS", raising=False)
        app_from_environment()
        assert sys.getswitchinterval() == pytest.approx(0.0005)
        monkeypatch.setenv("RATECARD_SWITCH_INTERVAL_MS", "2")
        app_from_environment()
        assert sys.getswitchinterval() == pytest.approx(0.002)
        monkeypatch.setenv("RATECARD_SWITCH_INTERVAL_MS", "0")
        with pytest.raises(SystemExit):
            app_from_environment()
    finally:
        sys.setswitchinterval(before)


def test_a_slow_fingerprint_read_never_replaces_a_newer_one() -> None:
    from ratecard.api.caches import CatalogCache
    from ratecard.store.catalog_state import Fingerprint

    cache = CatalogCache()
    newer, older = Fingerprint(2, 5, 1), Fingerprint(1, 5, 1)
    cache.saw("live", newer, cache.writes)
    cache.saw("live", older, cache.writes)  # read before the catalog was applied, recorded after
    assert cache.seen("live") == newer and cache.seen_within("live", 60) == newer
    cache.saw("live", Fingerprint(2, 4, 1), cache.writes)  # behind in resources
    assert cache.seen("live") == newer
    voided = Fingerprint(2, 5, 0)  # finals fewer (a restored database): taken as it is
    cache.saw("live", voided, cache.writes)
    assert cache.seen("live") == voided
    cache.forget_reads()
    assert cache.seen_within("live", 60) is None
    cache.saw("live", voided, cache.writes - 1)  # a read that began before the write: not recent
    assert cache.seen_within("live", 60) is None
