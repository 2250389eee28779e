"""The issue's reliability bar, against real `ratecard serve` processes on 127.0.0.1.

1. Two server processes ingest the same events at once on PostgreSQL (overlapping batches,
   retries of the same batch, both servers): every id is stored exactly once, the responses
   account for every event exactly once, the stored rows equal those of one clean import, and
   the invoices equal those of one clean import of the same events. Sharpest case: one batch
   sent to both servers at the same moment in opposite orders, 30 times (PostgreSQL and SQLite).
2. A server is killed with SIGKILL in the middle of a load (PostgreSQL and SQLite): every event
   answered 2xx is in the store afterwards with every column intact, each request's batch is
   stored entirely or not at all, and after a restart the clients' retries store exactly the
   missing events.

Every server runs in a session of its own and is stopped by the test (tests/api/live_server.py);
every loop is bounded by a count or a deadline.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, text

from ratecard.billing.export import invoices_json
from ratecard.billing.run import generate_invoices
from ratecard.catalog import build_catalog, check_document
from ratecard.ingest.importer import import_file
from ratecard.store import open_store
from ratecard.store.catalogs import save_version
from ratecard.store.invoices import list_invoices

from .live_server import Server, create_key, postgres_schema

NOW = datetime(2026, 11, 26, tzinfo=UTC)
SERVER_ENV = {"RATECARD_NOW": "2026-11-26T00:00:00Z"}  # the servers and the clean import share a clock
UNTIL = date(2026, 11, 1)
CUSTOMERS = 100
# The issue asks for 100,000 events; on this 2-core machine the whole test (two servers, ~3
# submissions of every event, the clean import and both invoice runs) takes ~25-35 s.
CONCURRENT_EVENTS = 100_000
BATCH = 1_000
STRIDE = 700  # windows of 1,000 events every 700: consecutive batches share 300 events
RETRIED_SHARE = 0.15  # batches sent a third time, to either server, as a client retry would


def catalog_document(customers: int = CUSTOMERS) -> dict[str, Any]:
    return {
        "billing_entity": {"name": "Reliability BV", "country": "NL", "timezone": "UTC", "currency": "EUR"},
        "meters": [
            {"code": "tokens", "aggregation": "sum", "field": "tokens"},
            {"code": "api_calls", "aggregation": "count"},
        ],
        "plans": [{
            "code": "pro", "currency": "EUR", "interval": "month",
            "charges": [
                {"code": "base", "model": "flat", "amount": "49.00", "timing": "advance"},
                {"code": "tokens", "meter": "tokens", "model": "graduated", "tiers": [
                    {"up_to": 20000, "unit_amount": "0"},
                    {"up_to": None, "unit_amount": "0.0004", "flat_amount": "5"}]},
                {"code": "calls", "meter": "api_calls", "model": "per_unit", "unit_amount": "0.0125"},
            ],
        }],
        "customers": [{"reference": f"c-{i:03d}", "name": f"Customer {i}", "currency": "EUR", "tax_rate": "21"}
                      for i in range(customers)],
        "subscriptions": [{"reference": f"s-{i:03d}", "customer": f"c-{i:03d}", "plan": "pro",
                           "start": "2026-10-01", "billing_anchor": 1} for i in range(customers)],
    }


def make_events(count: int, prefix: str = "evt", seed: int = 7, customers: int = CUSTOMERS) -> list[dict[str, Any]]:
    """Deterministic events over October 2026: 75% tokens (integer sums), 24% API calls, 1% for a
    customer the catalog does not know (stored unmatched)."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    span = 31 * 24 * 3600 * 1000
    events = []
    for index in range(count):
        moment = start + timedelta(milliseconds=rng.randrange(span))
        customer = f"c-{rng.randrange(customers):03d}" if rng.random() >= 0.01 else "c-unknown"
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        if rng.random() < 0.75:
            event = {"id": f"{prefix}-{index:07d}", "customer": customer, "meter": "tokens", "timestamp": stamp,
                     "properties": {"tokens": rng.randrange(1, 4000), "model": rng.choice(("gpt-4o", "o3"))}}
        else:
            event = {"id": f"{prefix}-{index:07d}", "customer": customer, "meter": "api_calls", "timestamp": stamp,
                     "properties": {"endpoint": rng.choice(("/v1/chat", "/v1/embed"))}}
        events.append(event)
    return events


def micros(stamp: str) -> int:
    return (datetime.fromisoformat(stamp) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def stored_rows(url: str) -> dict[str, tuple]:
    """Every events row, read with plain SQL: id -> (customer, meter, ts, properties, status, late)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT environment, id, customer, meter, ts, properties, status, late, received_at FROM events"
            )).all()
    finally:
        engine.dispose()
    result = {}
    for environment, event_id, customer, meter, ts, properties, status, late, received_at in rows:
        assert environment == "live" and received_at is not None, (event_id, environment, received_at)
        parsed = properties if isinstance(properties, dict) else json.loads(properties)
        assert event_id not in result, f"{event_id} stored twice"
        result[event_id] = (customer, meter, ts, parsed, status, bool(late))
    return result


def comparable(invoices: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Invoices keyed by (subscription, issue date), without the storage id (and the draft
    number derived from it), which depend on insertion order, not on billing."""
    keyed = {}
    for invoice in invoices:
        document = {k: v for k, v in invoice.items() if k not in ("id", "number")}
        keyed[(invoice["subscription"], invoice["issue_date"])] = document
    return keyed


def clean_import(url: str, events: list[dict[str, Any]], folder: Path) -> tuple[dict[str, tuple], list[dict]]:
    """One import of the events file into a fresh database, then the invoice run: the reference."""
    store = open_store(url)
    try:
        document, problems = check_document(catalog_document())
        assert not problems and document is not None
        version, _ = save_version(store, document, 0)
        catalog = build_catalog(document)
        path = folder / "events.jsonl"
        path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
        report = import_file(store, catalog, path, NOW)
        assert report.stored == len(events) and not report.rejected, report.as_dict()
        generate_invoices(store, catalog, version, UNTIL, NOW)
        exported = json.loads(json.dumps(invoices_json(list_invoices(store, "live"))))
    finally:
        store.dispose()
    return stored_rows(url), exported


@dataclass
class Tally:
    responses: int = 0
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_servers_ingest_the_same_events_at_once_exactly_once(postgres_reason: str | None, tmp_path: Path) -> None:
    """100,000 events, in windows of 1,000 every 700 events (so neighbouring batches overlap),
    each window sent to both servers and 15% of them a third time, every submission with its
    events in its own random order, from 6 client threads in a shuffled order: ~3.1 submissions
    per event, overlapping in time across the two servers.

    Afterwards: every request answered 200; the responses' `stored` add up to exactly the
    number of distinct events (each counted once, by whichever server won) and stored +
    duplicates to every submission; the events table holds each id exactly once with the row a
    single clean import stores; and the invoice run over HTTP exports the same invoices as a
    clean import + invoice run of the same events in a fresh database."""
    if postgres_reason is not None:
        pytest.skip(f"PostgreSQL unreachable: {postgres_reason}")
    events = make_events(CONCURRENT_EVENTS)
    windows = []
    for start in range(0, CONCURRENT_EVENTS, STRIDE):
        windows.append(events[start : start + BATCH])
        if start + BATCH >= CONCURRENT_EVENTS:
            break
    rng = random.Random(11)
    sends = [(window, server) for window in windows for server in (0, 1)]
    sends += [(window, rng.randrange(2)) for window in windows if rng.random() < RETRIED_SHARE]
    rng.shuffle(sends)
    # each submission in its own order, as independent producers would send the same events
    sends = [(orjson.dumps(rng.sample(window, len(window))), server) for window, server in sends]
    submitted = sum(len(orjson.loads(body)) for body, _ in sends)

    with postgres_schema("conc") as url, postgres_schema("clean") as clean_url:
        key = create_key(url)
        with Server(url, tmp_path / "a.log", env=SERVER_ENV) as first, \
                Server(url, tmp_path / "b.log", env=SERVER_ENV) as second:
            servers = (first, second)
            headers = {"X-API-KEY": key, "content-type": "application/json"}
            applied = httpx.post(f"{first.base_url}/v1/catalog", json=catalog_document(), headers=headers, timeout=60)
            assert applied.status_code == 201, applied.text
            tally = Tally()
            local = threading.local()

            def send(item: tuple[bytes, int]) -> None:
                body, which = item
                if not hasattr(local, "clients"):
                    local.clients = [httpx.Client(base_url=s.base_url, headers=headers, timeout=60) for s in servers]
                response = local.clients[which].post("/v1/events", content=body)
                with tally.lock:
                    tally.statuses[response.status_code] += 1
                    if response.status_code != 200:
                        tally.problems.append(f"server {which}: {response.status_code} {response.text[:300]}")
                        return
                    result = response.json()
                    tally.responses += 1
                    tally.received += result["received"]
                    tally.stored += result["stored"]
                    tally.duplicates += result["duplicates"]
                    if result["rejected"]:
                        tally.problems.append(f"rejections: {result['errors'][:3]}")

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(send, sends))
            ingest_seconds = time.monotonic() - started
            print(f"ingest: {submitted:,} submissions of {CONCURRENT_EVENTS:,} events in {ingest_seconds:.1f}s")
            logs = first.log() + second.log()
            assert not tally.problems, f"{tally.statuses}: {tally.problems[:5]}\nlogs:\n{logs}"

            run = httpx.post(f"{second.base_url}/v1/invoice-runs", json={"until": UNTIL.isoformat()},
                             headers=headers, timeout=120)
            assert run.status_code == 200, run.text
            exported = httpx.get(f"{first.base_url}/v1/exports/invoices", headers=headers, timeout=60).json()

        # each event counted exactly once across both servers' answers
        assert tally.received == submitted, (tally.received, submitted)
        assert tally.stored == CONCURRENT_EVENTS, (tally.stored, ingest_seconds)
        assert tally.stored + tally.duplicates == submitted

        rows = stored_rows(url)
        reference_rows, reference_invoices = clean_import(clean_url, events, tmp_path)
        assert len(rows) == CONCURRENT_EVENTS
        assert rows.keys() == {event["id"] for event in events}
        different = [event_id for event_id, row in reference_rows.items() if rows.get(event_id) != row]
        assert not different, f"{len(different)} rows differ from the clean import, e.g. " \
                              f"{different[0]}: {rows.get(different[0])} != {reference_rows[different[0]]}"
        statuses = Counter(row[4] for row in rows.values())
        assert statuses["unknown_customer"] == sum(1 for e in events if e["customer"] == "c-unknown")

    assert len(exported) == 2 * CUSTOMERS  # October's arrears + November's advance fee, per subscription
    assert comparable(exported) == comparable(reference_invoices)
    billed_calls = sum(Decimal(line["quantity"]) for invoice in exported for line in invoice["lines"]
                       if line["code"] == "calls")
    assert billed_calls == sum(1 for e in events if e["meter"] == "api_calls" and e["customer"] != "c-unknown")


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_reason: str | None):
    """A database that several server processes share."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    if postgres_reason is not None:
        pytest.skip(f"PostgreSQL unreachable: {postgres_reason}")
    with postgres_schema("order") as url:
        yield url


@pytest.mark.slow
def test_the_same_batch_in_opposite_orders_on_two_servers_never_deadlocks(shared_url: str, tmp_path: Path) -> None:
    """The sharpest case of the test above: 30 rounds of one fresh batch of 1,000 events sent at
    the same moment to both servers, once in order and once reversed (and a third copy shuffled).
    Every request is answered 200 and, per round, exactly one of them stored each event.
    (PostgreSQL deadlocked here, 500 DeadlockDetected, until store/events.py took ids in key order.)"""
    rng = random.Random(5)
    url = shared_url
    key = create_key(url)
    headers = {"X-API-KEY": key, "content-type": "application/json"}
    with Server(url, tmp_path / "a.log", env=SERVER_ENV) as first, \
            Server(url, tmp_path / "b.log", env=SERVER_ENV) as second, \
            httpx.Client(base_url=first.base_url, headers=headers, timeout=60) as one, \
            httpx.Client(base_url=second.base_url, headers=headers, timeout=60) as two, \
            httpx.Client(base_url=second.base_url, headers=headers, timeout=60) as three, \
            ThreadPoolExecutor(max_workers=3) as pool:
        assert one.post("/v1/catalog", json=catalog_document()).status_code == 201
        failures = []
        for round_number in range(30):
            batch = make_events(BATCH, prefix=f"r{round_number:02d}", seed=round_number)
            bodies = [orjson.dumps(batch), orjson.dumps(batch[::-1]), orjson.dumps(rng.sample(batch, len(batch)))]
            responses = list(pool.map(lambda pair: pair[0].post("/v1/events", content=pair[1]),
                                      zip((one, two, three), bodies, strict=True)))
            if any(r.status_code != 200 for r in responses):
                failures += [f"round {round_number}: {r.status_code} {r.text[:200]}" for r in responses
                             if r.status_code != 200]
                continue
            stored = [r.json()["stored"] for r in responses]
            if sum(stored) != BATCH:
                failures.append(f"round {round_number}: stored {stored}, expected {BATCH} in all")
        assert not failures, failures
    assert len(stored_rows(url)) == 30 * BATCH


# ----------------------------------------------------------------------------- SIGKILL mid-load


def settled_rows(url: str, quiet: float = 1.0, timeout: float = 30.0) -> dict[str, tuple]:
    """`stored_rows` once the killed server's last transactions have settled. PostgreSQL finishes a
    COMMIT it had received when its client was killed: read at once, such a batch could be missing,
    then appear before the retries and be counted a duplicate. Two reads `quiet` seconds apart
    that agree say nothing is still committing."""
    rows = stored_rows(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(quiet)
        again = stored_rows(url)
        if again.keys() == rows.keys():
            return again
        rows = again
    raise AssertionError(f"the events table still changed {timeout} s after the kill")


KILL_BATCH = 500
GROUP_COMMITTED = 10  # small enough for the server's group commit
SINGLE = 1  # one event per request: the single-event lane (api/lane.py)
KILL_CLIENTS = 4
ACKED_BEFORE_KILL = 24  # batches answered 2xx before the kill is armed
KILL_DEADLINE = 30.0


@pytest.fixture(params=["postgresql", "sqlite"])
def kill_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_reason: str | None):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kill.db'}"
        return
    if postgres_reason is not None:
        pytest.skip(f"PostgreSQL unreachable: {postgres_reason}")
    with postgres_schema("kill") as url:
        yield url


@pytest.mark.slow
@pytest.mark.parametrize("size", [KILL_BATCH, GROUP_COMMITTED, SINGLE])
def test_sigkill_mid_load_loses_no_acknowledged_event_and_half_writes_none(kill_url: str, tmp_path: Path,
                                                                           size: int) -> None:
    """4 clients send distinct batches of 500 events without pause; once 24 batches were answered
    200 the server is SIGKILLed at a random moment (requests are in flight on every client).

    Read straight from the database afterwards: every event of every batch answered 200 is
    stored, column for column as sent; every batch is stored whole or not at all (one request is
    one transaction); nothing else is stored. After a restart, the clients retry every batch
    whose fate they do not know (and the acknowledged ones too, as a careless client would):
    exactly the missing events are stored, and the totals add up.

    Batches of 10 go through the server's group commit (several requests per transaction): the
    same must hold, each request whole or not at all, answered only once committed; and for one
    event per request, which the single-event lane answers once the shared transaction committed."""
    key = create_key(kill_url)
    rng = random.Random(3)
    batches: list[list[dict[str, Any]]] = []
    acknowledged: set[int] = set()
    unknown: set[int] = set()
    lock = threading.Lock()
    killed = threading.Event()
    headers = {"X-API-KEY": key, "content-type": "application/json"}
    server = Server(kill_url, tmp_path / "server.log", env=SERVER_ENV).start()
    try:
        applied = httpx.post(f"{server.base_url}/v1/catalog", json=catalog_document(), headers=headers, timeout=60)
        assert applied.status_code == 201, applied.text

        def next_batch() -> int:
            with lock:
                number = len(batches)
                batches.append(make_events(size, prefix=f"k{number:04d}", seed=number))
                return number

        def client() -> None:
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
                deadline = time.monotonic() + KILL_DEADLINE
                while not killed.is_set() and time.monotonic() < deadline:
                    number = next_batch()
                    try:
                        response = http.post("/v1/events", content=orjson.dumps(batches[number]))
                    except httpx.HTTPError:
                        with lock:
                            unknown.add(number)
                        return
                    with lock:
                        if response.status_code == 200 and response.json()["stored"] == size:
                            acknowledged.add(number)
                        else:
                            unknown.add(number)

        threads = [threading.Thread(target=client, daemon=True) for _ in range(KILL_CLIENTS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + KILL_DEADLINE
        while len(acknowledged) < ACKED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        server.kill()
        killed.set()
        for thread in threads:
            thread.join(timeout=40)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        server.stop()
    assert len(acknowledged) >= ACKED_BEFORE_KILL, f"only {len(acknowledged)} batches answered; log:\n{server.log()}"
    assert unknown, "the kill landed between requests; no request was in flight"

    rows = settled_rows(kill_url)
    sent = {event["id"]: (number, event) for number, batch in enumerate(batches) for event in batch}
    assert rows.keys() <= sent.keys(), f"rows nobody sent: {sorted(rows.keys() - sent.keys())[:5]}"
    for number in acknowledged:
        missing = [event["id"] for event in batches[number] if event["id"] not in rows]
        assert not missing, f"batch {number} was answered 200 but {len(missing)} of its events are missing"
    per_batch = Counter(sent[event_id][0] for event_id in rows)
    partial = {number: count for number, count in per_batch.items() if count != size}
    assert not partial, f"half-written batches (batch: rows stored): {partial}"
    for event_id, (customer, meter, ts, properties, status, late) in rows.items():
        event = sent[event_id][1]
        assert (customer, meter, ts, properties) == (event["customer"], event["meter"], micros(event["timestamp"]),
                                                     event["properties"]), event_id
        assert status == ("unknown_customer" if event["customer"] == "c-unknown" else "matched") and not late

    # restart on the same database; retry everything (acknowledged batches come back as duplicates)
    stored_before = len(rows)
    with Server(kill_url, tmp_path / "restart.log", env=SERVER_ENV) as restarted, \
            httpx.Client(base_url=restarted.base_url, headers=headers, timeout=60) as http:
        stored = duplicates = 0
        for batch in batches:
            response = http.post("/v1/events", content=orjson.dumps(batch))
            assert response.status_code == 200, response.text
            stored += response.json()["stored"]
            duplicates += response.json()["duplicates"]
    total = len(batches) * size
    assert stored == total - stored_before and duplicates == stored_before
    assert len(stored_rows(kill_url)) == total
