"""GET /v1/customers/{ref}/entitlements over HTTP, under load, against the machine's own floor.

    .venv/bin/python -m bench.entitlements_bench                       # both stores, prints the table
    .venv/bin/python -m bench.run --suites entitlements                # the same rows in bench/results.json

Per store (SQLite, PostgreSQL), in a fresh database: `ratecard serve --workers 1` with the catalog
of bench/entitlements.py (a usage-limited number feature on a `count` meter, a switch, an enum;
BENCH_ENT_CUSTOMERS customers, 500 by default, 20 events each), and next to it **the floor**: a
trivial ASGI app (`floor_app` below: reads the request, answers `{}` as JSON) served by the same
uvicorn with the same settings (`--workers 1`, h11, asyncio, no access log). 4 client processes
(bench/http_client.py, one keep-alive connection per server) each send BENCH_ENT_READS / 4
entitlements reads for random customers, each read followed (or preceded, alternately) by one
floor request, so both see the same load at the same moments. One client in four also sends one
single-event `POST /v1/events` for the customer it reads next, every 25 of its reads (one ingest
per 100 reads overall), so the cache is kept fresh by the ingest path during the run; those
POSTs are not timed. Every customer is read once before the clock starts (an entry is computed
on first use).

Rows (bench/results.json):
  entitlements_p99.<store>   p99 ms of the entitlements reads; baseline = the 5 ms budget,
                             ratio = 5 / p99 (>= 1 meets the target)
  entitlements_floor.<store> p99 ms of the same reads against the floor's p99 measured in the
                             same run; ratio = floor p99 / value p99 (1.0 = as cheap as a request
                             that does nothing; no target is set: it says how much of the p99 is the
                             machine's, not ratecard's)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from ratecard.store import open_store
from ratecard.store.keys import create_key

from .api_bench import ROOT, Server, _run_clients, percentile, request
from .entitlements import _catalog
from .http_client import Connection, build_request
from .stores import postgres_database, postgres_unavailable, sqlite_database

CUSTOMERS = int(os.environ.get("BENCH_ENT_CUSTOMERS", "500"))
READS = int(os.environ.get("BENCH_ENT_READS", "8000"))
CLIENTS = 4
INGEST_EVERY = 25  # per ingesting client: one POST per 100 reads over the 4 clients
BUDGET_MS = 5.0
NOW = "2026-01-25T12:00:00Z"
START_TIMEOUT = 60.0


async def floor_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor: what any request costs on this machine with this server and no application."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


class FloorServer:
    """`uvicorn bench.entitlements_bench:floor_app` with the settings `ratecard serve` uses."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> FloorServer:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "bench.entitlements_bench:floor_app", "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if request(self.port, "GET", "/", b"", {})[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise SystemExit(f"the floor server did not start:\n{self.log_path.read_text(errors='replace')[-2000:]}")

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _client(index: int, share: int, barrier: Any, results: Any, port: int, floor_port: int, key: str) -> None:
    try:
        rng = random.Random(1000 + index)
        headers = {"X-API-KEY": key}
        reads, ingests = [], {}
        for number in range(share):
            customer = f"c{rng.randrange(CUSTOMERS)}"
            reads.append(build_request("GET", f"/v1/customers/{customer}/entitlements", headers))
            if index == 0 and number % INGEST_EVERY == 0:
                event = [{"id": f"ent-{index}-{number:07d}", "customer": customer, "meter": "calls",
                          "timestamp": "2026-01-24T10:00:00Z", "properties": {}}]
                ingests[number] = build_request("POST", "/v1/events", {**headers, "Content-Type": "application/json"},
                                                json.dumps(event).encode())
        floor = build_request("GET", "/", {})
        app, base = Connection(port), Connection(floor_port)
        clock = time.perf_counter
        value, baseline, errors = [], [], []
        barrier.wait(timeout=600)
        for number, read in enumerate(reads):
            if number in ingests:
                status, answer = app.exchange(ingests[number])
                if status != 200:
                    errors.append(f"ingest {status} {answer[:200]!r}")
            if number % 2:
                started = clock()
                base.exchange(floor)
                baseline.append(clock() - started)
            started = clock()
            status, answer = app.exchange(read)
            value.append(clock() - started)
            if status != 200:
                errors.append(f"{status} {answer[:200]!r}")
            if not number % 2:
                started = clock()
                base.exchange(floor)
                baseline.append(clock() - started)
        end = clock()
        app.close()
        base.close()
        results.put({"end": end, "value": value, "baseline": baseline, "errors": errors})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        results.put({"fatal": f"{type(exc).__name__}: {exc}", "end": time.perf_counter()})


def bench_store(kind: str, url: str, folder: Path) -> list[dict]:
    from .run import log

    store = open_store(url)
    _, key = create_key(store, "live", 0, "bench")
    store.dispose()
    headers = {"X-API-KEY": key}
    with Server(url, folder / f"serve-ent-{kind}.log", workers=1, env={"RATECARD_NOW": NOW}) as server, \
            FloorServer(folder / f"floor-{kind}.log") as floor:
        status, answer = request(server.port, "POST", "/v1/catalog", yaml.safe_dump(_catalog()).encode(),
                                 {**headers, "Content-Type": "application/yaml"})
        if status != 201:
            raise SystemExit(f"{kind}: the catalog was refused: {status} {answer[:300]!r}")
        events = [{"id": f"e{c}-{n}", "customer": f"c{c}", "meter": "calls",
                   "timestamp": f"2026-01-{1 + n:02d}T10:00:00Z", "properties": {}}
                  for c in range(CUSTOMERS) for n in range(20)]
        for start in range(0, len(events), 5000):
            status, answer = request(server.port, "POST", "/v1/events", json.dumps(events[start:start + 5000]).encode(),
                                     {**headers, "Content-Type": "application/json"})
            if status != 200:
                raise SystemExit(f"{kind}: events were refused: {status} {answer[:300]!r}")
        warm = Connection(server.port)
        for c in range(CUSTOMERS):
            status, answer = warm.exchange(build_request("GET", f"/v1/customers/c{c}/entitlements", headers))
            if status != 200 or not json.loads(answer)["as_of"]:
                raise SystemExit(f"{kind}: entitlements of c{c}: {status} {answer[:300]!r}")
        warm.close()
        log(f"{kind} entitlements: {READS:,} reads from {CLIENTS} clients, each next to a floor request")
        seconds, reports = _run_clients(_client, [READS // CLIENTS] * CLIENTS, (server.port, floor.port, key))
    errors = [e for r in reports for e in r["errors"]]
    if errors:
        raise SystemExit(f"{kind}: entitlements requests failed: {errors[:3]}")
    value = [v * 1000 for r in reports for v in r["value"]]
    baseline = [v * 1000 for r in reports for v in r["baseline"]]
    p50, p99 = percentile(value, 0.5), percentile(value, 0.99)
    floor_p50, floor_p99 = percentile(baseline, 0.5), percentile(baseline, 0.99)
    log(f"{kind} entitlements: p50 {p50:.2f} ms, p99 {p99:.2f} ms; floor p50 {floor_p50:.2f} ms, "
        f"p99 {floor_p99:.2f} ms ({len(value) / seconds:,.0f} reads/s)")
    detail = {"server": "ratecard serve --workers 1, loopback", "floor": "trivial ASGI app, same uvicorn settings",
              "clients": CLIENTS, "reads": len(value), "customers": CUSTOMERS,
              "ingest": "one single-event POST /v1/events per 100 reads (not timed)",
              "p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "max_ms": round(max(value), 3),
              "floor_p50_ms": round(floor_p50, 3), "floor_p99_ms": round(floor_p99, 3),
              "reads_per_second": round(len(value) / seconds, 1)}
    return [
        {"name": f"entitlements_p99.{kind}", "value": round(p99, 3), "unit": "ms", "baseline": BUDGET_MS,
         "ratio": round(BUDGET_MS / p99, 3), "target": 1.0,
         "detail": {**detail, "meaning": "p99 of GET /v1/customers/{ref}/entitlements against the 5 ms budget"}},
        {"name": f"entitlements_floor.{kind}", "value": round(p99, 3), "unit": "ms", "baseline": round(floor_p99, 3),
         "ratio": round(floor_p99 / p99, 3), "target": None,
         "detail": {**detail, "meaning": "the same p99 against the floor's p99 in the same run (no target)"}},
    ]


def run_entitlements_benchmark(stores: list[str], folder: Path) -> list[dict]:
    results: list[dict] = []
    for kind in stores:
        database = sqlite_database(folder / "entitlements") if kind == "sqlite" else postgres_database()
        (folder / "entitlements").mkdir(exist_ok=True)
        with database as url:
            results += bench_store(kind, url, folder)
    return results


def main(argv: list[str] | None = None) -> int:
    from .run import print_table

    parser = argparse.ArgumentParser(prog="python -m bench.entitlements_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--out", type=Path, help="also write the results (JSON) to this file")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if "postgresql" in stores and (reason := postgres_unavailable()) is not None:
        raise SystemExit(f"PostgreSQL is unreachable ({reason}); run with --stores sqlite to skip it")
    folder = Path(tempfile.mkdtemp(prefix="ratecard-ent-bench-"))
    try:
        results = run_entitlements_benchmark(stores, folder)
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    print_table(results, READS)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
