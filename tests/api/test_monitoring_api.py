"""GET /v1/ingestion/metrics and GET /v1/ingestion/alerts: what the ingest endpoints counted per minute,
and the alerts of the key's environment, in the list envelope."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ratecard.golive.alerts import create_rule, evaluate
from ratecard.store import open_store

from .conftest import Api

NOW = "2026-11-26T00:00:30Z"


@pytest.fixture(autouse=True)
def pinned_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATECARD_NOW", NOW)


def _call(event_id: str, timestamp: str = "2026-11-25T10:00:00Z", customer: str = "acme") -> dict:
    return {"id": event_id, "customer": customer, "meter": "api_calls", "timestamp": timestamp}


def test_both_ingest_endpoints_are_counted_per_minute_by_environment(api: Api) -> None:
    api.apply_catalog()
    batch = [_call("a-1"), _call("a-2"), _call("a-1"), _call("who-1", customer="nobody"),
             {"id": "bad-1", "customer": "acme", "meter": "api_calls"}]
    assert api.post("/v1/events", json=batch).json()["stored"] == 3
    assert api.post("/v1/events?dry_run=true", json=batch).status_code == 200  # not counted

    meter_data = {"reference": "solvimon-0001", "customer_reference": "acme", "meter_reference": "api_calls",
                  "timestamp": "2026-11-25T11:00:00Z"}
    assert api.post("/v1/ingest/meter-data", json=meter_data).status_code == 201
    assert api.post("/v1/ingest/meter-data", json=meter_data).status_code == 201  # a DUPLICATE record
    future = {**meter_data, "reference": "solvimon-0002", "timestamp": "2027-01-01T00:00:00Z"}
    assert api.post("/v1/ingest/meter-data", json=future).status_code == 400

    figures = api.get("/v1/ingestion/metrics", params={"minutes": 5}).json()
    assert figures["minutes"] == [{
        "minute": "2026-11-26T00:00:00Z", "accepted": 4, "rejected": 2,
        "rejected_by_reason": {"missing_field": 1, "future_timestamp": 1}, "duplicates": 2, "unmatched": 1,
        "unmatched_by_reason": {"unknown_customer": 1}, "late": 0}]
    assert api.get("/v1/ingestion/metrics", "sandbox").json()["minutes"] == []
    bad = api.get("/v1/ingestion/metrics", params={"minutes": 0})
    assert bad.status_code == 400 and bad.json()["field"] == "minutes"
    assert api.client.get("/v1/ingestion/metrics").status_code == 401


def test_alerts_are_listed_in_the_envelope_with_a_status_filter(api: Api) -> None:
    api.apply_catalog()
    api.post("/v1/events", json=[_call("a-1", "2026-11-25T10:00:00Z"),
                                 {**_call("t-1", "2026-11-25T09:00:00Z"), "meter": "tokens",
                                  "properties": {"tokens": 3}}])
    store = open_store(api.url)
    create_rule(store, "live", datetime.fromisoformat(NOW), kind="silence", hours="6")
    evaluate(store, "live", datetime.fromisoformat(NOW))
    assert len(evaluate(store, "live", datetime.fromisoformat(NOW) + timedelta(minutes=1)).opened) == 0
    store.dispose()

    listed = api.get("/v1/ingestion/alerts").json()
    assert listed["total_number_of_pages"] == 1 and listed["page"] == 1
    assert [(a["kind"], a["customer"], a["meter"], a["status"]) for a in listed["data"]] == [
        ("silence", "acme", "api_calls", "open"), ("silence", "acme", "tokens", "open")]
    paged = api.get("/v1/ingestion/alerts", params={"limit": 1, "order_direction": "DESC"}).json()
    assert [a["meter"] for a in paged["data"]] == ["tokens"] and paged["total_number_of_pages"] == 2
    assert api.get("/v1/ingestion/alerts", params={"status": "resolved"}).json()["data"] == []
    assert api.get("/v1/ingestion/alerts", "sandbox").json()["data"] == []
    wrong = api.get("/v1/ingestion/alerts", params={"status": "closed"})
    assert wrong.status_code == 400 and wrong.json()["field"] == "status"
