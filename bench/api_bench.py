"""HTTP API benchmarks: `ratecard serve --workers 2` on loopback, per store (SQLite, PostgreSQL).

Run by `python -m bench.run` (what `make bench` does), or alone: `python -m bench.api_bench`.
Each store gets a fresh database holding the benchmark catalog (bench/data.py) and one live key.

1. api_batch        events/s stored by `POST /v1/events`, the N events of bench/data.py sent as
                    JSON arrays of 1,000 by 4 client processes (http.client, one keep-alive
                    connection each), timed from the moment all clients start until the last
                    answer. Baseline: the same N rows inserted into an empty copy of the events
                    table of the same database by one bare executemany (SQLite) / COPY
                    (PostgreSQL), bench/baselines.py's `bare_insert`. Target ratio 0.5.
2. api_single       requests/s of single-event requests (`POST /v1/ingest/meter-data` when the
                    server offers it and accepts the probe, else a one-element `POST /v1/events`)
                    from 4 client processes, max(1,000, N/100) requests. Baseline: the same rows
                    written by 4 processes the bare way a single-event endpoint must write them,
                    one INSERT + COMMIT per row, into an empty copy of the events table, on
                    connections opened by ratecard's store: as durable as the server's commits
                    (SQLite synchronous=FULL, PostgreSQL synchronous_commit as configured; checked
                    and named in the row's detail).
3. api_single_p50 / api_single_p99
                    the same requests' latency percentiles (ms) against the budgets of 3 ms and
                    15 ms; ratio = budget / value, so higher is better like every row (the bare
                    INSERT + COMMIT percentiles are kept in the row's detail).

The load generator runs on the same machine as the server and the database (2 cores here),
so the figures include the client's own CPU use; the baselines pay none of it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from ratecard.store import open_store
from ratecard.store.keys import create_key

from . import data
from .baselines import COLUMNS, TABLE, bare_insert, empty_copy_of_events
from .http_client import Connection, build_request
from .stores import postgres_database, postgres_unavailable, sqlite_database

ROOT = Path(__file__).resolve().parent.parent
RATECARD = str(Path(sys.executable).with_name("ratecard"))
WORKERS = int(os.environ.get("BENCH_API_WORKERS", "2"))  # `ratecard serve --workers` of the measured rows
BATCH_SIZE = 1_000
BATCH_CLIENTS = 4
SINGLE_CLIENTS = 4
THROUGHPUT_TARGET = 0.7  # the issue: POST /v1/events batches at 0.7 of bare
SINGLE_TARGET = 1.0  # group commit: single events at least as fast as a bare INSERT + COMMIT per row
P50_BUDGET_MS = 3.0  # the single-event latency budgets (PostgreSQL)
P99_BUDGET_MS = 15.0
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 120.0
_FORK = multiprocessing.get_context("fork")


def _log(message: str) -> None:
    from .run import log

    log(message)


def single_requests(events: int) -> int:
    """max(1,000, N/500) single-event requests; BENCH_SINGLE_REQUESTS sets the number (a longer
    run averages out a machine shared with other work)."""
    chosen = os.environ.get("BENCH_SINGLE_REQUESTS", "").strip()
    return int(chosen) if chosen else max(1_000, events // 500)


# ----------------------------------------------------------------------------- the server


class Server:
    """`ratecard serve --workers 2` in a session of its own; stopped with its workers."""

    def __init__(self, url: str, log_path: Path, workers: int = WORKERS, env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        """`command`: what serves instead of `ratecard serve` (given --host and --port after it)."""
        self.command = command
        self.url = url
        self.log_path = log_path
        self.workers = workers
        self.extra_env = env or {}
        self.port = 0
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {**os.environ, "RATECARD_NOW": data.NOW.isoformat()}
        env.pop("RATECARD_DATABASE_URL", None)  # `ratecard serve --db` sets it for its workers
        env.update(self.extra_env)
        with self.log_path.open("wb") as log:
            command = self.command or [RATECARD, "serve", "--db", self.url, "--workers", str(self.workers)]
            self.process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                status, _ = request(self.port, "GET", "/healthz", b"", {})
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise SystemExit(f"ratecard serve did not become healthy on {self.url}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            stop_group(self.process, 20)


def stop_group(process: subprocess.Popen, patience: float) -> None:
    """Stop a server started in its own process group (workers included): SIGTERM, `patience`
    seconds to finish, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, patience), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def request(port: int, method: str, path: str, body: bytes, headers: dict[str, str],
            connection: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        if own:
            connection.close()


# ----------------------------------------------------------------------------- load generators


def _run_clients(target: Callable[..., None], shares: list[Any], args: tuple) -> tuple[float, list[dict]]:
    """Start one process per share; they prepare, meet at a barrier, run, and report.
    Returns (seconds from the barrier to the last client's end, each client's report)."""
    barrier = _FORK.Barrier(len(shares) + 1)
    results = _FORK.Queue()
    processes = [_FORK.Process(target=target, args=(index, share, barrier, results, *args), daemon=True)
                 for index, share in enumerate(shares)]
    for process in processes:
        process.start()
    barrier.wait(timeout=600)
    started = time.perf_counter()
    reports = [results.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    failed = [r for r in reports if r.get("fatal")]
    if failed:
        raise SystemExit(f"a benchmark client failed: {failed[0]['fatal']}")
    return max(r["end"] for r in reports) - started, reports


def _batch_client(index: int, batches: list[int], barrier, results, port: int, key: str, events_file: str) -> None:
    try:
        wanted = set(batches)
        bodies = []
        with open(events_file, "rb") as handle:
            chunk: list[bytes] = []
            number = 0
            for line in handle:
                chunk.append(line.rstrip(b"\n"))
                if len(chunk) == BATCH_SIZE:
                    if number in wanted:
                        bodies.append(b"[" + b",".join(chunk) + b"]")
                    chunk, number = [], number + 1
            if chunk and number in wanted:
                bodies.append(b"[" + b",".join(chunk) + b"]")
        headers = {"X-API-KEY": key, "Content-Type": "application/json"}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        barrier.wait(timeout=600)
        stored = received = 0
        errors: list[str] = []
        for body in bodies:
            status, answer = request(port, "POST", "/v1/events", body, headers, connection)
            if status != 200:
                errors.append(f"{status} {answer[:200]!r}")
                continue
            summary = orjson.loads(answer)
            stored += summary["stored"]
            received += summary["received"]
        end = time.perf_counter()
        connection.close()
        results.put({"end": end, "stored": stored, "received": received, "requests": len(bodies), "errors": errors})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        results.put({"fatal": f"{type(exc).__name__}: {exc}", "end": time.perf_counter()})


def single_event(index: int, client: int, customers: int, solvimon: bool,
                 prefix: str = "single") -> tuple[dict, tuple]:
    """One API-call event (and the row the store keeps for it), distinct from the batch events."""
    event_id = f"{prefix}-{client:02d}-{index:08d}"
    customer = data.customer_ref((client * 7919 + index) % customers)
    ms = data.to_micros(data.PERIOD_START) // 1000 + (index * 1_000 + client) % (30 * 86_400_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
    properties = {"endpoint": data.ENDPOINTS[index % 3]}
    row = (data.ENVIRONMENT, event_id, customer, data.COUNT_METER, ms * 1000, orjson.dumps(properties).decode(),
           data.to_micros(data.NOW), "matched", False)
    if solvimon:
        return {"reference": event_id, "customer_reference": customer, "meter_reference": data.COUNT_METER,
                "timestamp": stamp, "meter_values": [],
                "meter_properties": [{"reference": "endpoint", "value": properties["endpoint"]}]}, row
    return {"id": event_id, "customer": customer, "meter": data.COUNT_METER, "timestamp": stamp,
            "properties": properties}, row


def _single_client(index: int, count: int, barrier, results, port: int, key: str, customers: int,
                   path: str, prefix: str = "single") -> None:
    """Single-event requests, each built as bytes before the clock starts and sent on one keep-alive
    connection with the lean client (bench/http_client.py): the client's own CPU, taken from the
    2 cores the server and the database share, stays a few µs per request."""
    try:
        solvimon = path != "/v1/events"
        headers = {"X-API-KEY": key, "Content-Type": "application/json"}
        requests = []
        for number in range(count):
            event, _ = single_event(number, index, customers, solvimon, prefix)
            requests.append(build_request("POST", path, headers, orjson.dumps(event if solvimon else [event])))
        connection = Connection(port, timeout=REQUEST_TIMEOUT)
        clock = time.perf_counter
        latencies = []
        errors: list[str] = []
        barrier.wait(timeout=600)
        for prepared in requests:
            started = clock()
            status, answer = connection.exchange(prepared)
            latencies.append(clock() - started)
            if status not in (200, 201):
                errors.append(f"{status} {answer[:200]!r}")
        end = clock()
        connection.close()
        results.put({"end": end, "latencies": latencies, "errors": errors})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        results.put({"fatal": f"{type(exc).__name__}: {exc}", "end": time.perf_counter()})


def _bare_single_client(index: int, count: int, barrier, results, url: str, customers: int) -> None:
    """The bare way to write one event per request: INSERT one row, COMMIT, on a connection of
    its own (the raw driver, no SQLAlchemy on the hot path)."""
    try:
        rows = [single_event(number, index, customers, False)[1] for number in range(count)]
        store = open_store(url, migrate=False)
        raw = store.engine.raw_connection()
        driver = raw.driver_connection
        marks = ", ".join(("%s" if store.is_postgres else "?") for _ in COLUMNS)
        statement = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({marks})"
        durability = _durability(driver, store.is_postgres)
        clock = time.perf_counter
        latencies = []
        barrier.wait(timeout=600)
        for row in rows:
            started = clock()
            driver.execute(statement, row)
            driver.commit()
            latencies.append(clock() - started)
        end = clock()
        raw.close()
        store.dispose()
        results.put({"end": end, "latencies": latencies, "errors": [], "durability": durability})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        results.put({"fatal": f"{type(exc).__name__}: {exc}", "end": time.perf_counter()})


def _durability(driver: Any, postgres: bool) -> str:
    """The commit durability of a connection: the baseline opens its connections through
    ratecard's store (open_store), so it commits as durably as the server does."""
    if postgres:
        return f"synchronous_commit={driver.execute('SHOW synchronous_commit').fetchone()[0]}"
    level = driver.execute("PRAGMA synchronous").fetchone()[0]
    return f"synchronous={ {0: 'OFF', 1: 'NORMAL', 2: 'FULL', 3: 'EXTRA'}.get(level, level) }"


def server_durability(url: str) -> str:
    """The durability of the server's connections (the same store settings)."""
    store = open_store(url, migrate=False)
    raw = store.engine.raw_connection()
    try:
        return _durability(raw.driver_connection, store.is_postgres)
    finally:
        raw.close()
        store.dispose()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def split(count: int, parts: int) -> list[int]:
    return [count // parts + (1 if i < count % parts else 0) for i in range(parts)]


# ----------------------------------------------------------------------------- one store


def stored_count(url: str, prefix: str | None = None) -> int:
    store = open_store(url, migrate=False)
    try:
        with store.engine.connect() as connection:
            if prefix is None:
                return connection.execute(text("SELECT count(*) FROM events")).scalar_one()
            return connection.execute(text("SELECT count(*) FROM events WHERE id LIKE :p"),
                                      {"p": f"{prefix}%"}).scalar_one()
    finally:
        store.dispose()


def single_endpoint(port: int, key: str, customers: int) -> str:
    """Solvimon's single-event endpoint when this server has it and it takes the probe event."""
    status, answer = request(port, "GET", "/openapi.json", b"", {})
    paths = json.loads(answer).get("paths", {}) if status == 200 else {}
    if "post" not in paths.get("/v1/ingest/meter-data", {}):
        return "/v1/events"
    probe, _ = single_event(0, 99, customers, True)
    probe["reference"] = "single-probe-0000000001"
    status, _ = request(port, "POST", "/v1/ingest/meter-data", orjson.dumps(probe),
                        {"X-API-KEY": key, "Content-Type": "application/json"})
    return "/v1/ingest/meter-data" if status in (200, 201) else "/v1/events"


def _same_load(url: str, folder: Path, kind: str, key: str, customers: Any, endpoint: str, requests: int,
               log_name: str, prefix: str, what: str, workers: int = WORKERS,
               env: dict[str, str] | None = None) -> dict[str, float]:
    """The single-event load replayed on a server of its own (`workers`, `env`): requests/s, p50, p99."""
    with Server(url, folder / f"{log_name}-{kind}.log", workers=workers, env=env or {}) as server:
        request(server.port, "GET", "/healthz", b"", {})
        seconds, reports = _run_clients(
            _single_client, split(requests, SINGLE_CLIENTS), (server.port, key, customers, endpoint, prefix))
    if any(r["errors"] for r in reports):
        raise SystemExit(f"{kind}: single-event requests {what} failed")
    latencies = [value for r in reports for value in r["latencies"]]
    return {"requests_per_second": round(requests / seconds, 1),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 3),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 3)}


def bench_api_store(kind: str, url: str, events: int, events_file: Path, catalog_file: Path,
                    folder: Path) -> list[dict]:
    from .run import apply_catalog, settle

    customers = data.customer_count(events)
    _log(f"[bold]{kind}[/bold] API: applying the catalog ({customers:,} customers) to a fresh database")
    apply_catalog(url, catalog_file)
    store = open_store(url, migrate=False)
    _, key = create_key(store, "live", data.to_micros(data.NOW), "bench")
    store.dispose()
    settle(url)

    with Server(url, folder / f"serve-{kind}.log") as server:
        # warm every worker (the catalog cache is per process) on a few new connections
        endpoint = single_endpoint(server.port, key, customers)
        for number in range(16):
            warm, _ = single_event(number, 98, customers, False)
            warm["id"] = f"warmup-{number:04d}"
            request(server.port, "POST", "/v1/events", orjson.dumps([warm]),
                    {"X-API-KEY": key, "Content-Type": "application/json"})

        batches = -(-events // BATCH_SIZE)
        _log(f"{kind} API: POST /v1/events, {batches:,} batches of {BATCH_SIZE:,} from {BATCH_CLIENTS} clients, "
             f"{WORKERS} server workers")
        shares = [[b for b in range(batches) if b % BATCH_CLIENTS == c] for c in range(BATCH_CLIENTS)]
        seconds, reports = _run_clients(_batch_client, shares, (server.port, key, str(events_file)))
        errors = [e for r in reports for e in r["errors"]]
        stored = sum(r["stored"] for r in reports)
        if errors or stored != events:
            raise SystemExit(f"{kind}: the API stored {stored} of {events} events; errors: {errors[:3]}\n{server.log()}")
        _log(f"{kind} API: {events:,} events in {seconds:.2f}s ({events / seconds:,.0f} events/s)")

        requests = single_requests(events)
        _log(f"{kind} API: {requests:,} single-event requests to {endpoint} from {SINGLE_CLIENTS} clients")
        settle(url)
        single_seconds, single_reports = _run_clients(
            _single_client, split(requests, SINGLE_CLIENTS), (server.port, key, customers, endpoint))
        errors = [e for r in single_reports for e in r["errors"]]
        if errors:
            raise SystemExit(f"{kind}: single-event requests failed: {errors[:3]}\n{server.log()}")
        latencies = [value for r in single_reports for value in r["latencies"]]
        _log(f"{kind} API: {requests / single_seconds:,.0f} requests/s, p50 {percentile(latencies, .5) * 1000:.2f} ms, "
             f"p99 {percentile(latencies, .99) * 1000:.2f} ms")
    if stored_count(url, "single-") < requests:
        raise SystemExit(f"{kind}: fewer than {requests} single events are stored")

    # diagnoses, not benchmark rows: the same single-event load again, changed in one way each.
    # One worker: uvicorn serves it from a listener it builds itself (see RESULTS.md: --workers N
    # and Nagle); group commit off: each request its own transaction; lane off: the full stack
    # (no single-event lane, api/lane.py)
    same_load = (url, folder, kind, key, customers, endpoint, requests)
    workers_1 = _same_load(*same_load, "serve1", "single1", "to one worker", workers=1)
    _log(f"{kind} API, --workers 1 (diagnosis): {workers_1}")
    group_commit_off = _same_load(*same_load, "serve-alone", "single0", "without group commit",
                                  env={"RATECARD_GROUP_COMMIT_MAX_EVENTS": "0"})
    _log(f"{kind} API, group commit off (diagnosis): {group_commit_off}")
    lane_off = _same_load(*same_load, "serve-nolane", "singlefull", "without the lane",
                          env={"RATECARD_SINGLE_EVENT_LANE": "0"})
    _log(f"{kind} API, single-event lane off (diagnosis): {lane_off}")

    _log(f"{kind}: bare {'COPY' if kind == 'postgresql' else 'executemany INSERT'} of the same {events:,} rows")
    settle(url)
    bare = bare_insert(url, data.event_rows(events, data.to_micros(data.NOW)))
    _log(f"{kind}: bare insert took {bare['seconds']:.2f}s ({events / bare['seconds']:,.0f} events/s)")

    _log(f"{kind}: bare INSERT + COMMIT per row, {requests:,} rows from {SINGLE_CLIENTS} processes")
    settle(url)
    empty_copy_of_events(url)
    bare_single_seconds, bare_reports = _run_clients(_bare_single_client, split(requests, SINGLE_CLIENTS),
                                                     (url, customers))
    bare_latencies = [value for r in bare_reports for value in r["latencies"]]
    durability = {r["durability"] for r in bare_reports}
    served = server_durability(url)
    if durability != {served}:
        raise SystemExit(f"{kind}: the bare baseline committed with {durability}, the server with {served}")
    store = open_store(url, migrate=False)
    with store.engine.begin() as connection:
        copied = connection.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar_one()
        connection.execute(text(f"DROP TABLE {TABLE}"))
    store.dispose()
    if copied != requests:
        raise SystemExit(f"{kind}: the bare single-row baseline stored {copied} of {requests} rows")
    _log(f"{kind}: bare single rows: {requests / bare_single_seconds:,.0f} rows/s, "
         f"p50 {percentile(bare_latencies, .5) * 1000:.2f} ms, p99 {percentile(bare_latencies, .99) * 1000:.2f} ms")

    rate, bare_rate = events / seconds, events / bare["seconds"]
    single_rate, bare_single_rate = requests / single_seconds, requests / bare_single_seconds
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    bare_p50, bare_p99 = percentile(bare_latencies, 0.5) * 1000, percentile(bare_latencies, 0.99) * 1000
    setup = {"server": f"ratecard serve --workers {WORKERS}, loopback", "clients": SINGLE_CLIENTS,
             "client": "http.client, one keep-alive connection per client process", "endpoint": endpoint,
             "requests": requests, "same_load_on_workers_1": workers_1,
             "same_load_group_commit_off": group_commit_off, "same_load_lane_off": lane_off}
    return [
        {
            "name": f"api_batch.{kind}", "value": round(rate, 1), "unit": "events/s",
            "baseline": round(bare_rate, 1), "ratio": round(rate / bare_rate, 3), "target": THROUGHPUT_TARGET,
            "detail": {"events": events, "batch_size": BATCH_SIZE, "batches": batches, "clients": BATCH_CLIENTS,
                       "server": f"ratecard serve --workers {WORKERS}, loopback", "seconds": round(seconds, 3),
                       "baseline_seconds": round(bare["seconds"], 3),
                       "baseline": "bare executemany INSERT, one transaction" if kind == "sqlite"
                       else "bare COPY, one transaction",
                       "for_scale": "Lago documents 10,000 events/s (PostgreSQL only), Orb 1,000 events/s"},
        },
        {
            "name": f"api_single.{kind}", "value": round(single_rate, 1), "unit": "requests/s",
            "baseline": round(bare_single_rate, 1), "ratio": round(single_rate / bare_single_rate, 3),
            "target": SINGLE_TARGET,
            "detail": {**setup, "seconds": round(single_seconds, 3), "baseline_seconds": round(bare_single_seconds, 3),
                       "baseline": f"bare INSERT + COMMIT per row from {SINGLE_CLIENTS} processes (raw driver), "
                                   f"committing as durably as the server ({served})",
                       "durability": served,
                       "target_note": "group commit: at least a bare INSERT + COMMIT per row (ratio 1.0)"},
        },
        {
            "name": f"api_single_p50.{kind}", "value": round(p50, 3), "unit": "ms",
            "baseline": P50_BUDGET_MS, "ratio": round(P50_BUDGET_MS / p50, 3), "target": 1.0,
            "detail": {**setup, "bare_insert_commit_p50_ms": round(bare_p50, 3),
                       "meaning": f"median request latency against the issue's {P50_BUDGET_MS:g} ms budget "
                                  "(set for PostgreSQL; applied to SQLite too); ratio = budget / value"},
        },
        {
            "name": f"api_single_p99.{kind}", "value": round(p99, 3), "unit": "ms",
            "baseline": P99_BUDGET_MS, "ratio": round(P99_BUDGET_MS / p99, 3), "target": 1.0,
            "detail": {**setup, "bare_insert_commit_p99_ms": round(bare_p99, 3),
                       "meaning": f"99th percentile request latency against the issue's {P99_BUDGET_MS:g} ms "
                                  "budget; ratio = budget / value"},
        },
    ]


def run_api_benchmarks(stores: list[str], events: int, events_file: Path, catalog_file: Path,
                       folder: Path) -> list[dict]:
    results: list[dict] = []
    for kind in stores:
        database = sqlite_database(folder / "api") if kind == "sqlite" else postgres_database()
        (folder / "api").mkdir(exist_ok=True)
        with database as url:
            results += bench_api_store(kind, url, events, events_file, catalog_file, folder)
    return results


def main(argv: list[str] | None = None) -> int:
    from .run import events_from_env, print_table

    parser = argparse.ArgumentParser(prog="python -m bench.api_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, help="events (default: BENCH_EVENTS or 1,000,000)")
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--out", type=Path, help="also write the results (JSON) to this file")
    args = parser.parse_args(argv)
    events = args.events or events_from_env()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if "postgresql" in stores and (reason := postgres_unavailable()) is not None:
        raise SystemExit(f"PostgreSQL is unreachable ({reason}); run with --stores sqlite to skip it")
    folder = Path(tempfile.mkdtemp(prefix="ratecard-api-bench-"))
    try:
        data.write_catalog(folder / "catalog.json", events)
        data.write_events(folder / "events.jsonl", events)
        results = run_api_benchmarks(stores, events, folder / "events.jsonl", folder / "catalog.json", folder)
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    print_table(results, events)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
