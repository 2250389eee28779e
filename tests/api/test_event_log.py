"""Ingestion through NATS JetStream: `ratecard serve --log` answers once the log persisted a batch,
`ratecard worker` processes store it. Real servers, real workers, the JetStream server on
127.0.0.1:4222 (RATECARD_TEST_NATS_URL); skipped without it unless RATECARD_REQUIRE_NATS=1.

Each test has its own stream (and so its own subjects and consumer), deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from ratecard.cli import main
from ratecard.services import keys
from ratecard.store import open_store

from ..migrated import at_head
from .live_server import RATECARD, Server, postgres_schema
from .test_reliability import catalog_document, make_events

NATS_URL = os.environ.get("RATECARD_TEST_NATS_URL", "nats://127.0.0.1:4222")
REQUIRE_NATS = os.environ.get("RATECARD_REQUIRE_NATS") == "1"
DEADLINE = 40.0


async def _jetstream_call(action: str, stream: str = "") -> str | None:
    import nats

    try:
        nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    try:
        js = nc.jetstream()
        if action == "check":
            await js.account_info()
        elif action == "create":
            from ratecard.ingest.log import LogSettings, ensure_stream

            await ensure_stream(js, LogSettings(NATS_URL, stream=stream, dedup_window=60))
        elif action == "delete":
            try:
                await js.delete_stream(stream)
            except Exception:  # noqa: BLE001 - never created (the test failed before)
                pass
        return None
    except Exception as exc:  # noqa: BLE001 - JetStream disabled
        return f"{type(exc).__name__}: {exc}"
    finally:
        await nc.close()


@pytest.fixture
def stream() -> Iterator[str]:
    """A fresh stream name for this test; the stream is deleted afterwards."""
    reason = asyncio.run(_jetstream_call("check"))
    if reason is not None:
        if REQUIRE_NATS:
            pytest.fail(f"NATS JetStream is required (RATECARD_REQUIRE_NATS=1) but unreachable at {NATS_URL}: {reason}")
        pytest.skip(f"NATS JetStream unreachable at {NATS_URL}: {reason}")
    name = f"RCTEST_{uuid.uuid4().hex[:12]}"
    yield name
    asyncio.run(_jetstream_call("delete", name))


class Worker:
    """One `ratecard worker` process in a session of its own."""

    def __init__(self, db_url: str, stream: str, folder: Path, label: str, batch: int = 500) -> None:
        self.command = [RATECARD, "worker", "--log", NATS_URL, "--db", db_url, "--log-stream", stream,
                        "--batch", str(batch), "--ack-wait", "2", "--stats", str(folder / f"{label}.json")]
        self.log_path = folder / f"{label}.log"
        self.stats_path = folder / f"{label}.json"
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        env = {k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        return self

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stats(self) -> dict[str, Any]:
        return json.loads(self.stats_path.read_text(encoding="utf-8"))

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]


def stored(db_url: str) -> dict[str, tuple[str, str, str]]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, customer, status, properties FROM events "
                                           "WHERE environment = 'live'")).all()
    finally:
        engine.dispose()
    return {row[0]: (row[1], row[2], json.loads(row[3]) if isinstance(row[3], str) else row[3]) for row in rows}


def wait_for_ids(db_url: str, expected: set[str], workers: list[Worker]) -> dict[str, Any]:
    """The stored events once every expected id is among them (bounded wait)."""
    deadline = time.monotonic() + DEADLINE
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = stored(db_url)
        if expected <= found.keys():
            return found
        time.sleep(0.2)
    logs = "\n".join(w.log() for w in workers)
    raise AssertionError(f"{len(expected - found.keys())} of {len(expected)} events missing after {DEADLINE:.0f}s; "
                         f"workers:\n{logs}")


def ids(events: list[dict[str, Any]]) -> set[str]:
    return {e["id"] for e in events}


def post(client: httpx.Client, base: str, key: str, batch: list[dict[str, Any]]) -> httpx.Response:
    return client.post(f"{base}/v1/events", json=batch, headers={"X-API-KEY": key}, timeout=30)


def log_args(stream: str) -> list[str]:
    return ["--log", NATS_URL, "--log-stream", stream]


def new_database(db_url: str) -> str:
    """The database at the newest migration, with a live key (made in process: one process less to start)."""
    store = open_store(at_head(db_url))
    try:
        return keys.create(store, "live", datetime.now(UTC))["key"]
    finally:
        store.dispose()


def apply_catalog(key: str, server: Server) -> None:
    applied = httpx.post(f"{server.base_url}/v1/catalog", json=catalog_document(), headers={"X-API-KEY": key},
                         timeout=60)
    assert applied.status_code == 201, applied.text


def check_exactly_once(rows: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """Every event once, with what was sent, matched against the catalog by the worker."""
    assert sorted(rows) == sorted(e["id"] for e in events)
    for event in events:
        customer, status, properties = rows[event["id"]]
        assert customer == event["customer"]
        assert properties == event["properties"]
        assert status == ("unknown_customer" if event["customer"] == "c-unknown" else "matched")


@pytest.mark.slow
def test_worker_killed_mid_batch_loses_and_doubles_nothing(tmp_path: Path, stream: str) -> None:
    db_url = f"sqlite:///{tmp_path / 'log.db'}"
    key = new_database(db_url)
    events = make_events(6000, prefix="kill")
    with Server(db_url, tmp_path / "serve.log", args=log_args(stream)) as server, httpx.Client() as client:
        apply_catalog(key, server)
        answers = [post(client, server.base_url, key, events[i:i + 1000]) for i in range(0, len(events), 1000)]
        assert all(a.status_code == 202 for a in answers)
        first = Worker(db_url, stream, tmp_path, "first", batch=500).start()
        # SIGKILL once it stored its first events, while it works through the batches (one is pulled
        # and not acknowledged); the look is a count every 5 ms: reading the rows themselves every
        # 20 ms until 1,000 were in gave the worker time to store all 6,000 before the kill came
        watcher = create_engine(db_url, isolation_level="AUTOCOMMIT")
        try:
            with watcher.connect() as connection:
                deadline = time.monotonic() + DEADLINE
                while time.monotonic() < deadline and not connection.exec_driver_sql(
                        "SELECT count(*) FROM events WHERE environment = 'live'").scalar():
                    time.sleep(0.005)
                first.kill()
        finally:
            watcher.dispose()
        partial = len(stored(db_url))
        assert 0 < partial < len(events), partial
        # two fresh workers take over; the killed one's unacknowledged batch comes back after --ack-wait
        workers = [Worker(db_url, stream, tmp_path, "second").start(), Worker(db_url, stream, tmp_path, "third").start()]
        try:
            wait_for_ids(db_url, ids(events), workers)
            time.sleep(2.5)  # past --ack-wait: a redelivery, if any, is stored (as duplicates) by now
        finally:
            for worker in workers:
                worker.stop()
        check_exactly_once(stored(db_url), events)
        figures = [w.stats() for w in workers]
        assert sum(f["stored"] for f in figures) == len(events) - partial


@pytest.mark.slow
def test_server_killed_mid_load_then_client_retries_store_everything_once(tmp_path: Path, stream: str) -> None:
    db_url = f"sqlite:///{tmp_path / 'log.db'}"
    key = new_database(db_url)
    events = make_events(4000, prefix="srv")
    batches = [events[i:i + 100] for i in range(0, len(events), 100)]
    with Server(db_url, tmp_path / "a.log", args=log_args(stream)) as first, \
            Server(db_url, tmp_path / "b.log", args=log_args(stream)) as second:
        apply_catalog(key, first)
        workers = [Worker(db_url, stream, tmp_path, "w1").start(), Worker(db_url, stream, tmp_path, "w2").start()]
        acknowledged: set[str] = set()
        unanswered: list[list[dict[str, Any]]] = []

        def send(batch: list[dict[str, Any]]) -> None:
            try:
                with httpx.Client() as client:
                    answer = post(client, first.base_url, key, batch)
                if answer.status_code == 202:
                    acknowledged.update(e["id"] for e in batch)
                    return
            except httpx.HTTPError:
                pass
            unanswered.append(batch)

        try:
            with ThreadPoolExecutor(4) as pool:
                futures = [pool.submit(send, batch) for batch in batches]
                deadline = time.monotonic() + DEADLINE
                while len(acknowledged) < 1000 and time.monotonic() < deadline:
                    time.sleep(0.01)
                first.kill()  # SIGKILL mid-load: requests in flight get no answer
                for future in futures:
                    future.result()
            assert 0 < len(acknowledged) < len(events)
            assert unanswered
            # every acknowledged event reaches the store, even before any retry
            wait_for_ids(db_url, set(acknowledged), workers)
            # the clients send what got no answer to the other server: what the dead one had published is
            # dropped by the log's duplicate window, the rest is queued
            with httpx.Client() as client:
                retried = [post(client, second.base_url, key, batch).json() for batch in unanswered]
            assert sum(r["queued"] + r["duplicates"] for r in retried) == sum(len(b) for b in unanswered)
            wait_for_ids(db_url, ids(events), workers)
            time.sleep(0.5)
        finally:
            for worker in workers:
                worker.stop()
        check_exactly_once(stored(db_url), events)
        assert sum(w.stats()["duplicates"] for w in workers) == 0


@pytest.mark.slow
@pytest.mark.postgres
def test_two_servers_two_workers_store_every_acknowledged_event_once(tmp_path: Path, stream: str,
                                                                     postgres_reason: str | None) -> None:
    """PostgreSQL, two servers, two workers: every batch sent to both servers at once, then resent."""
    from ..conftest import _require_postgres

    _require_postgres(postgres_reason)
    events = make_events(3000, prefix="pg")
    with postgres_schema("log") as db_url:
        key = new_database(db_url)
        with Server(db_url, tmp_path / "a.log", args=log_args(stream)) as first, \
                Server(db_url, tmp_path / "b.log", args=log_args(stream)) as second:
            both_servers(db_url, key, stream, tmp_path, first, second, events)


def both_servers(db_url: str, key: str, stream: str, tmp_path: Path, first: Server, second: Server,
                 events: list[dict[str, Any]]) -> None:
    apply_catalog(key, first)
    with ThreadPoolExecutor(4) as pool, httpx.Client() as client:
        answers = list(pool.map(lambda job: post(client, job[0], key, job[1]),
                                [(server.base_url, events[i:i + 500]) for i in range(0, len(events), 500)
                                 for server in (first, second)]))
        assert {a.status_code for a in answers} == {202}
        # each event queued once; its copy through the other server dropped by the log
        assert sum(a.json()["queued"] for a in answers) == len(events)
        assert sum(a.json()["duplicates"] for a in answers) == len(events)
        # nothing is stored before a worker runs: the answer only promises that the log has the events
        assert stored(db_url) == {}
        resent = post(client, second.base_url, key, events[:500] + [{"id": "bad", "customer": "c-001"}]).json()
        assert (resent["received"], resent["queued"], resent["duplicates"]) == (501, 0, 500)
        assert resent["errors"] == [{"index": 501, "id": "bad", "reason": "missing_field",
                                     "message": "line 501: field 'meter' is missing"}]
        # the catalog's rules are checked before the answer, as without the log: a token event needs its field
        refused = post(client, first.base_url, key, [{"id": "no-tokens", "customer": "c-001", "meter": "tokens",
                                                      "timestamp": "2026-10-02T00:00:00Z"}]).json()
        assert (refused["queued"], refused["rejected"]) == (0, {"missing_field": 1})
        workers = [Worker(db_url, stream, tmp_path, "w1", batch=300).start(),
                   Worker(db_url, stream, tmp_path, "w2", batch=300).start()]
        try:
            wait_for_ids(db_url, ids(events), workers)
        finally:
            for worker in workers:
                worker.stop()
        check_exactly_once(stored(db_url), events)
        figures = [w.stats() for w in workers]
        assert sum(f["stored"] for f in figures) == len(events)
        assert sum(f["duplicates"] for f in figures) == 0
        for figure in figures:
            if figure["stored"]:
                assert 0 < figure["latency_ms"]["p50"] <= figure["latency_ms"]["p99"]
        # billable: the customer's October usage is what was sent for it
        at = "2026-10-31T23:59:59.999Z"
        mine = [e for e in events if e["customer"] == "c-001" and e["timestamp"] < at]
        preview = client.get(f"{first.base_url}/v1/customers/c-001/upcoming-invoice", params={"at": at},
                             headers={"X-API-KEY": key}, timeout=30)
        assert preview.status_code == 200, preview.text
        (subscription,) = preview.json()["subscriptions"]
        calls = [e for e in mine if e["meter"] == "api_calls"]
        tokens = [e for e in mine if e["meter"] == "tokens"]
        assert sorted(subscription["usage"], key=lambda u: u["meter"]) == [
            {"meter": "api_calls", "quantity": str(len(calls)), "events": len(calls)},
            {"meter": "tokens", "quantity": str(sum(e["properties"]["tokens"] for e in tokens)), "events": len(tokens)},
        ]


def test_serve_refuses_a_stream_configured_otherwise(tmp_path: Path, stream: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    db_url = f"sqlite:///{tmp_path / 'log.db'}"
    # a stream made with a 60 s window (by a server started with --log-dedup-window 60) …
    assert asyncio.run(_jetstream_call("create", stream)) is None
    # … is not silently changed by another asking for 120 s (the command run in process: it stops
    # before serving, and before touching the database)
    refused = main(["serve", "--db", db_url, "--port", "1", *log_args(stream), "--log-dedup-window", "120"])
    assert refused == 2
    assert f"the stream {stream} exists with duplicate window 60s (--log-dedup-window 120)" in \
        " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "log.db").exists()
    unreachable = main(["worker", "--db", db_url, "--log", "nats://127.0.0.1:1"])
    assert unreachable == 2
    assert "cannot reach the event log at nats://127.0.0.1:1" in " ".join(capsys.readouterr().err.split())
