"""Fuzzing and hostile input: no request, however malformed, gets a 500 or crashes the server.

1. schemathesis against the served `/openapi.json`, on a live `ratecard serve` (SQLite and
   PostgreSQL), positive and negative examples for every operation, with a valid key; then the
   hostile cases no generator reliably finds (numbers past every range, NaN literals, deep
   nesting, long, NUL, control, markup and formula text, bytes that are not UTF-8), sent as raw
   bytes to every write endpoint of the same server.
2. Hostile input the issue lists, on every endpoint (in-process client, both stores):
   oversized bodies, deeply nested JSON, non-UTF-8 bytes, 10,000-character strings and SQL in
   every string field. Each gets a 4xx in the error envelope or a per-event rejection naming
   the problem; SQL is stored as inert text; nothing crashes.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from ratecard.catalog.schema import CatalogDocument

from ..integration.scenario import CATALOG, EVENTS
from .live_server import Server, create_key

# Requests per store, shared out over every operation and mode (2 to 25 examples each): the
# run stays ~20-30 s per store however many operations the API grows. RATECARD_FUZZ_CALLS
# raises it for a deeper run. The budget is a count, never a time: a loaded machine makes the
# run slower, not shorter, and the same examples (derandomized) are sent every time.
FUZZ_CALLS = int(os.environ.get("RATECARD_FUZZ_CALLS", "1200"))
ENVELOPE = {"type", "code", "field", "message"}

EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "customer": {"type": "string"},
        "meter": {"type": "string"},
        "timestamp": {"type": "string"},
        "properties": {"type": "object"},
        "subscription": {"type": "string"},
    },
}


def _with_request_bodies(openapi: dict[str, Any]) -> dict[str, Any]:
    """The served schema, with the bodies it leaves undeclared filled in so the fuzzer reaches
    them: a catalog document for POST /v1/catalog(/check), event objects for POST /v1/events."""
    schema = copy.deepcopy(openapi)
    catalog = CatalogDocument.model_json_schema(ref_template="#/components/schemas/Catalog{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in catalog.pop("$defs", {}).items():
        components[f"Catalog{name}"] = definition
    components["CatalogDocument"] = catalog
    body = {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/CatalogDocument"}}}}
    for path in ("/v1/catalog", "/v1/catalog/check"):
        post = schema["paths"].get(path, {}).get("post")
        if post is not None and "requestBody" not in post:
            post["requestBody"] = copy.deepcopy(body)
    events = schema["paths"].get("/v1/events", {}).get("post", {}).get("requestBody", {}).get("content", {})
    array = events.get("application/json", {}).get("schema", {})
    if array.get("items", {}).get("type") == "object":
        array["items"] = EVENT_SCHEMA
        array["maxItems"] = 20
    return schema


def _fuzz(server: Server, key: str) -> tuple[list[str], dict[str, int]]:
    """Run every operation's positive and negative examples; returns (failures, calls per operation)."""
    openapi = httpx.get(f"{server.base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(_with_request_bodies(openapi))
    failures: list[str] = []
    calls: dict[str, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    # at least 2 each (the explicit example and one generated): ~300 operations stay ~1,200 requests
    examples = max(2, min(25, FUZZ_CALLS // (2 * len(operations))))
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _examples(operation, mode, examples, server, key, failures, calls)
            except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
                pass
    unreached = [f"{operation.method.upper()} {operation.path}" for operation in operations
                 if f"{operation.method.upper()} {operation.path} ({GenerationMode.POSITIVE.value})" not in calls]
    failures += [f"{label}: no valid example sent" for label in unreached]
    return failures, calls


def _examples(operation: Any, mode: GenerationMode, examples: int, server: Server, key: str,
              failures: list[str], calls: dict[str, int]) -> None:
    """Send one operation's generated examples of one mode; record every answer out of bounds."""
    label = f"{operation.method.upper()} {operation.path} ({mode.value})"
    auth = {"X-API-KEY": key}

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        calls[label] = calls.get(label, 0) + 1
        try:
            response = case.call(base_url=server.base_url, headers=auth, timeout=20)
        except Exception as exc:  # noqa: BLE001 - a dropped connection is a finding too
            failures.append(f"{label}: {type(exc).__name__}: {exc}\n    {case.as_curl_command(headers=auth)}")
            return
        problem = None
        if response.status_code >= 500:
            problem = f"{response.status_code} {response.text[:300]}"
        elif response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or not ENVELOPE <= body.keys() or not body.get("message"):
                problem = f"{response.status_code} outside the error envelope: {response.text[:300]}"
        if "x-request-id" not in response.headers:
            problem = f"{response.status_code} without X-REQUEST-ID"
        if problem:
            failures.append(f"{label}: {problem}\n    {case.as_curl_command(headers=auth)}")

    run()


# ------------------------------------------------------------- hostile cases, sent as raw bytes

SLOT = "\u2603slot\u2603"  # where a hostile JSON fragment replaces a value of a valid body
CASE = "\u2603case\u2603"  # replaced by a reference of the case's own, so each case reaches the store
HOSTILE_NUMBERS: dict[str, bytes] = {
    "1e400": b"1e400", "-1e400": b"-1e400", "1e-400": b"1e-400",
    "2^63": str(2**63).encode(), "2^64": str(2**64).encode(), "39 digits": b"9" * 39,
    "NaN": b"NaN", "Infinity": b"Infinity", "-Infinity": b"-Infinity", "1e400 as text": b'"1e400"',
    "deep nesting": b"[" * 20_000 + b"]" * 20_000,
}
HOSTILE_TEXTS: dict[str, bytes] = {
    "200,000 characters": b'"' + b"x" * 200_000 + b'"',
    "NUL": b'"a\\u0000b"',
    "escaped controls": orjson.dumps("".join(chr(c) for c in range(1, 32)) + "\x7f"),
    "raw controls": b'"a\x01\x1b[31mb\x7f"',
    "formula": orjson.dumps("=cmd|' /C calc'!A0"),
    "script": orjson.dumps("<script>alert(1)</script>"),
    "markup": orjson.dumps("[/b][link=https://evil.example]x[/link]"),
    "not UTF-8": b'"a\xff\xfe\xc3\x28\xed\xa0\x80b"',
}


def _hostile_targets() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(path, body with a number slot, body with a name slot) for every write endpoint."""
    def event(**fields: Any) -> dict[str, Any]:
        return {"id": CASE, "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
                "properties": {"tokens": 5}, **fields}

    from ratecard.catalog.load import parse_text

    def catalog(number: Any, name: Any) -> dict[str, Any]:
        document = json.loads(json.dumps(parse_text(CATALOG, "catalog.yaml"), default=str))
        document["plans"][0]["charges"][0]["amount"] = number
        document["customers"][0]["name"] = name
        return document

    def ingest(number: Any, customer: Any) -> dict[str, Any]:
        return {"reference": CASE, "customer_reference": customer, "meter_reference": "tokens",
                "timestamp": "2026-01-20T10:00:00Z", "meter_values": [{"reference": "tokens", "number": number}]}

    def customer(number: Any, name: Any) -> dict[str, Any]:
        return {"reference": CASE, "type": "ORGANIZATION", "organization": {"legal_name": name},
                "currency": "EUR", "tax_rate": number}

    return [
        ("/v1/events", [event(properties={"tokens": SLOT})], [event(customer=SLOT)]),
        ("/v1/catalog/check", catalog(SLOT, "Acme"), catalog("49.00", SLOT)),
        ("/v1/catalog", catalog(SLOT, "Acme"), catalog("49.00", SLOT)),
        ("/v1/ingest/meter-data", ingest(SLOT, "acme"), ingest("5", SLOT)),
        ("/v1/customers", customer(SLOT, "Newco"), customer("21", SLOT)),
    ]


def _hostile(server: Server, key: str) -> tuple[list[str], int]:
    """Every hostile number in a number slot and every hostile text in a name slot of a valid body,
    on every write endpoint: no 5xx, every 4xx in the error envelope with X-REQUEST-ID, no dropped
    connection. Returns (failures, requests sent)."""
    failures: list[str] = []
    sent = 0
    placeholder, case = orjson.dumps(SLOT), orjson.dumps(CASE)
    headers = {"X-API-KEY": key, "content-type": "application/json"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=20) as client:
        for path, number_body, name_body in _hostile_targets():
            for template, values in ((number_body, HOSTILE_NUMBERS), (name_body, HOSTILE_TEXTS)):
                for label, fragment in values.items():
                    sent += 1
                    body = orjson.dumps(template).replace(placeholder, fragment).replace(case, b'"hostile-%03d"' % sent)
                    try:
                        response = client.post(path, content=body)
                    except httpx.HTTPError as exc:
                        failures.append(f"POST {path} ({label}): {type(exc).__name__}: {exc}")
                        continue
                    problem = None
                    if response.status_code >= 500:
                        problem = f"{response.status_code} {response.text[:300]}"
                    elif response.status_code >= 400:
                        try:
                            envelope = response.json()
                        except ValueError:
                            envelope = None
                        if not isinstance(envelope, dict) or not ENVELOPE <= envelope.keys() \
                                or not envelope.get("message"):
                            problem = f"{response.status_code} outside the error envelope: {response.text[:300]}"
                    if "x-request-id" not in response.headers:
                        problem = f"{response.status_code} without X-REQUEST-ID"
                    if problem:
                        failures.append(f"POST {path} ({label}): {problem}")
        # still answering, and still doing its job
        if client.get("/healthz").status_code != 200:
            failures.append("/healthz does not answer 200 after the hostile cases")
        batch = client.post("/v1/events", json=[{"id": "after-hostile", "customer": "acme", "meter": "tokens",
                                                  "timestamp": "2026-01-21T10:00:00Z", "properties": {"tokens": 1}}])
        if batch.status_code != 200 or batch.json().get("stored") != 1:
            failures.append(f"a valid event after the hostile cases: {batch.status_code} {batch.text[:300]}")
        run = client.post("/v1/invoice-runs", json={"until": "2026-03-01"})
        if run.status_code != 200:
            failures.append(f"an invoice run after the hostile cases: {run.status_code} {run.text[:300]}")
    return failures, sent


@pytest.fixture(params=["sqlite", "postgresql"])
def live_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_reason: str | None):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fuzz.db'}"
        return
    if postgres_reason is not None:
        pytest.skip(f"PostgreSQL unreachable: {postgres_reason}")
    from .live_server import postgres_schema

    with postgres_schema("fuzz") as url:
        yield url


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(live_url: str, tmp_path: Path) -> None:
    """Every operation of /openapi.json (ratecard's own and the Solvimon-compatible ones),
    positive and negative examples (~1,000 requests per store), with a valid key
    and a workspace holding a catalog and a few events, then the hostile cases on every write
    endpoint: no 5xx, every 4xx in the error envelope, every response with X-REQUEST-ID; the
    server is still healthy, and still stores events, afterwards."""
    key = create_key(live_url)
    with Server(live_url, tmp_path / "server.log") as server:
        headers = {"X-API-KEY": key}
        assert httpx.post(f"{server.base_url}/v1/catalog", content=CATALOG, headers=headers).status_code == 201
        assert httpx.post(f"{server.base_url}/v1/events", json=EVENTS, headers=headers).status_code == 200
        failures, calls = _fuzz(server, key)
        hostile_failures, hostile_sent = _hostile(server, key)
        assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
        assert server.process is not None and server.process.poll() is None
        log = server.log()
    assert len(calls) >= 10, calls
    assert not failures, f"{len(failures)} failure(s):\n" + "\n".join(failures[:40]) + f"\nserver log:\n{log}"
    assert hostile_sent >= 90 and not hostile_failures, \
        f"{len(hostile_failures)} hostile case(s) failed:\n" + "\n".join(hostile_failures) + f"\nserver log:\n{log}"


# ----------------------------------------------------------------------------- hostile input

LONG = "x" * 10_000
SQL = "x'); DROP TABLE events; DELETE FROM catalog_versions; --"
HOSTILE = {"10k": LONG, "sql": SQL}
ONE_OVER = 10 * 1024 * 1024 + 1
REJECTION_REASONS = {"invalid_json", "missing_field", "invalid_timestamp", "future_timestamp", "invalid_value"}
POST_BODIES = ("/v1/events", "/v1/catalog", "/v1/catalog/check", "/v1/invoice-runs")


def clear_4xx(response: httpx.Response, *, status: int | tuple[int, ...] | None = None) -> dict[str, Any]:
    """A 4xx in the error envelope with a message, and the request id; returns the body."""
    context = f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:300]}"
    assert 400 <= response.status_code < 500, context
    if status is not None:
        assert response.status_code in ((status,) if isinstance(status, int) else status), context
    body = response.json()
    assert set(body) == ENVELOPE and body["type"] == "INVALID_REQUEST" and body["code"] and body["message"], context
    assert response.headers.get("x-request-id"), context
    return body


def not_5xx(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 500, f"{response.request.method} {response.request.url}: " \
                                       f"{response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        clear_4xx(response)
    return response


def tables_intact(url: str) -> dict[str, int]:
    """The tables the SQL payloads name still exist; their row counts."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                    for table in ("events", "catalog_versions", "invoices", "api_keys")}
    finally:
        engine.dispose()


def test_oversized_bodies_get_413_on_every_post(api) -> None:
    """Past 10 MiB: 413 PAYLOAD_TOO_LARGE from the endpoints that read raw bodies, whether the
    size is declared (Content-Length) or only discovered while streaming (chunked); 4xx from
    the JSON endpoint. With an Idempotency-Key too (the middleware buffers the body first)."""
    api.apply_catalog()
    padding = b"[" + b" " * (ONE_OVER - 2) + b"]"
    for path in ("/v1/events", "/v1/catalog", "/v1/catalog/check"):
        clear_4xx(api.post(path, content=padding), status=413)

        def chunks():
            yield b"["
            for _ in range(11):
                yield b" " * (1024 * 1024)
            yield b"]"

        assert clear_4xx(api.post(path, content=chunks()), status=413)["code"] == "PAYLOAD_TOO_LARGE"
    clear_4xx(api.post("/v1/catalog", content=padding, headers={"Idempotency-Key": "big-1"}), status=413)
    body = b'{"until": "2026-02-01", "note": "' + b"a" * ONE_OVER + b'"}'
    clear_4xx(api.post("/v1/invoice-runs", content=body, headers={"content-type": "application/json"}))
    huge_string = b'{"until": "' + b"2" * ONE_OVER + b'"}'
    clear_4xx(api.post("/v1/invoice-runs", content=huge_string, headers={"content-type": "application/json"}))
    assert api.get("/v1/catalog").status_code == 200


def test_deeply_nested_json_and_yaml_get_a_clear_4xx_on_every_endpoint(api) -> None:
    """100,000 levels of arrays or objects: a 4xx naming the body (or, for one NDJSON line, a
    per-event invalid_json rejection), never a RecursionError."""
    api.apply_catalog()
    arrays = b"[" * 100_000 + b"]" * 100_000
    objects = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    json_type = {"content-type": "application/json"}
    for path in POST_BODIES:
        for body in (arrays, objects, b'{"until": ' + arrays + b"}"):
            response = api.post(path, content=body, headers=json_type)
            if path == "/v1/events" and body.startswith(b"{"):  # one NDJSON line: rejected on its own
                assert response.status_code == 200 and response.json()["rejected"] == {"invalid_json": 1}
                assert "nested" in response.json()["errors"][0]["message"]
                continue
            clear_4xx(response)
    yaml_type = {"content-type": "application/yaml"}
    deep_yaml = [b"a: " + b"[" * 50_000 + b"]" * 50_000,  # flow style
                 b"a: " + b"{b: " * 50_000 + b"1" + b"}" * 50_000,
                 b"".join(b" " * i + b"k:\n" for i in range(3_000)) + b" " * 3_000 + b"v\n",  # block style
                 b"a: &x [" + b"*x, " * 1000 + b"]"]  # anchors
    for body in deep_yaml:
        clear_4xx(api.post("/v1/catalog", content=body, headers=yaml_type), status=400)
        checked = api.post("/v1/catalog/check", content=body, headers=yaml_type)
        if checked.status_code == 200:  # parsed: the check lists the problems
            assert checked.json()["valid"] is False and checked.json()["problems"][0]["path"]
        else:
            clear_4xx(checked, status=400)
    # an event whose properties nest deeply, inside an otherwise valid batch
    event = b'{"id": "deep-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z", ' \
            b'"properties": {"a": ' + arrays + b"}}"
    clear_4xx(api.post("/v1/events", content=b"[" + event + b"]"))
    ndjson = api.post("/v1/events", content=event + b"\n", headers={"content-type": "application/x-ndjson"})
    assert ndjson.status_code == 200 and ndjson.json()["rejected"] == {"invalid_json": 1}
    assert api.get("/healthz").status_code == 200


def test_bytes_that_are_not_utf8_get_a_clear_4xx_or_a_rejection(api) -> None:
    api.apply_catalog()
    bad = b"\xff\xfe\xc3\x28\xa0\xa1\xed\xa0\x80"  # invalid starts, a broken pair, an encoded surrogate
    event = b'{"id": "u-1", "customer": "acme' + bad + b'", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"}'
    as_array = api.post("/v1/events", content=b"[" + event + b"]")
    if as_array.status_code == 200:
        assert as_array.json()["rejected"] == {"invalid_json": 1} and as_array.json()["stored"] == 0
    else:
        clear_4xx(as_array)
    good = b'{"id": "u-2", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"}'
    ndjson = api.post("/v1/events", content=event + b"\n" + good + b"\n",
                      headers={"content-type": "application/x-ndjson"}).json()
    assert ndjson["stored"] == 1 and ndjson["rejected"] == {"invalid_json": 1}
    assert "UTF-8" in ndjson["errors"][0]["message"]
    for path in ("/v1/catalog", "/v1/catalog/check"):
        for kind in ("application/json", "application/yaml"):
            body = clear_4xx(api.post(path, content=b"meters: [" + bad + b"]", headers={"content-type": kind}))
            assert "UTF-8" in body["message"]
    clear_4xx(api.post("/v1/invoice-runs", content=b'{"until": "' + bad + b'"}',
                       headers={"content-type": "application/json"}))
    # the same bytes in a query string and a path (percent-encoded) and in header values
    not_5xx(api.get("/v1/subscriptions?customer=%FF%FE%C3%28"))
    not_5xx(api.get("/v1/plans/%FF%FE%C3%28"))
    not_5xx(api.get("/v1/exports/invoices?status=%FF&format=%FE"))
    # (X-REQUEST-ID is echoed back as sent, which the in-process client cannot decode; the
    # schemathesis run covers it over a socket)
    raw_headers = [("X-API-KEY", api.live.encode() + bad), ("Idempotency-Key", bad)]
    for name, value in raw_headers:
        headers = {"X-API-KEY": api.live, name: value} if name != "X-API-KEY" else {name: value}
        not_5xx(api.client.post("/v1/invoice-runs", json={"until": "2026-02-01"}, headers=headers))


def _event(**fields: Any) -> dict[str, Any]:
    event = {"id": "h-0", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
             "properties": {"tokens": 5, "model": "gpt-4o"}}
    event.update(fields)
    return event


def test_long_strings_and_sql_in_every_event_field(api) -> None:
    """Each string field of an event (id, customer, meter, timestamp, a property's name and
    value, the properties object itself) holding 10,000 characters or SQL: the event is either
    rejected on its own with a reason and a message naming the field, or stored with the text
    exactly as sent (SQL is data); its batch neighbours are stored; no table is harmed."""
    api.apply_catalog()
    cases: list[tuple[str, str, dict[str, Any]]] = []
    for label, payload in HOSTILE.items():
        cases += [
            (label, "id", _event(id=payload)),
            (label, "customer", _event(customer=payload)),
            (label, "meter", _event(meter=payload)),
            (label, "timestamp", _event(timestamp=payload)),
            (label, "properties", _event(properties=payload)),
            (label, "model", _event(properties={"tokens": 5, "model": payload})),
            (label, "tokens", _event(properties={"tokens": payload})),
            (label, "property name", _event(properties={"tokens": 5, payload: 1})),
        ]
    batch = []
    for number, (_label, _name, event) in enumerate(cases):
        if event["id"] == "h-0":
            event["id"] = f"h-{number}"
        batch.append(event)
        batch.append(_event(id=f"ok-{number}"))
    for body, headers in ((orjson.dumps(batch), {}),
                          (b"\n".join(orjson.dumps(e) for e in batch), {"content-type": "application/x-ndjson"})):
        result = api.post("/v1/events", content=body, headers=headers)
        assert result.status_code == 200, result.text
        summary = result.json()
        errors = {error["index"]: error for error in summary["errors"]}
        for number, (label, name, _event_sent) in enumerate(cases):
            error = errors.get(2 * number + 1)
            if error is not None:
                assert error["reason"] in REJECTION_REASONS and error["message"], error
                field = "properties" if name in ("model", "property name") else name
                assert field in error["message"] or (name == "tokens" and "tokens" in error["message"]), (label, error)
            assert 2 * number + 2 not in errors  # the neighbour is fine
    store_rows = _rows(api.url)
    for number, (label, name, event) in enumerate(cases):
        assert f"ok-{number}" in store_rows
        stored = store_rows.get(event["id"])
        if stored is not None:
            assert stored[0] == event["customer"] and stored[1] == event["meter"], (label, name)
            assert stored[2] == event["properties"], (label, name)
    assert SQL in {row[0] for row in store_rows.values()} | {row[1] for row in store_rows.values()}
    counts = tables_intact(api.url)
    assert counts["events"] == len(store_rows) and counts["catalog_versions"] == 1


def _rows(url: str) -> dict[str, tuple]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, customer, meter, properties FROM events")).all()
    finally:
        engine.dispose()
    return {i: (c, m, p if isinstance(p, dict) else json.loads(p)) for i, c, m, p in rows}


FULL_CATALOG_EXTRAS = {
    ("billing_entity", "invoice_prefix"): "ACME",
    ("billing_entity", "rounding"): "half_even",
    ("billing_entity", "tax_rounding"): "line",
    ("meters", 0, "name"): "Tokens",
    ("plans", 0, "name"): "Pro",
    ("plans", 0, "interval"): "month",
    ("plans", 0, "charges", 0, "description"): "Base fee",
    ("customers", 0, "email"): "billing@acme.test",
    ("subscriptions", 0, "end"): "2027-01-15",
    ("subscriptions", 0, "overrides"): {"base": {"amount": "39.00"}},
}
# identifiers that other parts of the catalog refer to: replaced everywhere at once, so the
# hostile text reaches the store, the invoice run and the export
RENAMES = {"customer reference": ("acme",), "plan code": ("pro",), "subscription reference": ("acme-pro",),
           "charge code": ("base",), "meter code": ("api_calls",)}


def _full_catalog() -> dict[str, Any]:
    from ratecard.catalog.load import parse_text

    document = parse_text(CATALOG, "catalog.yaml")
    for path, value in FULL_CATALOG_EXTRAS.items():
        node = document
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return json.loads(json.dumps(document, default=str))


def _leaves(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        found = [path + (("key", key),) for key in node if path and path[-1] in ("filters", "overrides")]
        return found + [leaf for key, value in node.items() for leaf in _leaves(value, path + (key,))]
    if isinstance(node, list):
        return [leaf for index, value in enumerate(node) for leaf in _leaves(value, path + (index,))]
    return [path]


def _replace(document: Any, path: tuple, payload: str) -> Any:
    document = copy.deepcopy(document)
    node = document
    for part in path[:-1]:
        node = node[part]
    last = path[-1]
    if isinstance(last, tuple):  # a mapping key
        node[payload] = node.pop(last[1])
    else:
        node[last] = payload
    return document


def _rename(document: Any, old: str, new: str) -> Any:
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {(new if key == old else key): walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return new if node == old else node

    return walk(document)


def _path_text(path: tuple) -> str:
    return ".".join(str(p[1]) if isinstance(p, tuple) else str(p) for p in path)


def test_long_strings_and_sql_in_every_catalog_field(api) -> None:
    """Every value of a catalog that uses every field (and every mapping key), replaced by 10,000
    characters or by SQL, and every identifier renamed to SQL (or 200 characters, the longest
    allowed) everywhere it is referred to. /v1/catalog/check and /v1/catalog answer 200/201
    or a 400 whose problems name a path; an accepted catalog reads back exactly as sent, and
    an invoice run, the export (JSON and CSV), plans, subscriptions and an event batch for it
    all answer without a 5xx. No table is harmed."""
    document = _full_catalog()
    assert api.post("/v1/catalog", json=document).status_code == 201
    assert api.post("/v1/events", json=EVENTS).status_code == 200
    variants: list[tuple[str, Any]] = []
    for path in _leaves(document):
        for label, payload in HOSTILE.items():
            variants.append((f"{_path_text(path)} = {label}", _replace(document, path, payload)))
    for name, olds in RENAMES.items():
        for label, payload in {"sql": SQL, "200": "y" * 199 + "'"}.items():
            renamed = document
            for old in olds:
                renamed = _rename(renamed, old, payload)
            variants.append((f"{name} renamed to {label}", renamed))
    accepted = 0
    for label, variant in variants:
        checked = api.post("/v1/catalog/check", json=variant)
        assert checked.status_code == 200, (label, checked.text[:300])
        problems = checked.json()["problems"]
        assert all(p["path"] and p["message"] for p in problems), (label, problems)
        applied = api.post("/v1/catalog", json=variant)
        if problems:
            body = clear_4xx(applied, status=400)
            assert body["field"] and body["field"] in {p["path"] for p in problems}, (label, body)
            continue
        assert applied.status_code == 201, (label, applied.text[:300])
        accepted += 1
        read_back = api.get("/v1/catalog").json()["catalog"]
        assert SQL not in json.dumps(variant) or SQL in json.dumps(read_back), label
        for response in (api.post("/v1/invoice-runs", json={"until": "2026-03-01"}),
                         api.get("/v1/exports/invoices"), api.get("/v1/exports/invoices?format=csv"),
                         api.get("/v1/plans"), api.get("/v1/subscriptions"),
                         api.post("/v1/events", json=[_event(id=f"cat-{accepted}", customer=variant["customers"][0]
                                                             .get("reference", "acme"))])):
            assert response.status_code < 500, (label, response.request.url.path, response.text[:300])
    assert accepted >= len(variants) // 4, f"only {accepted} of {len(variants)} variants were valid catalogs"
    counts = tables_intact(api.url)
    assert counts["events"] >= len(EVENTS) and counts["api_keys"] == 2


def test_long_strings_and_sql_in_every_path_query_and_header(api) -> None:
    """10,000 characters or SQL in every path parameter, query parameter and header the API
    reads: a 4xx in the error envelope (401 for a key that is not one) or an ordinary answer
    (an empty list, a 404); never a 5xx; no table is harmed."""
    api.apply_catalog()
    api.post("/v1/events", json=EVENTS)
    for label, payload in HOSTILE.items():
        quoted = httpx.QueryParams({"v": payload})["v"]
        for path in ("/v1/plans/{}", "/v1/subscriptions/{}"):
            assert clear_4xx(api.get(path.format(quoted)), status=404)["code"] == "RESOURCE_NOT_FOUND"
        for path, name in (("/v1/subscriptions", "customer"), ("/v1/subscriptions", "order_by"),
                           ("/v1/plans", "order_by"), ("/v1/plans", "order_direction"), ("/v1/plans", "limit"),
                           ("/v1/plans", "page"), ("/v1/exports/invoices", "status"),
                           ("/v1/exports/invoices", "format"), ("/v1/events", "dry_run")):
            if path == "/v1/events":
                response = api.post(path, params={name: payload}, json=EVENTS)
            else:
                response = api.get(path, params={name: payload})
            not_5xx(response)
            if name != "customer":
                assert clear_4xx(response, status=400)["field"] == name, (label, name, response.text[:200])
        ascii_payload = payload.encode("ascii")
        for headers in ({"X-API-KEY": ascii_payload}, {"Authorization": b"Bearer " + ascii_payload}):
            assert clear_4xx(api.client.get("/v1/plans", headers=headers), status=401)["code"] == "UNAUTHORISED"
        not_5xx(api.post("/v1/invoice-runs", json={"until": "2026-02-01"}, headers={"Idempotency-Key": payload}))
        echoed = api.client.get("/v1/plans", headers={"X-API-KEY": api.live, "X-REQUEST-ID": ascii_payload})
        assert echoed.status_code == 200 and len(echoed.headers["x-request-id"]) <= 128
        not_5xx(api.post("/v1/catalog", content=CATALOG, headers={"content-type": payload}))
        not_5xx(api.post("/v1/events", json=EVENTS, headers={"content-type": payload}))
    counts = tables_intact(api.url)
    assert counts["events"] == len(EVENTS) and counts["catalog_versions"] == 1


def test_invoice_run_dates_out_of_range_get_a_clear_400(api) -> None:
    """`until` at the edges of the calendar: a 400 naming `until`, not an OverflowError (500)."""
    api.apply_catalog()
    for until in ("9999-12-31", "9999-12-31T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-06-01"):
        body = clear_4xx(api.post("/v1/invoice-runs", json={"until": until}), status=400)
        assert body["field"] == "until", (until, body)
    assert api.post("/v1/invoice-runs", json={"until": "2026-02-01"}).status_code == 200


NUL_CASES = {"id": _event(id="nul\x00id"), "customer": _event(id="nul-c", customer="acme\x00"),
             "meter": _event(id="nul-m", meter="tokens\x00"),
             "property value": _event(id="nul-v", properties={"tokens": 5, "model": "gpt\x00"}),
             "property name": _event(id="nul-k", properties={"tokens": 5, "mo\x00del": "x"})}


def test_nul_characters_are_rejected_per_event_not_with_a_500(api) -> None:
    """U+0000 is valid JSON text but PostgreSQL cannot store it (text or jsonb): each such event
    must be rejected on its own (invalid_value) or stored, never fail its whole batch with a 500.
    """
    api.apply_catalog()
    for name, event in NUL_CASES.items():
        response = api.post("/v1/events", json=[event, _event(id=f"ok-{name}")])
        assert response.status_code == 200, (name, response.text[:300])
        assert response.json()["stored"] >= 1


def test_nul_characters_in_catalog_identifiers_never_break_the_invoice_run(api) -> None:
    """A catalog whose customer reference holds U+0000 is refused (400) or billed (200); it must
    not be accepted and then make every later invoice run of the environment fail with a 500."""
    document = _rename(_full_catalog(), "acme", "acme\x00")
    applied = api.post("/v1/catalog", json=document)
    if applied.status_code == 201:
        assert api.post("/v1/invoice-runs", json={"until": "2026-03-01"}).status_code == 200
    else:
        clear_4xx(applied, status=400)


def _string_body(schema: dict[str, Any], components: dict[str, Any], payload: str, depth: int = 0) -> Any:
    """A body of the declared shape with `payload` in every string (and every free-form) slot."""
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema and schema[key]:
            return _string_body(schema[key][0], components, payload, depth)
    kind = schema.get("type")
    if depth > 6:
        return payload
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if not properties:
            return {"reference": payload, "name": payload, "value": payload}
        return {name: _string_body(sub, components, payload, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [_string_body(schema.get("items", {}), components, payload, depth + 1)]
    if kind in ("integer", "number", "boolean"):
        return payload  # the wrong type, with the hostile text in it
    return payload


def test_long_strings_and_sql_in_every_parameter_and_body_field_of_every_operation(api) -> None:
    """Every operation /openapi.json lists (ratecard's own and the Solvimon-compatible ones): each
    path and query parameter, and every field of the declared JSON body, holding 10,000
    characters or SQL. Each answer is below 500, and every 4xx is the error envelope."""
    api.apply_catalog()
    api.post("/v1/events", json=EVENTS)
    openapi = api.client.get("/openapi.json").json()
    components = openapi.get("components", {}).get("schemas", {})
    checked = 0
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            parameters = [p for p in operation.get("parameters", []) if p.get("in") in ("path", "query")]
            content = operation.get("requestBody", {}).get("content", {})
            body_schema = content.get("application/json", {}).get("schema")
            for payload in HOSTILE.values():
                quoted = httpx.QueryParams({"v": payload})["v"]
                url = path
                for parameter in parameters:
                    if parameter["in"] == "path":
                        url = url.replace("{" + parameter["name"] + "}", quoted)
                variants = [({}, None)]
                variants += [({p["name"]: payload}, None) for p in parameters if p["in"] == "query"]
                if body_schema is not None:
                    variants.append(({}, _string_body(body_schema, components, payload)))
                for query, body in variants:
                    kwargs: dict[str, Any] = {"params": query}
                    if body is not None:
                        kwargs["json"] = body
                    elif method in ("post", "put", "patch"):
                        kwargs["json"] = {}
                    response = api.client.request(method.upper(), url, headers=api.headers(), **kwargs)
                    assert response.status_code < 500, f"{method.upper()} {path} {query or ''} " \
                                                       f"{'body' if body is not None else ''}: " \
                                                       f"{response.status_code} {response.text[:300]}"
                    if response.status_code >= 400:
                        clear_4xx(response)
                    checked += 1
    assert checked >= 100, checked
    counts = tables_intact(api.url)
    assert counts["events"] >= len(EVENTS) and counts["api_keys"] == 2
