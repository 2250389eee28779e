"""A catalog applied over the API while roll-ups are in use: the meters whose definition changed
are rebuilt in the background, and are read from the raw events until then."""

from __future__ import annotations

import time
from decimal import Decimal

from ratecard.services.catalog import current_catalog
from ratecard.services.rollups import check_rollups, rebuild_rollups, rollup_status
from ratecard.store import open_store
from ratecard.store.rollup_reads import usage_from_rollups
from ratecard.store.usage import Window

from ..integration.scenario import CATALOG, EVENTS, NOW
from .conftest import Api

CHANGED = CATALOG.replace("filters: {model: [gpt-4o]}", "filters: {model: [mini]}")


def test_a_changed_meter_is_rebuilt_in_the_background(api: Api) -> None:
    api.apply_catalog()
    assert api.post("/v1/events", json=EVENTS).status_code == 200
    store = open_store(api.url)
    try:
        rebuild_rollups(store, "live", NOW)
        assert api.apply_catalog(CHANGED)["created"] is True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = {item["meter"]: item for item in rollup_status(store, "live") if item["meter"]}
            if states.get("gpt4_tokens", {}).get("state") == "ready":
                break
            time.sleep(0.2)
        assert states["gpt4_tokens"]["state"] == "ready", states
        assert states["gpt4_tokens"]["customers_done"] == states["gpt4_tokens"]["customers"] == 1
        _, catalog = current_catalog(store)
        window = Window(0, "acme", 0, 2**62)
        rolled, rest = usage_from_rollups(store, [window], [catalog.meters["gpt4_tokens"]], "live")
        assert rest == [] and rolled[(0, "gpt4_tokens")].quantity == Decimal("300.5")  # e2, model mini
    finally:
        store.dispose()


def test_without_rollups_a_catalog_change_starts_nothing(api: Api) -> None:
    api.apply_catalog()
    api.apply_catalog(CHANGED)
    store = open_store(api.url)
    try:
        assert rollup_status(store, "live") == []
    finally:
        store.dispose()


def test_single_event_requests_keep_the_rollups_exact(api: Api) -> None:
    """Events sent one per request (the single-event lane and its group commit, which read the
    roll-ups in the insert's own round trip) are counted into the roll-ups built before them,
    once each: a resend changes nothing."""
    api.apply_catalog()
    store = open_store(api.url)
    try:
        rebuild_rollups(store, "live", NOW)
        assert rollup_status(store, "live")  # roll-ups exist before the events arrive
        for event in EVENTS:
            assert api.post("/v1/events", json=[event]).status_code == 200
        assert api.post("/v1/events", json=[EVENTS[0]]).json()["stored"] == 0  # a resend: a duplicate
        report = check_rollups(store, "live")
        assert report["ok"] is True and report["rollups"], report
        _, catalog = current_catalog(store)
        window = Window(0, "acme", 0, 2**62)
        rolled, rest = usage_from_rollups(store, [window], [catalog.meters["api_calls"]], "live")
        assert rest == [] and rolled[(0, "api_calls")].quantity == Decimal(1)
    finally:
        store.dispose()
