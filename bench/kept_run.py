"""The invoice run with roll-ups on a database kept between runs, for sizes where rebuilding the
database for each measurement takes longer than the measurement (10,000,000 events).

    python -m bench.kept_run prepare --store postgresql --events 10000000 [--customers N] [--name NAME]
    python -m bench.kept_run measure --store postgresql [--name NAME] [--runs 3]
    python -m bench.kept_run phases  --store postgresql [--name NAME]
    python -m bench.kept_run drop    --store postgresql [--name NAME]

`prepare` loads the suites' data (bench/data.py: N events, N/100 customers) into a database of its
own that is not dropped, as the `rollups` suite does: the catalog, the month's partition
(PostgreSQL), `ratecard rollups rebuild` on the empty database, then `import_file` of the events
(which maintains the roll-ups).

`measure` repeats, per run: the invoices removed (tables emptied, their ids and draft numbers
restarted, so every run writes the same rows), the store settled, the bare GROUP BY over the
events, the invoice run in a process of its own (bench.worker invoice: time and peak RSS), the
bare GROUP BY again; the ratio is against the faster of the two bare queries, as in bench.run.
Each run checks that the invoices bill what the bare query counts and prints the sha256 of the
invoices and their lines (the same digest before and after a change of the run means the same
invoices).

`phases` runs the invoice run once in this process (the invoices removed first) with the functions
it calls wrapped, and prints the wall and CPU seconds of each phase: the cuts, the usage read, the
pricing (price_cut) and the writes (save_drafts, on a second thread on PostgreSQL: its wall time
overlaps the pricing, and CPU seconds are the whole process's, every thread).

SQLite keeps its file in RATECARD_KEPT_DIR (default /var/tmp/ratecard-kept); PostgreSQL a database
NAME (--name, default ratecard_kept) on the bench server.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ratecard.catalog import build_catalog, check_document
from ratecard.store import open_store
from ratecard.store.catalogs import save_version

from . import data
from .baselines import bare_rollup
from .run import invoiced_quantities, make_partitions, run_worker, settle
from .stores import POSTGRES_URL

KEPT_DIR = Path(os.environ.get("RATECARD_KEPT_DIR", "/var/tmp/ratecard-kept"))


def _url(store: str, name: str) -> str:
    if store == "sqlite":
        return f"sqlite:///{KEPT_DIR / (name + '.db')}"
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def _check_name(name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"--name {name!r} must be a plain identifier")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def drop(store: str, name: str) -> None:
    if store == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{KEPT_DIR / (name + '.db')}{suffix}").unlink(missing_ok=True)
        return
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _apply_catalog(url: str, customers: int) -> None:
    """bench.run.apply_catalog without the file: the catalog of 100,000 customers (10,000,000 events)
    is larger than a catalog file may be (catalog.load.MAX_DOCUMENT_BYTES), so the document goes
    to the same checks from memory."""
    store = open_store(url)
    try:
        document, problems = check_document(data.catalog_document(customers))
        if document is None or problems:
            raise SystemExit(f"the generated catalog is invalid: {problems[:3]}")
        build_catalog(document)
        save_version(store, document, data.to_micros(data.NOW))
    finally:
        store.dispose()


def prepare(store: str, name: str, events: int, customers: int | None = None) -> None:
    customers = customers or data.customer_count(events)
    drop(store, name)
    if store == "sqlite":
        KEPT_DIR.mkdir(parents=True, exist_ok=True)
    else:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    url = _url(store, name)
    with tempfile.TemporaryDirectory(prefix="ratecard-kept-") as folder:
        events_file = Path(folder) / "events.jsonl"
        started = time.perf_counter()
        data.write_events(events_file, events, customers=customers)
        _log(f"generated {events:,} events for {customers:,} customers in {time.perf_counter() - started:.1f}s")
        _apply_catalog(url, customers)
        make_partitions(url)
        run_worker("rollups", url, None, None)  # on the empty database: ready at once, kept by the import
        imported = run_worker("import", url, events_file, None)
        _log(f"import_file: {imported['seconds']:.1f}s, stored {imported['detail']['stored']:,}")
    settle(url)


def reset_invoices(url: str) -> None:
    store = open_store(url, migrate=False)
    try:
        with store.engine.begin() as connection:
            if store.is_postgres:
                connection.execute(text("TRUNCATE invoice_lines, invoices, draft_sequences RESTART IDENTITY"))
            else:
                for table in ("invoice_lines", "invoices", "draft_sequences"):
                    connection.execute(text(f"DELETE FROM {table}"))
                if connection.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first():
                    connection.execute(text("DELETE FROM sqlite_sequence WHERE name IN ('invoices', 'invoice_lines')"))
    finally:
        store.dispose()


def digest(url: str) -> str:
    """sha256 of every invoice and every line, in id order, all columns as text."""
    store = open_store(url, migrate=False)
    hasher = hashlib.sha256()
    try:
        with store.engine.connect() as connection:
            for table, order in (("invoices", "id"), ("invoice_lines", "invoice_id, position")):
                for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY {order}")):
                    hasher.update(repr(tuple(str(value) for value in row)).encode())
    finally:
        store.dispose()
    return hasher.hexdigest()


def measure(store: str, name: str, runs: int) -> list[dict]:
    url = _url(store, name)
    results = []
    for number in range(1, runs + 1):
        reset_invoices(url)
        settle(url)
        before = bare_rollup(url, data.SUM_FIELD)
        invoiced = run_worker("invoice", url, None, None)
        after = bare_rollup(url, data.SUM_FIELD)
        bare = min(before, after, key=lambda r: r["seconds"])
        quantities = invoiced_quantities(url)
        expected = {"tokens": bare["sums"].get(data.SUM_METER, Decimal(0)),
                    "calls": Decimal(bare["counts"].get(data.COUNT_METER, 0))}
        billed = {code: quantities.get(code, Decimal(0)) for code in expected}
        if billed != expected:
            raise SystemExit(f"run {number}: the invoice run billed {billed}, the bare GROUP BY counts {expected}")
        result = {"store": store, "events": bare["events"], "run": number, "seconds": round(invoiced["seconds"], 3),
                  "cpu_seconds": round(invoiced["cpu_seconds"], 3),
                  "bare_seconds": [round(before["seconds"], 3), round(after["seconds"], 3)],
                  "ratio": round(bare["seconds"] / invoiced["seconds"], 3),
                  "peak_rss_mib": round(invoiced["peak_rss_mib"], 1),
                  "rss_before_run_mib": round(invoiced["rss_before_mib"], 1), "invoices": invoiced["detail"]["created"],
                  "sha256": digest(url), "load": os.getloadavg()}
        _log(json.dumps(result))
        results.append(result)
    ratios = [r["ratio"] for r in results]
    _log(f"{store}: median ratio {statistics.median(ratios):.3f} over {runs} runs "
         f"(invoice run median {statistics.median(r['seconds'] for r in results):.2f}s)")
    return results


def phases(store: str, name: str) -> dict[str, tuple[float, float]]:
    import functools

    from ratecard.billing import run
    from ratecard.services.catalog import current_catalog

    url = _url(store, name)
    reset_invoices(url)
    times: dict[str, tuple[float, float]] = {}
    originals = {}

    def wrap(attribute: str, label: str) -> None:
        original = originals[attribute] = getattr(run, attribute)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                before = times.get(label, (0.0, 0.0))
                times[label] = (before[0] + time.perf_counter() - wall, before[1] + time.process_time() - cpu)
        setattr(run, attribute, timed)

    for attribute, label in (("_pending_cuts", "cuts"), ("aggregate_usage", "usage read"),
                             ("price_cut", "pricing"), ("save_drafts", "writing")):
        wrap(attribute, label)
    opened = open_store(url, migrate=False)
    try:
        version, catalog = current_catalog(opened)
        wall, cpu = time.perf_counter(), time.process_time()
        report = run.generate_invoices(opened, catalog, version, data.UNTIL, data.NOW, pause_gc=True)
        times["whole run"] = (time.perf_counter() - wall, time.process_time() - cpu)
    finally:
        opened.dispose()
        for attribute, original in originals.items():
            setattr(run, attribute, original)
    for label, (wall, cpu) in times.items():
        _log(f"{label:10s} wall {wall:7.3f}s  cpu {cpu:7.3f}s")
    _log(f"{report.created:,} invoices; load {os.getloadavg()}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kept_run", description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=("prepare", "measure", "phases", "drop"))
    parser.add_argument("--store", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--name", default="ratecard_kept")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=None,
                        help="customers and subscriptions (default: one per 100 events)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    _check_name(args.name)
    if args.operation == "prepare":
        prepare(args.store, args.name, args.events, args.customers)
    elif args.operation == "drop":
        drop(args.store, args.name)
    elif args.operation == "phases":
        phases(args.store, args.name)
    else:
        print(json.dumps(measure(args.store, args.name, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
