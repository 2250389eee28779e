"""Run the benchmarks: `python -m bench.run` from the repo root (what `make bench` does).

For each store (SQLite, PostgreSQL), on N events (BENCH_EVENTS, default 1,000,000) and N/100
customers with one subscription each:

1. import    events/s stored by ratecard's `import_file` of a JSONL file, against a bare
             executemany INSERT (SQLite) / COPY (PostgreSQL) of the same rows into an empty
             copy of the events table (same keys and indexes), one transaction.
2. invoice   events/s aggregated and priced by `generate_invoices` (October 2026, until
             2026-11-01), against a bare `SELECT customer, meter, SUM(<json field>) FROM events
             GROUP BY customer, meter` over the same table (the faster of one run before and
             one after the invoice run).
   rollups   the same two rows and the memory row in a fresh database whose continuous roll-ups
             (docs/rollups.md) are built before the import: the import maintains them (against
             the same bare insert), the invoice run reads them instead of the events (against the
             same bare GROUP BY over the events).
3. memory    the invoice run's peak RSS in its own process, against a 500 MiB budget:
             baseline = 500, ratio = 500 / peak (higher is better), target = 1.
4. preview   the upcoming invoice of one customer with 100,000 events this period (fixed size,
             whatever N), warm, against a bare GROUP BY over the same rows, and against a 50 ms
             budget (bench/preview.py).
5. api       the HTTP API on loopback (`ratecard serve --workers 2`), in a fresh database per
             store: POST /v1/events in batches of 1,000 against a bare bulk insert of the same
             rows, and single-event requests/s, p50 and p99 against a bare INSERT + COMMIT per
             row (bench/api_bench.py).
6. entitlements
             GET /v1/customers/{ref}/entitlements over HTTP under load (4 clients), p99 against
             the 5 ms budget and against a trivial ASGI request on the same uvicorn, timed in the
             same run (bench/entitlements_bench.py).
7. console   server time (median, p95) of every console page an admin can open, in a fresh
             database per store holding the same N events and N/100 customers and their drafts,
             against a trivial console request timed in the same rounds, and the slowest p95
             against the 300 ms budget (bench/console.py).
7. workers   `ratecard invoices generate --workers 2` against `ratecard invoices generate` (one
             process) on the same data, in a fresh database per store (bench/parallel_run.py).

Writes bench/results.json ({name, value, unit, baseline, ratio, target, detail}) and prints a
table. `--profile DIR` also writes cProfile stats of each measured call to DIR and prints the
top entries (figures from a profiled run are inflated, so they go to DIR/results.json only).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import select, text

from ratecard.catalog import build_catalog, check_document, load_document
from ratecard.store import open_store
from ratecard.store.catalogs import save_version
from ratecard.store.schema import invoice_lines

from . import data
from .api_bench import run_api_benchmarks
from .baselines import bare_insert, bare_rollup
from .console import run_console_benchmark
from .entitlements_bench import run_entitlements_benchmark
from .parallel_run import run_parallel_benchmark
from .preview import run_preview_benchmark
from .reconcile_bench import run_reconcile_benchmark
from .stores import postgres_database, postgres_unavailable, sqlite_database

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
DEFAULT_EVENTS = 1_000_000
THROUGHPUT_TARGET = 0.5
MEMORY_BUDGET_MIB = 500.0

console = Console(stderr=True)


def log(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def events_from_env() -> int:
    raw = os.environ.get("BENCH_EVENTS", "").replace("_", "").replace(",", "").strip()
    if not raw:
        return DEFAULT_EVENTS
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"BENCH_EVENTS must be a whole number, got {raw!r}") from None
    if value < 100:
        raise SystemExit(f"BENCH_EVENTS must be at least 100, got {value}")
    return value


def run_worker(operation: str, url: str, events_file: Path | None, profile: Path | None) -> dict:
    command = [sys.executable, "-m", "bench.worker", operation, "--db", url]
    if events_file is not None:
        command += ["--events", str(events_file)]
    if profile is not None:
        command += ["--profile", str(profile)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr)
        raise SystemExit(f"bench.worker {operation} failed on {url} (exit {completed.returncode})")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def apply_catalog(url: str, catalog_file: Path) -> int:
    store = open_store(url)  # creates the schema (Alembic), as `ratecard catalog apply` would
    try:
        document, problems = check_document(load_document(catalog_file))
        if document is None or problems:
            raise SystemExit(f"the generated catalog is invalid: {problems[:3]}")
        build_catalog(document)
        version, _ = save_version(store, document, data.to_micros(data.NOW))
        return version
    finally:
        store.dispose()


def invoiced_quantities(url: str) -> dict[str, Decimal]:
    store = open_store(url, migrate=False)
    totals: dict[str, Decimal] = {}
    try:
        with store.engine.connect() as connection:
            for code, quantity in connection.execute(select(invoice_lines.c.code, invoice_lines.c.quantity)):
                totals[code] = totals.get(code, Decimal(0)) + quantity
    finally:
        store.dispose()
    return totals


def settle(url: str) -> None:
    """Start each measurement from the same quiet state, outside the timed region.

    SQLite: checkpoint and truncate the WAL. PostgreSQL: VACUUM ANALYZE this database (what
    autovacuum does after a bulk load anyway, here before the next measurement rather than
    possibly during it), CHECKPOINT (so neither side pays for the other's dirty buffers), and
    wait for any autovacuum worker still busy in it.
    """
    store = open_store(url, migrate=False)
    try:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if not store.is_postgres:
                connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
                return
            connection.execute(text("VACUUM ANALYZE"))
            connection.execute(text("CHECKPOINT"))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'autovacuum worker' AND datname = current_database()"
            )).scalar():
                time.sleep(0.5)
    finally:
        store.dispose()


def make_partitions(url: str) -> None:
    """PostgreSQL: the data's month gets its own partition before the import, as
    `ratecard events partitions create` makes it ahead in production (else every event would
    land in the default partition)."""
    from ratecard.services.partitions import create_partitions

    store = open_store(url)
    try:
        if store.is_postgres:
            create_partitions(store, data.PERIOD_START, 1)
    finally:
        store.dispose()


def bench_store(kind: str, url: str, events: int, events_file: Path, catalog_file: Path,
                profile_dir: Path | None, rollups: bool = False) -> list[dict]:
    """The core rows; with `rollups`, the catalog's continuous roll-ups are built (ready) before the
    import, so the import maintains them and the invoice run reads them instead of the events."""
    customers = data.customer_count(events)
    suffix = "_rollups" if rollups else ""
    profile = ((lambda name: profile_dir / f"{kind}{suffix}-{name}.prof") if profile_dir
               else (lambda name: None))

    log(f"[bold]{kind}[/bold]: applying the catalog ({customers:,} customers and subscriptions)")
    apply_catalog(url, catalog_file)
    make_partitions(url)
    if rollups:
        built = run_worker("rollups", url, None, None)
        log(f"{kind}: roll-ups ready for {', '.join(item['meters'] for item in built['detail']['build'])}")
    settle(url)

    log(f"{kind}: import_file of {events:,} events")
    imported = run_worker("import", url, events_file, profile("import"))
    stored = imported["detail"]["stored"]
    if stored != events or imported["detail"]["rejected"]:
        raise SystemExit(f"{kind}: import stored {stored} of {events} events: {imported['detail']}")
    log(f"{kind}: import took {imported['seconds']:.2f}s ({stored / imported['seconds']:,.0f} events/s)")

    log(f"{kind}: bare {'COPY' if kind == 'postgresql' else 'executemany INSERT'} of the same rows")
    rows = data.event_rows(events, data.to_micros(data.NOW))
    settle(url)
    bare = bare_insert(url, rows)
    del rows
    gc.collect()
    log(f"{kind}: bare insert took {bare['seconds']:.2f}s ({events / bare['seconds']:,.0f} events/s)")

    settle(url)
    baselines = [bare_rollup(url, data.SUM_FIELD)]
    log(f"{kind}: bare GROUP BY took {baselines[0]['seconds']:.2f}s")
    log(f"{kind}: generate_invoices for {customers:,} subscriptions until {data.UNTIL}")
    invoiced = run_worker("invoice", url, None, profile("invoice"))
    log(f"{kind}: invoice run took {invoiced['seconds']:.2f}s, peak RSS {invoiced['peak_rss_mib']:.0f} MiB")
    usage_read = run_worker("usage", url, None, None)["detail"] if rollups else None
    if usage_read is not None:
        log(f"{kind}: usage read from roll-ups {usage_read['from_rollups_seconds']:.2f}s, "
            f"from raw events {usage_read['raw_seconds']:.2f}s")
    baselines.append(bare_rollup(url, data.SUM_FIELD))
    log(f"{kind}: bare GROUP BY (again) took {baselines[1]['seconds']:.2f}s")
    rollup = min(baselines, key=lambda r: r["seconds"])

    # the invoice run must have billed every event: same totals as the bare roll-up
    quantities = invoiced_quantities(url)
    expected = {"tokens": rollup["sums"].get(data.SUM_METER, Decimal(0)),
                "calls": Decimal(rollup["counts"].get(data.COUNT_METER, 0))}
    billed = {code: quantities.get(code, Decimal(0)) for code in expected}
    if billed != expected or rollup["events"] != events:
        raise SystemExit(f"{kind}: the invoice run billed {billed}, the bare roll-up found {expected}")
    if invoiced["detail"]["created"] != 2 * customers:
        raise SystemExit(f"{kind}: expected {2 * customers} invoices, the run reports {invoiced['detail']}")

    import_rate = stored / imported["seconds"]
    bare_rate = events / bare["seconds"]
    invoice_rate = events / invoiced["seconds"]
    rollup_rate = events / rollup["seconds"]
    peak = invoiced["peak_rss_mib"]
    extra = []
    if usage_read is not None:
        read_rate = events / usage_read["from_rollups_seconds"]
        extra.append({
            "name": f"usage_read_from_rollups.{kind}", "value": round(read_rate, 1), "unit": "events/s",
            "baseline": round(rollup_rate, 1), "ratio": round(read_rate / rollup_rate, 3), "target": 1.0,
            "detail": {"meaning": "the invoice run's usage read alone (aggregate_usage over every subscription's "
                                  "October) from the roll-ups, against the bare GROUP BY over the events",
                       "seconds": round(usage_read["from_rollups_seconds"], 3),
                       "raw_events_seconds": round(usage_read["raw_seconds"], 3),
                       "baseline_seconds": round(rollup["seconds"], 3)}})
    imported_name = f"import_with_rollups.{kind}" if rollups else f"import.{kind}"
    invoice_name = f"invoice_run_from_rollups.{kind}" if rollups else f"invoice_run.{kind}"
    return [
        {
            "name": imported_name, "value": round(import_rate, 1), "unit": "events/s",
            "baseline": round(bare_rate, 1), "ratio": round(import_rate / bare_rate, 3),
            "target": THROUGHPUT_TARGET,
            "detail": {"events": events, "seconds": round(imported["seconds"], 3),
                       "baseline_seconds": round(bare["seconds"], 3),
                       "baseline": "bare executemany INSERT, one transaction" if kind == "sqlite"
                       else "bare COPY, one transaction",
                       "import_peak_rss_mib": round(imported["peak_rss_mib"], 1)},
        },
        {
            "name": invoice_name, "value": round(invoice_rate, 1), "unit": "events/s",
            "baseline": round(rollup_rate, 1), "ratio": round(invoice_rate / rollup_rate, 3),
            "target": THROUGHPUT_TARGET,
            "detail": {"events": events, "subscriptions": customers, "invoices": invoiced["detail"]["created"],
                       "seconds": round(invoiced["seconds"], 3),
                       "catalog_load_seconds": round(invoiced["setup_seconds"], 3),
                       "baseline_seconds": [round(r["seconds"], 3) for r in baselines],
                       "baseline_sql": rollup["sql"], "billed": {k: str(v) for k, v in billed.items()}},
        },
        {
            "name": invoice_name.replace(".", "_peak_rss.", 1), "value": round(peak, 1), "unit": "MB",
            "baseline": MEMORY_BUDGET_MIB, "ratio": round(MEMORY_BUDGET_MIB / peak, 3), "target": 1.0,
            "detail": {"meaning": "peak RSS (MiB) of a process that loads the catalog and runs "
                                  "generate_invoices; baseline is the budget, ratio = budget / peak",
                       "rss_before_run_mib": round(invoiced["rss_before_mib"], 1),
                       "ru_maxrss_mib": round(invoiced["ru_maxrss_mib"], 1),
                       "ru_maxrss_note": "getrusage includes the high-water mark inherited from the "
                                         "spawning runner through fork/exec, so VmHWM is reported"},
        },
        *extra,
    ]


def print_table(results: list[dict], events: int) -> None:
    table = Table(title=f"ratecard benchmarks, {events:,} events (Python {platform.python_version()}, "
                        f"{os.cpu_count()} cores)")
    for column in ("benchmark", "store", "value", "unit", "baseline", "ratio", "target", "result"):
        table.add_column(column, no_wrap=True,
                         justify="left" if column in ("benchmark", "store", "unit", "result") else "right")
    for row in results:
        name, _, store = row["name"].rpartition(".")
        if row["target"] is None:  # a figure to read, with no target set
            table.add_row(name, store, _figure(row["value"]), row["unit"], _figure(row["baseline"]),
                          f"{row['ratio']:.3f}", "-", "-")
            continue
        ok = row["ratio"] >= row["target"]
        table.add_row(name, store, _figure(row["value"]), row["unit"], _figure(row["baseline"]),
                      f"{row['ratio']:.3f}", f"{row['target']:g}", "[green]ok[/green]" if ok else "[red]MISSED[/red]")
    Console(width=max(110, Console().width)).print(table)


def _figure(value: float) -> str:
    """Thousands without decimals; small figures (latencies in ms) with enough digits to read."""
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def print_profile(path: Path, lines: int = 25) -> None:
    console.rule(str(path.name))
    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, help="events per benchmark (default: BENCH_EVENTS or 1,000,000)")
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="write cProfile stats of each measured call")
    parser.add_argument("--out", type=Path, help="results file (default: bench/results.json)")
    parser.add_argument("--suites", default="core,rollups,preview,api,entitlements,golive,console,workers",
                        help="comma-separated: core (import, invoice run, memory), rollups (the same with "
                             "continuous roll-ups maintained at import and read by the invoice run), "
                             "preview (upcoming invoice), api (HTTP API), entitlements (its HTTP latency), "
                             "golive (reconcile), console (the console's pages), "
                             "workers (invoice run shared by 2 worker processes)")
    args = parser.parse_args(argv)
    suites = {s.strip() for s in args.suites.split(",") if s.strip()}
    known = {"core", "rollups", "preview", "api", "entitlements", "golive", "console", "workers"}
    if not suites or suites - known:
        parser.error(f"--suites takes {', '.join(sorted(known))}, got {args.suites!r}")
    events = args.events or events_from_env()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    for store in stores:
        if store not in ("sqlite", "postgresql"):
            parser.error(f"unknown store {store!r} (expected sqlite or postgresql)")
    out = args.out or ((args.profile / "results.json") if args.profile else RESULTS)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()

    if "postgresql" in stores:
        reason = postgres_unavailable()
        if reason is not None:
            raise SystemExit(f"PostgreSQL is unreachable ({reason}); run with --stores sqlite to skip it")

    folder = Path(tempfile.mkdtemp(prefix="ratecard-bench-"))
    results: list[dict] = []
    try:
        started = time.perf_counter()
        events_file = folder / "events.jsonl"
        catalog_file = folder / "catalog.json"
        if suites - {"preview", "console", "entitlements"}:  # these make their own data
            data.write_catalog(catalog_file, events)
            data.write_events(events_file, events)
            log(f"generated {events:,} events and {data.customer_count(events):,} customers in "
                f"{time.perf_counter() - started:.1f}s ({events_file.stat().st_size / 2**20:,.0f} MiB JSONL)")
        for kind in stores if "core" in suites else ():
            database = sqlite_database(folder) if kind == "sqlite" else postgres_database()
            with database as url:
                results += bench_store(kind, url, events, events_file, catalog_file, args.profile)
        for kind in stores if "rollups" in suites else ():
            database = sqlite_database(folder) if kind == "sqlite" else postgres_database()
            with database as url:
                results += bench_store(kind, url, events, events_file, catalog_file, args.profile, rollups=True)
        for kind in stores if "preview" in suites else ():  # a database of its own, not profiled
            database = sqlite_database(folder) if kind == "sqlite" else postgres_database()
            with database as url:
                results += run_preview_benchmark(kind, url, log)
        if "api" in suites:  # the server processes are not profiled
            results += run_api_benchmarks(stores, events, events_file, catalog_file, folder)
        if "entitlements" in suites:  # the server processes are not profiled
            results += run_entitlements_benchmark(stores, folder)
        if "golive" in suites:
            with sqlite_database(folder) as url:
                results.append(run_reconcile_benchmark(url, events, folder, log))
        for kind in stores if "workers" in suites else ():  # a database of its own, not profiled
            database = sqlite_database(folder) if kind == "sqlite" else postgres_database()
            with database as url:
                apply_catalog(url, catalog_file)
                run_worker("import", url, events_file, None)
                results += run_parallel_benchmark(kind, url, events, settle, log)
        for kind in stores if "console" in suites else ():  # a database of its own, not profiled
            database = sqlite_database(folder) if kind == "sqlite" else postgres_database()
            with database as url:
                results += run_console_benchmark(kind, url, events, log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print_table(results, events)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {out}")
    if args.profile:
        for path in sorted(args.profile.glob("*.prof")):
            print_profile(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
