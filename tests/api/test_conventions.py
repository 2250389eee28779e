"""Keys per environment, the error envelope, request ids, Idempotency-Key, health and metrics."""

from __future__ import annotations

import os

from ratecard.api.middleware import new_request_id
from ratecard.store import open_store
from ratecard.store.keys import list_keys, revoke_key

from .conftest import Api


def test_requests_without_a_valid_key_get_401_in_the_error_envelope(api: Api) -> None:
    for headers in ({}, {"X-API-KEY": "nope"}, {"X-API-KEY": api.live + "x"}, {"Authorization": "Bearer nope"}):
        response = api.client.get("/v1/catalog", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["type"] == "INVALID_REQUEST" and body["code"] == "UNAUTHORISED" and body["message"]
        assert set(body) == {"type", "code", "field", "message"}


def test_bearer_and_x_api_key_both_work(api: Api) -> None:
    api.apply_catalog()
    assert api.client.get("/v1/catalog", headers={"Authorization": f"Bearer {api.live}"}).status_code == 200
    assert api.client.get("/v1/catalog", headers={"X-API-KEY": api.live}).status_code == 200


def test_a_revoked_key_is_refused(api: Api) -> None:
    store = open_store(api.url)
    key_id = [k.id for k in list_keys(store, "live")][0]
    assert revoke_key(store, key_id, 1)
    store.dispose()
    api.client.app.state.keys = type(api.client.app.state.keys)()  # drop the few-seconds cache
    assert api.get("/v1/plans").status_code == 401


def test_a_sandbox_key_never_sees_live_data(api: Api) -> None:
    api.apply_catalog(env="live")
    assert api.get("/v1/catalog", env="sandbox").status_code == 404
    events = [{"id": "s-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"}]
    sandbox = api.post("/v1/events", env="sandbox", json=events).json()
    assert sandbox["flags"] == {"unknown_customer": 1}  # sandbox has no catalog: nothing of live is visible
    live = api.post("/v1/events", env="live", json=events).json()
    assert live["stored"] == 1 and live["duplicates"] == 0  # the same id in another environment is another event
    run = api.post("/v1/invoice-runs", env="sandbox", json={"until": "2026-02-01"})
    assert run.status_code == 409
    api.post("/v1/invoice-runs", env="live", json={"until": "2026-02-01"})
    assert api.get("/v1/exports/invoices", env="sandbox").json() == []
    assert len(api.get("/v1/exports/invoices", env="live").json()) == 2


def test_every_response_carries_a_request_id(api: Api) -> None:
    generated = api.client.get("/healthz")
    assert len(generated.headers["x-request-id"]) >= 16
    echoed = api.client.get("/v1/plans", headers={"X-REQUEST-ID": "trace-123"})
    assert echoed.status_code == 401 and echoed.headers["x-request-id"] == "trace-123"
    ids = {api.client.get("/healthz").headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20


def test_a_forked_worker_draws_request_ids_of_its_own() -> None:
    parent = [new_request_id() for _ in range(3)]
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its first ids, then leave without running the parent's cleanup
        os.write(writer, " ".join(new_request_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        children = pipe.read().split()
    os.waitpid(child, 0)
    assert len(children) == 3 and not set(children) & set(parent)
    assert {i[:16] for i in children} != {i[:16] for i in parent}  # not only the counter differs


def test_validation_errors_name_the_field(api: Api) -> None:
    response = api.post("/v1/invoice-runs", json={"until": "not a date"})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_FIELD" and response.json()["field"] == "until"
    missing = api.post("/v1/invoice-runs", json={})
    assert missing.status_code == 400 and missing.json()["code"] == "MISSING_FIELD"
    assert api.get("/v1/plans/nope").status_code == 404  # no catalog yet
    api.apply_catalog()
    unknown = api.get("/v1/plans/nope")
    assert unknown.status_code == 404 and unknown.json()["code"] == "RESOURCE_NOT_FOUND"


def test_idempotency_key_replays_and_refuses_a_different_body(api: Api) -> None:
    api.apply_catalog()
    first = api.post("/v1/invoice-runs", json={"until": "2026-02-01"}, headers={"Idempotency-Key": "run-1"})
    again = api.post("/v1/invoice-runs", json={"until": "2026-02-01"}, headers={"Idempotency-Key": "run-1"})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and first.json()["created"] == 2  # the retry did not run again
    assert again.headers.get("idempotent-replayed") == "true"
    other = api.post("/v1/invoice-runs", json={"until": "2026-03-01"}, headers={"Idempotency-Key": "run-1"})
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_CHECK_FAILED"
    too_long = api.post("/v1/invoice-runs", json={"until": "2026-02-01"}, headers={"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 400 and too_long.json()["field"] == "Idempotency-Key"
    # keys are per environment: the sandbox may use the same key for its own request
    sandbox = api.post("/v1/catalog/check", env="sandbox", content=b"plans: []", headers={"Idempotency-Key": "run-1"})
    assert sandbox.status_code == 200


def test_catalog_check_and_apply_report_every_problem(api: Api) -> None:
    broken = b"plans:\n  - {code: p, currency: EURO, charges: [{code: c, model: per_unit, meter: nope}]}\n"
    check = api.post("/v1/catalog/check", content=broken).json()
    paths = {problem["path"] for problem in check["problems"]}
    assert check["valid"] is False
    assert {"plans[0].currency", "plans[0].charges[0].meter", "plans[0].charges[0].unit_amount"} <= paths
    applied = api.post("/v1/catalog", content=broken)
    assert applied.status_code == 400 and "nothing was applied" in applied.json()["message"]
    assert api.get("/v1/catalog").status_code == 404
    assert api.apply_catalog() == {"version": 1, "created": True}
    assert api.apply_catalog() == {"version": 1, "created": False}


def test_health_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json()["status"] == "ok"
    api.apply_catalog()
    api.post("/v1/events", json=[
        {"id": "m-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"},
        {"id": "m-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"},
        {"id": "m-2", "customer": "ghost", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"},
        {"id": "m-3", "customer": "acme", "meter": "api_calls", "timestamp": "yesterday"},
    ])
    text = api.get("/metrics").text  # the key of the environment whose figures are read
    assert "ratecard_events_accepted_total 2" in text
    assert "ratecard_events_duplicates_total 1" in text
    assert "ratecard_events_unmatched_total 1" in text
    assert 'ratecard_events_rejected_total{reason="invalid_timestamp"} 1' in text
    assert "ratecard_http_request_seconds_count" in text


def test_openapi_is_served(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert "/v1/events" in spec["paths"] and "/v1/catalog" in spec["paths"]


def test_invoice_runs_refuse_an_until_more_than_a_year_ahead(api: Api) -> None:
    api.apply_catalog()
    response = api.post("/v1/invoice-runs", json={"until": "2062-01-01"})
    assert response.status_code == 400 and response.json()["field"] == "until"
    assert "more than a year ahead" in response.json()["message"]
