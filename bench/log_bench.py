"""Event-log benchmark: ingestion through NATS JetStream against the embedded path, in the same run.

    .venv/bin/python -m bench.log_bench --events 100000 --stores sqlite,postgresql

Per store, two fresh databases holding the benchmark catalog (bench/data.py) and one live key:

1. embedded   2 `ratecard serve` processes (one worker each), the N events sent as JSON arrays of
              1,000 by 4 client processes (alternating servers); events/s = N / (seconds until
              the last answer), every event stored inside its request.
2. log        2 `ratecard serve --log nats://…` processes and 2 `ratecard worker` processes
              (pull batches of 1,000); the same clients and batches; end-to-end events/s =
              N / (seconds until the last event is in the events table). Also reported: events/s
              answered (persisted by JetStream), and the event-to-billable latency p50/p99 each
              worker measured (server acceptance -> worker commit; the worse worker's is shown),
              under that load (mostly the backlog's queueing) and at a light load: 500 single-event
              requests at 100/s to two fresh workers.
   ratio = log end-to-end events/s / embedded events/s. Target: none set; above 1.0 the log adds
   throughput, below it the log costs throughput on this 2-core machine (where the servers, the
   workers, NATS, the database and the clients share the same two cores).

Every process runs on this machine; the stream (LOGBENCH_<random>) is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from ratecard.store import open_store
from ratecard.store.keys import create_key

from . import data
from .api_bench import stop_group
from .stores import postgres_database, postgres_unavailable, sqlite_database

ROOT = Path(__file__).resolve().parent.parent
RATECARD = str(Path(sys.executable).with_name("ratecard"))
NATS_URL = os.environ.get("RATECARD_BENCH_NATS_URL", "nats://127.0.0.1:4222")
BATCH_SIZE = 1_000
CLIENTS = 4
SERVERS = 2
WORKERS = 2
LIGHT_RATE = 100  # single-event requests per second for the latency without a backlog
LIGHT_EVENTS = 500
_FORK = multiprocessing.get_context("fork")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _env() -> dict[str, str]:
    env = {**os.environ, "RATECARD_NOW": data.NOW.isoformat()}
    env.pop("RATECARD_DATABASE_URL", None)
    return env


class Process:
    """A `ratecard` process in a session of its own, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> Process:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([RATECARD, *self.args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                            env=_env(), start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, 30)


def start_server(url: str, folder: Path, label: str, extra: list[str]) -> tuple[Process, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Process(["serve", "--db", url, "--host", "127.0.0.1", "--port", str(port), *extra],
                     folder / f"{label}.log").start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            break
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return server, port
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise SystemExit(f"ratecard serve did not become healthy:\n{server.log()}")


def _client(index: int, bodies: list[tuple[int, bytes]], barrier: Any, results: Any, key: str) -> None:
    try:
        headers = {"X-API-KEY": key, "Content-Type": "application/json"}
        connections: dict[int, http.client.HTTPConnection] = {}
        barrier.wait(timeout=600)
        errors: list[str] = []
        accepted = 0
        for port, body in bodies:
            connection = connections.setdefault(port, http.client.HTTPConnection("127.0.0.1", port, timeout=300))
            connection.request("POST", "/v1/events", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status not in (200, 202):
                errors.append(f"{response.status} {answer[:200]!r}")
                continue
            summary = orjson.loads(answer)
            accepted += summary.get("stored", 0) + summary.get("queued", 0)
        results.put({"end": time.perf_counter(), "accepted": accepted, "errors": errors})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        results.put({"fatal": f"{type(exc).__name__}: {exc}", "end": time.perf_counter()})


def send_all(events_file: Path, ports: list[int], key: str) -> tuple[float, float, int]:
    """Send every batch; returns (perf_counter at the start, at the last answer, events accepted)."""
    with events_file.open("rb") as handle:
        lines = [line.rstrip(b"\n") for line in handle]
    batches = [b"[" + b",".join(lines[i:i + BATCH_SIZE]) + b"]" for i in range(0, len(lines), BATCH_SIZE)]
    shares: list[list[tuple[int, bytes]]] = [[] for _ in range(CLIENTS)]
    for number, body in enumerate(batches):
        shares[number % CLIENTS].append((ports[number % len(ports)], body))
    barrier = _FORK.Barrier(CLIENTS + 1)
    results = _FORK.Queue()
    processes = [_FORK.Process(target=_client, args=(i, share, barrier, results, key), daemon=True)
                 for i, share in enumerate(shares)]
    for process in processes:
        process.start()
    barrier.wait(timeout=600)
    started = time.perf_counter()
    reports = [results.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    failed = [r["fatal"] for r in reports if r.get("fatal")] + [e for r in reports for e in r.get("errors", [])]
    if failed:
        raise SystemExit(f"a benchmark client failed: {failed[:3]}")
    return started, max(r["end"] for r in reports), sum(r["accepted"] for r in reports)


def stored_count(url: str) -> int:
    store = open_store(url, migrate=False)
    try:
        with store.engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM events WHERE id LIKE 'evt-%'")).scalar_one()
    finally:
        store.dispose()


def warmed(url: str, pattern: str = "warmup-%") -> int:
    store = open_store(url, migrate=False)
    try:
        with store.engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM events WHERE id LIKE :p"), {"p": pattern}).scalar_one()
    finally:
        store.dispose()


def prepare(url: str, catalog_file: Path) -> str:
    from .run import apply_catalog

    apply_catalog(url, catalog_file)
    store = open_store(url, migrate=False)
    _, key = create_key(store, "live", data.to_micros(data.NOW), "bench")
    store.dispose()
    return key


def warm(ports: list[int], key: str, customers: int) -> None:
    """A few one-event batches per server: the catalog cache is built before the clock starts."""
    for number in range(8):
        event = {"id": f"warmup-{number:04d}", "customer": data.customer_ref(number % customers),
                 "meter": data.COUNT_METER, "timestamp": "2026-11-02T00:00:00Z", "properties": {}}
        for port in ports:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("POST", "/v1/events", body=orjson.dumps([{**event, "id": f"{event['id']}-{port}"}]),
                               headers={"X-API-KEY": key, "Content-Type": "application/json"})
            connection.getresponse().read()


def bench_embedded(kind: str, url: str, events: int, events_file: Path, catalog_file: Path, folder: Path) -> dict:
    key = prepare(url, catalog_file)
    servers = [start_server(url, folder, f"embedded-{kind}-{i}", ["--workers", "1"]) for i in range(SERVERS)]
    try:
        ports = [port for _, port in servers]
        warm(ports, key, data.customer_count(events))
        started, answered, accepted = send_all(events_file, ports, key)
    finally:
        for server, _ in servers:
            server.stop()
    stored = stored_count(url)
    if stored != events or accepted != events:
        raise SystemExit(f"{kind} embedded: {stored} stored, {accepted} accepted of {events}")
    seconds = answered - started
    _log(f"{kind} embedded: {events:,} events in {seconds:.2f}s ({events / seconds:,.0f}/s)")
    return {"seconds": seconds, "events_per_s": events / seconds}


def bench_log(kind: str, url: str, events: int, events_file: Path, catalog_file: Path, folder: Path,
              stream: str) -> dict:
    key = prepare(url, catalog_file)
    log_args = ["--log", NATS_URL, "--log-stream", stream]
    servers = [start_server(url, folder, f"log-{kind}-{i}", ["--workers", "1", *log_args]) for i in range(SERVERS)]
    workers = [Process(["worker", "--db", url, *log_args, "--batch", str(BATCH_SIZE), "--wait", "0.02",
                        "--stats", str(folder / f"worker-{kind}-{i}.json")], folder / f"worker-{kind}-{i}.log").start()
               for i in range(WORKERS)]
    try:
        ports = [port for _, port in servers]
        warm(ports, key, data.customer_count(events))
        deadline = time.monotonic() + 120
        while warmed(url) < 8 * SERVERS or not all("worker: stream" in w.log() for w in workers):
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not start:\n" + "\n".join(w.log() for w in workers))
            time.sleep(0.1)  # both workers are up and the warm-up events went through
        started, answered, accepted = send_all(events_file, ports, key)
        deadline = time.monotonic() + 1800
        while (stored := stored_count(url)) < events:
            if time.monotonic() > deadline:
                raise SystemExit(f"{kind} log: {stored} of {events} stored after 30 minutes")
            time.sleep(0.05)
        billable = time.perf_counter()
        for worker in workers:
            worker.stop()
        figures = [json.loads((folder / f"worker-{kind}-{i}.json").read_text()) for i in range(WORKERS)]
        light = light_latency(kind, url, folder, log_args, ports, key, data.customer_count(events))
    finally:
        for server, _ in servers:
            server.stop()
        for worker in workers:
            worker.stop()
    if accepted != events:
        raise SystemExit(f"{kind} log: {accepted} accepted of {events}")
    seconds, answer_seconds = billable - started, answered - started
    p50 = max(f["latency_ms"]["p50"] or 0 for f in figures)
    p99 = max(f["latency_ms"]["p99"] or 0 for f in figures)
    _log(f"{kind} log: answered in {answer_seconds:.2f}s, all stored in {seconds:.2f}s ({events / seconds:,.0f}/s); "
         f"event-to-billable p50 {p50:.0f} ms, p99 {p99:.0f} ms; workers stored "
         f"{[f['stored'] for f in figures]} in {[f['batches'] for f in figures]} batches")
    _log(f"{kind} log, light load ({LIGHT_RATE}/s single events): event-to-billable p50 {light['p50']:.0f} ms, "
         f"p99 {light['p99']:.0f} ms")
    return {"seconds": seconds, "events_per_s": events / seconds, "answered_per_s": events / answer_seconds,
            "latency_p50_ms": p50, "latency_p99_ms": p99, "light_p50_ms": light["p50"], "light_p99_ms": light["p99"]}


def light_latency(kind: str, url: str, folder: Path, log_args: list[str], ports: list[int], key: str,
                  customers: int) -> dict[str, float]:
    """Event-to-billable latency without a backlog: fresh workers, single-event requests at LIGHT_RATE/s."""
    workers = [Process(["worker", "--db", url, *log_args, "--batch", str(BATCH_SIZE), "--wait", "0.02",
                        "--stats", str(folder / f"light-{kind}-{i}.json")], folder / f"light-{kind}-{i}.log").start()
               for i in range(WORKERS)]
    try:
        deadline = time.monotonic() + 120
        while not all("worker: stream" in w.log() for w in workers):
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not start:\n" + "\n".join(w.log() for w in workers))
            time.sleep(0.1)
        time.sleep(1.0)  # the pull requests are in place
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for port in ports]
        headers = {"X-API-KEY": key, "Content-Type": "application/json"}
        start = time.perf_counter()
        for number in range(LIGHT_EVENTS):
            time.sleep(max(0.0, start + number / LIGHT_RATE - time.perf_counter()))
            event = {"id": f"light-{number:06d}", "customer": data.customer_ref(number % customers),
                     "meter": data.COUNT_METER, "timestamp": "2026-11-03T00:00:00Z", "properties": {}}
            connection = connections[number % len(connections)]
            connection.request("POST", "/v1/events", body=orjson.dumps([event]), headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                raise SystemExit(f"light load: {response.status}")
        deadline = time.monotonic() + 120
        while warmed(url, "light-%") < LIGHT_EVENTS:
            if time.monotonic() > deadline:
                raise SystemExit("light load: the events were not stored")
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.stop()
    figures = [json.loads((folder / f"light-{kind}-{i}.json").read_text()) for i in range(WORKERS)]
    return {"p50": max(f["latency_ms"]["p50"] or 0 for f in figures),
            "p99": max(f["latency_ms"]["p99"] or 0 for f in figures)}


async def _delete_stream(stream: str) -> None:
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=3)
    try:
        await nc.jetstream().delete_stream(stream)
    except Exception:  # noqa: BLE001 - never created
        pass
    finally:
        await nc.close()


def run(stores: list[str], events: int, folder: Path) -> list[dict]:
    data.write_catalog(folder / "catalog.json", events)
    data.write_events(folder / "events.jsonl", events)
    results = []
    for kind in stores:
        row: dict[str, Any] = {"store": kind, "events": events}
        for mode in ("embedded", "log"):
            database = sqlite_database(folder / mode) if kind == "sqlite" else postgres_database()
            (folder / mode).mkdir(exist_ok=True)
            stream = f"LOGBENCH_{uuid.uuid4().hex[:10]}"
            try:
                with database as url:
                    if mode == "embedded":
                        row["embedded"] = bench_embedded(kind, url, events, folder / "events.jsonl",
                                                         folder / "catalog.json", folder)
                    else:
                        row["log"] = bench_log(kind, url, events, folder / "events.jsonl", folder / "catalog.json",
                                               folder, stream)
            finally:
                if mode == "log":
                    asyncio.run(_delete_stream(stream))
        row["ratio"] = row["log"]["events_per_s"] / row["embedded"]["events_per_s"]
        results.append(row)
    return results


def print_results(results: list[dict]) -> None:
    print("| store | events | embedded events/s | JetStream end-to-end events/s (answered/s) | ratio | "
          "event-to-billable p50 / p99, under the load | same, light load |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in results:
        log = row["log"]
        print(f"| {row['store']} | {row['events']:,} | {row['embedded']['events_per_s']:,.0f} | "
              f"{log['events_per_s']:,.0f} ({log['answered_per_s']:,.0f}) | {row['ratio']:.2f} | "
              f"{log['latency_p50_ms']:,.0f} / {log['latency_p99_ms']:,.0f} ms | "
              f"{log['light_p50_ms']:,.0f} / {log['light_p99_ms']:,.0f} ms |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.log_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--out", type=Path, help="also write the results (JSON) to this file")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if "postgresql" in stores and (reason := postgres_unavailable()) is not None:
        raise SystemExit(f"PostgreSQL is unreachable ({reason}); run with --stores sqlite to skip it")
    folder = Path(tempfile.mkdtemp(prefix="ratecard-log-bench-"))
    try:
        results = run(stores, args.events, folder)
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    print_results(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
