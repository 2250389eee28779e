"""The CPU one entitlements recomputation costs (what each ingest, and each entry's age refresh,
has the server's background thread do), against the least any recomputation must do.

    .venv/bin/python -m bench.entitlements_refresh                   # both stores
    .venv/bin/python -m bench.entitlements_refresh --stores sqlite

Per store, in a fresh database: the catalog and events of bench/entitlements.py (BENCH_ENT_CUSTOMERS
customers, 500 by default, 20 events each), applied and ingested through the ASGI app. Then, in
rounds over every customer, the CPU time of this thread (time.thread_time: waiting for the database
is not counted, so the figure moves little with the machine's load):
  - value: one recomputation as the entitlement cache runs it (`services.entitlements._measure`:
    the plan features, the overrides, the period's usage of the limited meter);
  - before: the same through the path the cache used before (`preview_customer`, which also read
    the billing modes and priced the upcoming invoice, on the store's own connections: on SQLite a
    new connection with its PRAGMAs per use);
  - baseline (the machine's own limit): the one query a recomputation cannot do without, the
    customer's count of events in the period, sent as bare SQL on a connection kept open.
ratio = baseline / value (1.0: a recomputation costs no more than its one query).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from .entitlements import CUSTOMERS, seed
from .stores import postgres_database, postgres_unavailable, sqlite_database

NOW = datetime(2026, 1, 25, 12, tzinfo=UTC)
ROUNDS = 3


def _fill(url: str) -> None:
    from fastapi.testclient import TestClient

    from ratecard.api.app import create_app
    from ratecard.store import open_store
    from ratecard.store.keys import create_key

    store = open_store(url)
    _, key = create_key(store, "live", 0, "bench")
    store.dispose()
    with TestClient(create_app(url)) as client:
        seed(client, key)


def _cpu_ms(work: Any, customers: list[str]) -> list[float]:
    times = []
    for _ in range(ROUNDS):
        for customer in customers:
            started = time.thread_time()
            work(customer)
            times.append((time.thread_time() - started) * 1000)
    return times


def bench_store(kind: str, url: str) -> list[dict]:
    from ratecard.billing.preview import preview_customer
    from ratecard.services import entitlements
    from ratecard.services.catalog import current_catalog
    from ratecard.store import open_store, reader

    os.environ["RATECARD_NOW"] = NOW.isoformat()
    _fill(url)
    store = open_store(url)
    version, catalog = current_catalog(store, "live")
    customers = [f"c{c}" for c in range(CUSTOMERS)]
    kept = reader(store).engine.connect()
    count = text("SELECT count(*) FROM events WHERE environment = 'live' AND customer = :customer "
                 "AND meter = 'calls' AND ts >= :start AND ts < :end")
    start_us, end_us = 1767225600 * 10**6, int(NOW.timestamp()) * 10**6

    def measure(customer: str) -> None:
        entitlements._measure(store, "live", catalog, version, customer, NOW)

    def before(customer: str) -> None:
        preview_customer(store, catalog, version, customer, NOW, "live")

    def bare(customer: str) -> None:
        assert kept.execute(count, {"customer": customer, "start": start_us, "end": end_us}).scalar() == 20

    for work in (measure, before, bare):  # warm: every path once per customer
        for customer in customers[:50]:
            work(customer)
    value, old, baseline = (statistics.median(_cpu_ms(work, customers)) for work in (measure, before, bare))
    kept.close()
    store.dispose()
    from .run import log

    log(f"{kind} entitlements recompute: {value:.3f} ms CPU (median of {ROUNDS * len(customers)}); before "
        f"{old:.3f} ms; bare count query {baseline:.3f} ms; ratio {baseline / value:.3f}")
    detail = {"customers": CUSTOMERS, "rounds": ROUNDS, "before_ms": round(old, 3),
              "meaning": "CPU (thread time) of one entitlements recomputation; baseline: its one bare query"}
    return [{"name": f"entitlements_refresh_cpu.{kind}", "value": round(value, 3), "unit": "ms",
             "baseline": round(baseline, 3), "ratio": round(baseline / value, 3), "target": None, "detail": detail}]


def main(argv: list[str] | None = None) -> int:
    from .run import print_table

    parser = argparse.ArgumentParser(prog="python -m bench.entitlements_refresh", description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if "postgresql" in stores and (reason := postgres_unavailable()) is not None:
        raise SystemExit(f"PostgreSQL is unreachable ({reason}); run with --stores sqlite to skip it")
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in stores:
            database = sqlite_database(Path(folder)) if kind == "sqlite" else postgres_database()
            with database as url:
                results += bench_store(kind, url)
    print_table(results, CUSTOMERS * 20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
