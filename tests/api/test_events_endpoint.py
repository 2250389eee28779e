"""POST /v1/events: JSON arrays and NDJSON, per-event results, limits, dry runs."""

from __future__ import annotations

import orjson

from ratecard.store import open_store
from ratecard.store.events import count_by_status

from ..integration.scenario import EVENTS
from .conftest import Api


def test_json_array_and_ndjson_store_each_event_once(api: Api) -> None:
    api.apply_catalog()
    first = api.post("/v1/events", json=EVENTS[:4]).json()
    assert (first["received"], first["stored"], first["duplicates"]) == (4, 4, 0)
    ndjson = b"\n".join(orjson.dumps(event) for event in EVENTS[2:])
    second = api.post("/v1/events", content=ndjson, headers={"content-type": "application/x-ndjson"}).json()
    assert (second["received"], second["stored"], second["duplicates"]) == (4, 2, 2)
    api.post("/v1/invoice-runs", json={"until": "2026-02-01"})
    invoices = api.get("/v1/exports/invoices").json()
    # the same invoice as the CLI import of the same events (tests/integration/test_billing_flow.py)
    assert invoices[1]["total"] == "106.33"


def test_bad_events_are_rejected_one_by_one_with_their_position(api: Api) -> None:
    api.apply_catalog()
    body = [
        {"id": "ok-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"},
        {"id": "bad-1", "customer": "acme", "meter": "api_calls"},
        {"id": "bad-2", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
         "properties": {"tokens": "lots"}},
        "not an object",
        {"id": "x" * 10_000, "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"},
        {"id": "sql-1", "customer": "acme'; DROP TABLE events; --", "meter": "api_calls",
         "timestamp": "2026-01-20T10:00:00Z"},
    ]
    result = api.post("/v1/events", json=body).json()
    assert result["stored"] == 2  # ok-1, and the SQL-looking customer stored as an unknown customer
    assert result["flags"] == {"unknown_customer": 1}
    errors = {error["index"]: error for error in result["errors"]}
    assert errors[2]["reason"] == "missing_field" and "timestamp" in errors[2]["message"]
    assert errors[3]["reason"] == "invalid_value" and "tokens" in errors[3]["message"]
    assert errors[4]["reason"] == "invalid_json"
    assert errors[5]["reason"] == "invalid_value" and "longer than" in errors[5]["message"]
    store = open_store(api.url)
    assert sum(count_by_status(store, "live").values()) == 2
    store.dispose()


def test_hostile_bodies_get_clear_4xx(api: Api) -> None:
    assert api.post("/v1/events", content=b"").status_code == 400
    assert api.post("/v1/events", content=b"[{").json()["code"] == "INVALID_FIELD"
    not_utf8 = api.post("/v1/events", content=b"\xff\xfe[]")  # read as NDJSON: one line, rejected on its own
    assert not_utf8.status_code == 200 and not_utf8.json()["rejected"] == {"invalid_json": 1}
    nested = b"[" + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"]"
    assert api.post("/v1/events", content=nested).status_code in (400, 413)
    too_many = [{"id": f"e{i}", "customer": "a", "meter": "m", "timestamp": "2026-01-01T00:00:00Z"}
                for i in range(10_001)]
    response = api.post("/v1/events", json=too_many)
    assert response.status_code == 413 and response.json()["code"] == "PAYLOAD_TOO_LARGE"
    huge = b"[" + b" " * (10 * 1024 * 1024) + b"]"
    assert api.post("/v1/events", content=huge).status_code == 413


def test_dry_run_writes_nothing(api: Api) -> None:
    api.apply_catalog()
    result = api.post("/v1/events?dry_run=true", json=EVENTS).json()
    assert result["dry_run"] is True and result["accepted"] == len(EVENTS) and result["stored"] == 0
    store = open_store(api.url)
    assert count_by_status(store, "live") == {}
    store.dispose()


def test_an_event_for_a_finalized_period_is_flagged_late(api: Api) -> None:
    from ratecard.store.invoices import change_status, list_invoices

    api.apply_catalog()
    api.post("/v1/events", json=EVENTS)
    api.post("/v1/invoice-runs", json={"until": "2026-02-01"})
    store = open_store(api.url)
    closing = list_invoices(store)[1]
    change_status(store, closing.id, "final", 1, "RC")  # finalized by another process (the CLI)
    late = [{"id": "late-api-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-25T10:00:00Z"}]
    result = api.post("/v1/events", json=late).json()
    assert result["stored"] == 1 and result["flags"] == {"late": 1}
    api.post("/v1/invoice-runs", json={"until": "2026-02-01"})
    assert list_invoices(store)[1].total == closing.total
    store.dispose()


def test_a_period_finalized_after_the_late_windows_were_read_makes_its_events_late(api: Api) -> None:
    from ratecard.store.events import list_events
    from ratecard.store.invoices import change_status, list_invoices

    api.apply_catalog()
    api.post("/v1/events", json=EVENTS)
    api.post("/v1/invoice-runs", json={"until": "2026-03-01"})
    store = open_store(api.url)
    _, january, february = list_invoices(store)
    change_status(store, january.id, "final", 1, "RC")  # by another process
    first = [{"id": "late-jan", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-25T10:00:00Z"},
             {"id": "feb-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-02-10T10:00:00Z"}]
    result = api.post("/v1/events", json=first).json()  # the server reads January's window
    assert result["stored"] == 2 and result["flags"] == {"late": 1}
    assert [event.id for event in list_events(store, late=True)] == ["late-jan"]
    change_status(store, february.id, "final", 2, "RC")  # February closed by another process meanwhile
    second = [{"id": "late-feb", "customer": "acme", "meter": "api_calls", "timestamp": "2026-02-11T10:00:00Z"},
              {"id": "late-jan-2", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-26T10:00:00Z"},
              {"id": "mar-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-03-10T10:00:00Z"}]
    result = api.post("/v1/events", json=second).json()
    assert result["stored"] == 3 and result["flags"] == {"late": 2}
    # feb-1 too: it arrived after February's draft was computed, so finalizing flagged it
    assert sorted(event.id for event in list_events(store, late=True)) == ["feb-1", "late-feb", "late-jan",
                                                                           "late-jan-2"]
    store.dispose()
