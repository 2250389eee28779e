"""The upcoming invoice of one busy customer: `preview_invoices` with warm caches.

One customer has PREVIEW_EVENTS (100,000) events in the current period (November 2026, before
`at` = 2026-11-26T00:00Z), 75% `tokens` (sum) and 25% `api_calls` (count), plus as many in the
previous period (October); BACKGROUND_CUSTOMERS other customers have BACKGROUND_EVENTS more over
both months, interleaved in time, so the customer's rows are a slice of a larger table. The rows
are inserted directly (the setup is not measured).

value    = median milliseconds of `services.preview.preview_invoices` for that customer, with
           the store open and the catalog built (as the API route calls it: the catalog is
           cached per process), over RUNS runs after WARMUP unmeasured ones
baseline = median milliseconds of the bare query over the same rows in the same run (the two
           are timed in turn, so both see the same load):
           SELECT meter, COUNT(*), SUM(<json field>) FROM events WHERE environment = 'live'
           AND customer = ? AND meter IN ('api_calls', 'tokens') AND ts >= <period start>
           AND ts < <at> GROUP BY meter  (the whole usage index: the fastest plain form)
ratio    = baseline / value (higher is better); target 0.5 (at most twice the bare query)
and a second row against the absolute budget: value ms against 50 ms, ratio = 50 / value,
target 1.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from ratecard.catalog import build_catalog, check_document
from ratecard.services.catalog import current_catalog
from ratecard.services.preview import preview_invoices
from ratecard.store import open_store
from ratecard.store.catalogs import save_version

from . import data
from .baselines import COLUMNS

PREVIEW_EVENTS = 100_000
BACKGROUND_CUSTOMERS = 999
BACKGROUND_EVENTS = 300_000
AT = datetime(2026, 11, 26, tzinfo=UTC)
PERIOD_START = datetime(2026, 11, 1, tzinfo=UTC)
PREVIOUS_START = datetime(2026, 10, 1, tzinfo=UTC)
CUSTOMER = data.customer_ref(0)
WARMUP, RUNS = 3, 21
TARGET = 0.5
BUDGET_MS = 50.0
SEED = 20261126


def _events(rng: random.Random, count: int, start: datetime, end: datetime, customers: Callable[[], str],
            prefix: str) -> list[tuple]:
    """Rows in the events table's column order (bench.baselines.COLUMNS), matched, in time order."""
    first, span = data.to_micros(start), data.to_micros(end) - data.to_micros(start)
    received = data.to_micros(data.NOW)
    rows = []
    for index in range(count):
        ts = first + (index * span) // count + rng.randrange(max(1, span // count))
        if rng.random() < data.TOKENS_SHARE:
            meter = data.SUM_METER
            properties = f'{{"{data.SUM_FIELD}":{rng.randrange(1, 4000)},"model":"{data.MODELS[rng.randrange(3)]}"}}'
        else:
            meter, properties = data.COUNT_METER, f'{{"endpoint":"{data.ENDPOINTS[rng.randrange(3)]}"}}'
        rows.append((data.ENVIRONMENT, f"{prefix}-{index:08d}", customers(), meter, ts, properties, received,
                     "matched", False))
    return rows


def _load(url: str) -> None:
    """The catalog (1,000 customers) and the events, inserted in one transaction."""
    rng = random.Random(SEED)
    store = open_store(url)  # creates the schema
    try:
        document, problems = check_document(data.catalog_document(BACKGROUND_CUSTOMERS + 1))
        if document is None or problems:
            raise SystemExit(f"the preview catalog is invalid: {problems[:3]}")
        build_catalog(document)
        save_version(store, document, data.to_micros(data.NOW))
        others = [data.customer_ref(i) for i in range(1, BACKGROUND_CUSTOMERS + 1)]
        rows = _events(rng, PREVIEW_EVENTS, PREVIOUS_START, PERIOD_START, lambda: CUSTOMER, "prev")
        rows += _events(rng, PREVIEW_EVENTS, PERIOD_START, AT, lambda: CUSTOMER, "busy")
        rows += _events(rng, BACKGROUND_EVENTS, PREVIOUS_START, AT, lambda: others[rng.randrange(len(others))],
                        "other")
        rows.sort(key=lambda row: row[4])  # interleaved in time, as a metering pipeline delivers them
        raw = store.engine.raw_connection()
        try:
            driver = raw.driver_connection
            columns = ", ".join(COLUMNS)
            # then the quiet state a warm server is in: statistics current, PostgreSQL's visibility
            # map set (VACUUM), SQLite's WAL checkpointed
            if store.is_postgres:
                with driver.cursor() as cursor, cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                driver.commit()
                driver.autocommit = True
                driver.execute("VACUUM ANALYZE events")
            else:
                driver.executemany(f"INSERT INTO events ({columns}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
                driver.commit()
                driver.execute("ANALYZE")
                driver.commit()
                driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    finally:
        store.dispose()


def _bare_sql(postgres: bool) -> str:
    value = (f"(properties -> '{data.SUM_FIELD}')::numeric" if postgres
             else f"json_extract(properties, '$.\"{data.SUM_FIELD}\"')")
    mark = "%s" if postgres else "?"
    return (f"SELECT meter, COUNT(*), SUM({value}) FROM events WHERE environment = {mark} AND customer = {mark} "
            f"AND meter IN ('{data.COUNT_METER}', '{data.SUM_METER}') AND ts >= {mark} AND ts < {mark} GROUP BY meter")


def _timed_in_turn(calls: dict[str, Callable[[], object]]) -> dict[str, tuple[float, list[float], object]]:
    """Median milliseconds of each call, timed in turn (one of each per round) after WARMUP rounds,
    so a machine shared with other work weighs on all of them alike; with each call's last result."""
    for _ in range(WARMUP):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    results: dict[str, object] = {}
    for _ in range(RUNS):
        for name, call in calls.items():
            started = time.perf_counter()
            results[name] = call()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: (statistics.median(times[name]), times[name], results[name]) for name in calls}


def run_preview_benchmark(kind: str, url: str, log: Callable[[str], None], rollups: bool = False) -> list[dict]:
    """With `rollups`, the catalog's continuous roll-ups are built from the loaded events first and
    the preview reads its usage from them (docs/rollups.md); the bare query still reads the events."""
    log(f"preview ({kind}): loading {PREVIEW_EVENTS:,} events for {CUSTOMER} this period, as many in the previous "
        f"one and {BACKGROUND_EVENTS:,} for {BACKGROUND_CUSTOMERS} other customers")
    _load(url)
    store = open_store(url, migrate=False)
    try:
        if rollups:
            from ratecard.services.rollups import rebuild_rollups

            started = time.perf_counter()
            rebuild_rollups(store, data.ENVIRONMENT, data.NOW)
            log(f"preview ({kind}): roll-ups built in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        version, catalog = current_catalog(store)
        catalog_ms = (time.perf_counter() - started) * 1000

        def preview() -> dict:
            return preview_invoices(store, CUSTOMER, AT, data.NOW, catalog=catalog, catalog_version=version).as_dict()

        raw = store.engine.raw_connection()
        try:
            driver = raw.driver_connection
            sql = _bare_sql(store.is_postgres)
            params = (data.ENVIRONMENT, CUSTOMER, data.to_micros(PERIOD_START), data.to_micros(AT))
            measured = _timed_in_turn({"preview": preview, "bare": lambda: driver.execute(sql, params).fetchall()})
            raw.rollback()
        finally:
            raw.close()
        value, times, document = measured["preview"]
        baseline, bare_times, rows = measured["bare"]
        started = time.perf_counter()
        preview_invoices(store, CUSTOMER, AT, data.NOW)  # the CLI's path: the catalog loaded and built too
        with_catalog_ms = (time.perf_counter() - started) * 1000
    finally:
        store.dispose()

    # the preview must have counted exactly the rows the bare query sums
    usage = {row["meter"]: row for row in document["subscriptions"][0]["usage"]}
    bare = {meter: (count, Decimal(str(total)) if total is not None else None) for meter, count, total in rows}
    counted = {meter: (usage[meter]["events"], Decimal(usage[meter]["quantity"])) for meter in bare}
    expected = {meter: (count, total if meter == data.SUM_METER else Decimal(count))
                for meter, (count, total) in bare.items()}
    if counted != expected or sum(count for count, _ in bare.values()) != PREVIEW_EVENTS:
        raise SystemExit(f"preview ({kind}) measured {json.dumps(usage)}, the bare query {bare}")
    kind_name = f"{'preview_from_rollups' if rollups else 'preview'}.{kind}"
    log(f"preview ({kind}{', roll-ups' if rollups else ''}): median {value:.1f} ms (bare query {baseline:.1f} ms); "
        "with the catalog loaded "
        f"{with_catalog_ms:.1f} ms")
    detail = {"customer_events_this_period": PREVIEW_EVENTS, "runs": RUNS, "warmup_runs": WARMUP,
              "times_ms": [round(t, 2) for t in times], "baseline_times_ms": [round(t, 2) for t in bare_times],
              "baseline_sql": _bare_sql(store.is_postgres),
              "preview_with_catalog_load_ms": round(with_catalog_ms, 2), "catalog_load_ms": round(catalog_ms, 2),
              "total": document["subscriptions"][0]["invoices"][0]["total"]}
    return [
        {"name": kind_name, "value": round(value, 2), "unit": "ms", "baseline": round(baseline, 2),
         "ratio": round(baseline / value, 3), "target": TARGET,
         "detail": {**detail, "meaning": "median latency; baseline = median of the bare GROUP BY over the same rows; "
                                         "ratio = baseline / value (higher is better)"}},
        {"name": kind_name.replace(".", "_budget.", 1), "value": round(value, 2), "unit": "ms", "baseline": BUDGET_MS,
         "ratio": round(BUDGET_MS / value, 3), "target": 1.0,
         "detail": {"meaning": "the same median against the 50 ms budget; ratio = budget / value"}},
    ]


def _main() -> None:
    """`python -m bench.preview [--rollups] [sqlite|postgresql]`: this benchmark alone, printed as JSON."""
    import sys
    import tempfile
    from pathlib import Path

    from .stores import postgres_database, sqlite_database

    rollups = "--rollups" in sys.argv[1:]
    kinds = [arg for arg in sys.argv[1:] if arg != "--rollups"] or ["sqlite", "postgresql"]
    results = []
    with tempfile.TemporaryDirectory(prefix="ratecard-bench-") as folder:
        for kind in kinds:
            database = sqlite_database(Path(folder)) if kind == "sqlite" else postgres_database()
            with database as url:
                results += run_preview_benchmark(kind, url, lambda message: print(message, file=sys.stderr),
                                                 rollups)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    _main()
