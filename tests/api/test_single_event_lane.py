"""The single-event lane (api/lane.py): one-event ingestion answered ahead of the middleware.

Every request is sent twice, to a server with the lane and to one without it
(RATECARD_SINGLE_EVENT_LANE=0), both warm on the same database: the answers must be the same,
for valid events and for every kind of hostile body. On both stores."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from ratecard.api.app import create_app
from ratecard.api.lane import SingleEventLane, may_hold_nul
from ratecard.store import open_store
from ratecard.store.events import count_by_status
from ratecard.store.keys import create_key

from ..integration.scenario import CATALOG
from ..migrated import at_head

NOW = "2026-01-31T12:00:00+00:00"
SOLVIMON = "/v1/ingest/meter-data"
EVENTS = "/v1/events"


@dataclass
class Pair:
    lane: TestClient
    full: TestClient
    key: str
    url: str

    def send(self, client: TestClient, path: str, body: bytes, **headers: str) -> Any:
        return client.post(path, content=body, headers={"X-API-KEY": self.key, "content-type": "application/json",
                                                         **headers})

    def both(self, path: str, body: bytes) -> tuple[Any, Any]:
        return self.send(self.lane, path, body), self.send(self.full, path, body)


def answered(client: TestClient) -> int:
    stack = client.app.middleware_stack
    assert isinstance(stack, SingleEventLane)
    return stack.answered


@pytest.fixture
def pair(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    monkeypatch.setenv("RATECARD_NOW", NOW)
    store = open_store(at_head(db_url))
    _, key = create_key(store, "live", 0, "test")
    store.dispose()
    lane_app = create_app(db_url)
    monkeypatch.setenv("RATECARD_SINGLE_EVENT_LANE", "0")
    full_app = create_app(db_url)
    with TestClient(lane_app, raise_server_exceptions=False) as lane, \
            TestClient(full_app, raise_server_exceptions=False) as full:
        applied = lane.post("/v1/catalog", content=CATALOG.encode(),
                            headers={"X-API-KEY": key, "content-type": "application/yaml"})
        assert applied.status_code == 201, applied.text
        paired = Pair(lane, full, key, db_url)
        for client, name in ((lane, "lane"), (full, "full")):  # the key cached, the catalog built
            for path, body in ((SOLVIMON, solvimon(f"warm-{name}-solvimon")), (EVENTS, event(f"warm-{name}-events"))):
                assert paired.send(client, path, body).status_code in (200, 201)
        yield paired


def solvimon(reference: str, **fields: Any) -> bytes:
    return orjson.dumps({"reference": reference, "customer_reference": "acme", "meter_reference": "tokens",
                         "timestamp": "2026-01-20T10:00:00Z",
                         "meter_values": [{"reference": "tokens", "number": "12.5"}], **fields})


def event(event_id: str, **fields: Any) -> bytes:
    return orjson.dumps([{"id": event_id, "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
                          "properties": {"tokens": 12}, **fields}])


def same_answer(lane: Any, full: Any, *names: str) -> None:
    """Status, content type and body equal; `names` (the references sent) read alike."""
    def text(response: Any) -> str:
        body = response.text
        for name in names:
            body = body.replace(name, "<reference>")
        return re.sub(r'"dup_\d+"', '"dup_<n>"', body)  # duplicate records are numbered in turn
    assert (lane.status_code, lane.headers["content-type"]) == (full.status_code, full.headers["content-type"])
    assert text(lane) == text(full)
    assert lane.headers.get("x-request-id") and full.headers.get("x-request-id")


def test_a_valid_event_is_answered_by_the_lane_as_by_the_routes(pair: Pair) -> None:
    before = answered(pair.lane)
    for path, make in ((SOLVIMON, solvimon), (EVENTS, event)):
        mine, theirs = f"{path[-6:]}-lane-01", f"{path[-6:]}-full-01"
        lane, full = pair.send(pair.lane, path, make(mine)), pair.send(pair.full, path, make(theirs))
        assert lane.status_code == (201 if path == SOLVIMON else 200)
        same_answer(lane, full, mine, theirs)
        # sent again: a duplicate, answered alike
        lane, full = pair.send(pair.lane, path, make(theirs)), pair.send(pair.full, path, make(mine))
        same_answer(lane, full, mine, theirs)
    # the other customer, not in the catalog: stored, not matched
    lane = pair.send(pair.lane, SOLVIMON, solvimon("nobody-lane-1", customer_reference="nobody"))
    full = pair.send(pair.full, SOLVIMON, solvimon("nobody-full-1", customer_reference="nobody"))
    same_answer(lane, full, "nobody-lane-1", "nobody-full-1")
    assert lane.json()["processed_details"]["type"] == "NOT_MATCHED"
    # the same on /v1/events, whose summary counts the event by its flag
    lane = pair.send(pair.lane, EVENTS, event("nobody-lane-2", customer="nobody"))
    full = pair.send(pair.full, EVENTS, event("nobody-full-2", customer="nobody"))
    same_answer(lane, full, "nobody-lane-2", "nobody-full-2")
    assert lane.json()["flags"] == {"unknown_customer": 1}, lane.json()
    assert answered(pair.lane) == before + 6
    store = open_store(pair.url)
    stored = count_by_status(store, "live")
    store.dispose()
    assert stored == {"matched": 4 + 4, "unknown_customer": 4}  # warm-up 4, then 2 new per route and server


HUGE = "9" * 400
SOLVIMON_BODIES = [
    b"", b"   ", b"not json", b"[]", b"null", b"42", b'"text"', b"{}", b"{", b"\xff\xfe{}",
    b'{"reference": "abc\xff\xfedefghij"}',
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    solvimon("short"),
    solvimon("x" * 257),
    b'{"reference": 12345678901, "customer_reference": "acme", "meter_reference": "tokens"}',
    solvimon("nul-in-value", customer_reference="ac\u0000me"),
    orjson.dumps({"reference": "nul-in-key-01", "customer_reference": "acme", "meter_reference": "tokens",
                  "meter_values": [{"reference": "tokens", "number": "1"}], "x\u0000": 1}),
    solvimon("no-customer-1", customer_reference=None),
    solvimon("no-meter-0001", meter_reference=None),
    solvimon("unknown-meter", meter_reference="nope"),
    solvimon("unknown-value", meter_values=[{"reference": "nope", "number": "1"}]),
    solvimon("values-object", meter_values={"reference": "tokens", "number": "1"}),
    solvimon("values-string", meter_values=[{"reference": "tokens", "number": "lots"}]),
    solvimon("values-bool-1", meter_values=[{"reference": "tokens", "number": True}]),
    solvimon("values-twice1", meter_values=[{"reference": "tokens", "number": "1"},
                                            {"reference": "tokens", "number": "2"}]),
    solvimon("huge-string-1", meter_values=[{"reference": "tokens", "number": HUGE}]),
    solvimon("huge-exponent", meter_values=[{"reference": "tokens", "number": "1e999999999"}]),
    solvimon("nan-number-01", meter_values=[{"reference": "tokens", "number": "NaN"}]),
    b'{"reference": "huge-number-1", "customer_reference": "acme", "meter_reference": "tokens", '
    b'"meter_values": [{"reference": "tokens", "number": ' + HUGE.encode() + b"}]}",
    b'{"reference": "huge-float-01", "customer_reference": "acme", "meter_reference": "tokens", '
    b'"meter_values": [{"reference": "tokens", "number": 1e999999}]}',
    solvimon("time-number-1", timestamp=1768903200),
    solvimon("time-words-01", timestamp="yesterday"),
    solvimon("time-future-1", timestamp="2031-01-01T00:00:00Z"),
    solvimon("time-naive-01", timestamp="2026-01-20T10:00:00"),
    solvimon("props-object1", meter_properties={"a": "b"}),
    solvimon("props-list-01", meter_properties=[{"reference": "region", "value": ["eu"]}]),
    solvimon("customer-list", customer={"reference": "nobody"}),
    solvimon("subscription1", pricing_plan_subscription_reference=""),
]


def each_body(pair: Pair, bodies: list[bytes], check: Any) -> None:
    """`check` on every body against one warm pair of servers (one pair per body cost the suite a
    server start, a catalog and a database copy per body); a failure names the body."""
    for index, body in enumerate(bodies):
        try:
            check(pair, body)
        except AssertionError as problem:
            raise AssertionError(f"body {index} ({body[:120]!r}): {problem}") from problem


def test_hostile_solvimon_bodies_get_the_routes_answer(pair: Pair) -> None:
    each_body(pair, SOLVIMON_BODIES, solvimon_body_answered_alike)


def solvimon_body_answered_alike(pair: Pair, body: bytes) -> None:
    lane, full = pair.both(SOLVIMON, body)
    assert lane.status_code != 500, lane.text
    if lane.status_code == 201:  # taken: stored by the first server, a duplicate for the second
        assert full.status_code == 201 and full.json()["processed_details"]["type"] == "DUPLICATE"
        assert lane.json()["processed_details"]["type"] != "DUPLICATE"
        return
    same_answer(lane, full)


EVENTS_BODIES = [
    b"", b"[", b"[]", b"{}", b"[{}]", b"[1]", b"null", b"\xff\xfe[]", b"[" + b"[" * 5000 + b"]" * 5000 + b"]",
    event("no-time-01", timestamp=None),
    event("bad-value-01", properties={"tokens": "lots"}),
    b'[{"id": "huge-value-1", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z", '
    b'"properties": {"tokens": ' + HUGE.encode() + b"}}]",
    event("x" * 10_000),
    event("future-time", timestamp="2031-01-01T00:00:00Z"),
    event("naive-time1", timestamp="2026-01-20T10:00:00"),
    event("nul-in-id\u0000"),
    event("typed-wrong", customer=12),
    event("props-list1", properties=[1, 2]),
    orjson.dumps([{"id": "two-events-1", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z"},
                  {"id": "two-events-2", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z"}]),
    b'{"id": "ndjson-one-line", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"}',
]


def test_hostile_event_bodies_get_the_routes_answer(pair: Pair) -> None:
    each_body(pair, EVENTS_BODIES, event_body_answered_alike)


def event_body_answered_alike(pair: Pair, body: bytes) -> None:
    lane, full = pair.both(EVENTS, body)
    # the NDJSON line and the two events are stored by the first server and duplicates for the second
    first, second = (lane, full) if b"ndjson" not in body and b"two-events" not in body else (None, None)
    if first is None:
        assert lane.status_code == full.status_code == 200
        assert lane.json()["stored"] == full.json()["duplicates"]
        return
    same_answer(first, second)
    assert lane.status_code != 500, lane.text


def test_an_id_sent_again_with_other_content_is_the_same_conflict(pair: Pair) -> None:
    assert pair.send(pair.lane, EVENTS, event("conflict-01")).json()["stored"] == 1
    lane = pair.send(pair.lane, EVENTS, event("conflict-01", properties={"tokens": 13}))
    full = pair.send(pair.full, EVENTS, event("conflict-01", properties={"tokens": 13}))
    same_answer(lane, full)
    assert lane.json()["conflicts"] == [{"index": 1, "id": "conflict-01"}]


def test_oversized_bodies_are_refused_before_they_are_read(pair: Pair) -> None:
    big = solvimon("too-big-00001", padding="x" * (1024 * 1024))
    lane, full = pair.both(SOLVIMON, big)
    same_answer(lane, full)
    assert lane.status_code == 413 and lane.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_a_body_longer_than_its_content_length_is_cut_and_refused(pair: Pair) -> None:
    """A client that declares a small body and sends more: read up to the limit, then refused."""
    application = pair.lane.app
    sent: list[dict] = []
    chunk = b"x" * (256 * 1024)
    remaining = 8

    async def receive() -> dict:
        nonlocal remaining
        remaining -= 1
        return {"type": "http.request", "body": chunk, "more_body": remaining > 0}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": SOLVIMON, "raw_path": SOLVIMON.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"x-api-key", pair.key.encode()), (b"content-length", b"100")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
    asyncio.run(application(scope, receive, send))
    assert sent[0]["status"] == 413
    assert orjson.loads(sent[1]["body"])["code"] == "PAYLOAD_TOO_LARGE"
    assert remaining >= 3  # not every chunk was read


def test_the_lane_keeps_request_ids_and_metrics(pair: Pair) -> None:
    answer = pair.send(pair.lane, SOLVIMON, solvimon("traced-event1"), **{"x-request-id": "trace-42"})
    assert answer.status_code == 201 and answer.headers["x-request-id"] == "trace-42"
    metrics = pair.lane.get("/metrics", headers={"X-API-KEY": pair.key}).text
    counted = re.search(r'ratecard_http_requests_total\{method="POST",route="/v1/ingest/meter-data",status="201"\} (\d+)',
                        metrics)
    assert counted is not None and int(counted.group(1)) == 2  # the warm-up and this one
    assert "ratecard_events_accepted_total 3" in metrics  # and one by POST /v1/events
    figures = pair.lane.get("/v1/ingestion/metrics", headers={"X-API-KEY": pair.key}).json()
    assert figures["totals"]["accepted"] >= 3


def test_requests_the_lane_does_not_take_go_to_the_routes(pair: Pair) -> None:
    before = answered(pair.lane)
    query = pair.lane.post(f"{SOLVIMON}?meter_validation=DYNAMIC", headers={"X-API-KEY": pair.key},
                           content=solvimon("dynamic-event", meter_reference="new-meter"))
    assert query.status_code == 201 and query.json()["meter_reference"] == "new-meter"
    no_key = pair.lane.post(SOLVIMON, content=solvimon("no-key-event1"))
    assert no_key.status_code == 401 and no_key.json()["code"] == "UNAUTHORISED"
    wrong_key = pair.lane.post(SOLVIMON, content=solvimon("bad-key-event"), headers={"X-API-KEY": "rk_nope"})
    assert wrong_key.status_code == 401
    bearer = pair.lane.post(SOLVIMON, content=solvimon("bearer-event1"), headers={"Authorization": f"Bearer {pair.key}"})
    assert bearer.status_code == 201
    assert answered(pair.lane) == before + 1  # the bearer key is the lane's too


def test_a_key_sent_twice_is_refused_and_nothing_is_stored(pair: Pair, db_url: str) -> None:
    """Two X-API-KEY headers (a wrong key then a right one, a sandbox key then a live one) or two
    Authorization headers: which one counts must never decide where an event is written, so both
    paths refuse the request whatever the order."""
    store = open_store(db_url)
    try:
        _, sandbox = create_key(store, "sandbox", 0, "second")
        before = {environment: sum(count_by_status(store, environment).values()) for environment in ("live", "sandbox")}
    finally:
        store.dispose()
    twice = [
        [("X-API-KEY", "rk_wrong"), ("X-API-KEY", pair.key)],
        [("X-API-KEY", sandbox), ("X-API-KEY", pair.key)],
        [("X-API-KEY", pair.key), ("X-API-KEY", sandbox)],
        [("Authorization", f"Bearer {sandbox}"), ("Authorization", f"Bearer {pair.key}")],
    ]
    for number, credentials in enumerate(twice):
        for client in (pair.lane, pair.full):
            for path, body in ((SOLVIMON, solvimon(f"twice-{number}-solvimon")), (EVENTS, event(f"twice-{number}-events"))):
                answer = client.post(path, content=body, headers=[("content-type", "application/json"), *credentials])
                assert answer.status_code == 401, (credentials, answer.text)
                assert answer.json()["code"] == "UNAUTHORISED"
        reads = pair.full.get("/v1/customers", headers=credentials)
        assert reads.status_code == 401
    store = open_store(db_url)
    try:
        after = {environment: sum(count_by_status(store, environment).values()) for environment in ("live", "sandbox")}
    finally:
        store.dispose()
    assert after == before


@pytest.mark.parametrize("data", [{"reference": "a\u0000b"}, {"x\u0000": 1}, [{"deep": ["\u0000"]}]])
def test_the_lane_walks_every_body_that_can_decode_to_a_nul(data: Any) -> None:
    """The lane skips the walk over a body's strings when no NUL can come out of the JSON: one
    can only come from a NUL byte or a \\u0000 escape, which every encoder writes for it."""
    body = orjson.dumps(data)
    assert may_hold_nul(body)
    assert not may_hold_nul(body.replace(b"\\u0000", b"-"))


def test_a_long_events_body_goes_to_the_routes_unread(pair: Pair) -> None:
    """A `POST /v1/events` body over the lane's 16 KiB is a batch: the routes answer it (the lane
    does not read and parse it first), exactly as a server without the lane does; a one-event body
    with properties that long too."""
    before = answered(pair.lane)
    for name, server in (("lane", pair.lane), ("full", pair.full)):
        batch = orjson.dumps([{"id": f"long-{name}-{n:04d}", "customer": "acme", "meter": "tokens",
                               "timestamp": "2026-01-20T10:00:00Z", "properties": {"tokens": n}}
                              for n in range(200)])
        large = event(f"large-{name}", properties={"tokens": 3, "note": "x" * 17_000})
        assert len(batch) > 16 * 1024 and len(large) > 16 * 1024
        stored = pair.send(server, EVENTS, batch)
        assert stored.status_code == 200 and stored.json()["stored"] == 200
        one = pair.send(server, EVENTS, large)
        assert one.status_code == 200 and one.json()["stored"] == 1
    assert answered(pair.lane) == before
    small = pair.send(pair.lane, EVENTS, event("small-lane"))
    assert small.status_code == 200 and answered(pair.lane) == before + 1


def _event_of_length(event_id: str, length: int) -> bytes:
    """One event whose body is exactly `length` bytes (its note padded)."""
    bare = event(event_id, properties={"tokens": 3, "note": ""})
    body = event(event_id, properties={"tokens": 3, "note": "x" * (length - len(bare))})
    assert len(body) == length
    return body


def test_bodies_at_the_lanes_16_kib_get_the_routes_answer(pair: Pair) -> None:
    """16,384 bytes is the lane's (a Content-Length of exactly EVENTS_LANE_BODY), one more is the
    routes': both answered as a server without the lane answers them, the event stored once."""
    for length, taken in ((16_383, 1), (16_384, 1), (16_385, 0)):
        before = answered(pair.lane)
        lane = pair.send(pair.lane, EVENTS, _event_of_length(f"edge-{length}", length))
        full = pair.send(pair.full, EVENTS, _event_of_length(f"edge-{length}", length))  # the same id: a duplicate
        assert lane.status_code == 200 and lane.json()["stored"] == 1, lane.text
        assert full.status_code == 200 and full.json()["stored"] == 0 and full.json()["duplicates"] == 1, full.text
        assert answered(pair.lane) == before + taken, length
    for name, client in (("lane", pair.lane), ("full", pair.full)):  # and refused alike
        lane_or_full = pair.send(client, EVENTS, _event_of_length(f"{name}-bad", 16_384).replace(b'"acme"', b'"    "'))
        assert lane_or_full.status_code == 200 and lane_or_full.json()["rejected"] == {"missing_field": 1}


def test_a_chunked_or_mislabelled_events_body_gets_the_routes_answer(pair: Pair) -> None:
    """A body sent in chunks (no Content-Length) or with a Content-Length that is not its length
    is answered as the routes answer it, whether the lane is in front or not."""
    def chunks(body: bytes) -> Any:
        yield body[:100]
        yield body[100:]

    for length in (200, 16_384, 20_000):
        bodies = {name: _event_of_length(f"chunked-{name}-{length}", length) for name in ("lane", "full")}
        lane = pair.lane.post(EVENTS, content=chunks(bodies["lane"]),
                              headers={"X-API-KEY": pair.key, "content-type": "application/json"})
        full = pair.full.post(EVENTS, content=chunks(bodies["full"]),
                              headers={"X-API-KEY": pair.key, "content-type": "application/json"})
        same_answer(lane, full, f"chunked-lane-{length}", f"chunked-full-{length}")
        assert lane.status_code == 200 and lane.json()["stored"] == 1, lane.text
    for declared, length in (("100", 16_384), ("16384", 16_385), ("20000", 200), ("16384 ", 200), ("+200", 200)):
        answers = []
        for name, client in (("lane", pair.lane), ("full", pair.full)):
            body = _event_of_length(f"lying-{name}-{length}-{declared.strip()}", length)
            answers.append(client.post(EVENTS, content=body, headers={
                "X-API-KEY": pair.key, "content-type": "application/json", "content-length": declared}))
        same_answer(*answers, *(f"lying-{name}-{length}-{declared.strip()}" for name in ("lane", "full")))
    empty = [client.post(EVENTS, content=b"", headers={"X-API-KEY": pair.key, "content-type": "application/json"})
             for client in (pair.lane, pair.full)]  # Content-Length: 0
    same_answer(*empty)
    assert empty[0].status_code == 400, empty[0].text


def test_the_lane_counts_ingestion_figures_as_the_routes_do(pair: Pair) -> None:
    """A new event, an unmatched one and a resent id: the per-minute ingestion figures move by the
    same counts whichever path stored them (the lane counts a new event without the writer's
    bookkeeping the routes go through)."""
    def totals() -> dict[str, int]:  # nested counts (by reason) flattened to "figure.reason"
        answer = pair.lane.get("/v1/ingestion/metrics", headers={"X-API-KEY": pair.key})
        assert answer.status_code == 200, answer.text
        flat = {}
        for figure, value in answer.json()["totals"].items():
            if isinstance(value, dict):
                flat.update({f"{figure}.{reason}": n for reason, n in value.items()})
            else:
                flat[figure] = value
        return flat

    moved = {}
    for client, name in ((pair.lane, "lane"), (pair.full, "full")):
        before = totals()
        for body in (event(f"figures-{name}-1"), event(f"figures-{name}-2", customer="nobody"),
                     event(f"figures-{name}-1")):
            assert pair.send(client, EVENTS, body).status_code == 200
        after = totals()
        moved[name] = {figure: after[figure] - before.get(figure, 0) for figure in after
                       if after[figure] != before.get(figure, 0)}
    assert moved["lane"] == moved["full"] == {"accepted": 2, "duplicates": 1, "unmatched": 1,
                                              "unmatched_by_reason.unknown_customer": 1}, moved
