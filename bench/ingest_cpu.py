"""CPU per event of the two bulk ingest paths, in process, on both stores.

    .venv/bin/python -m bench.ingest_cpu [--events 200000] [--batches 40] [--stores sqlite,postgresql]
                                         [--clients N] [--profile DIR]

For each store, with and without continuous roll-ups (built before the events arrive):
- file:  `services.events.import_events` of a JSONL file of N events (what `ratecard import` runs);
- batch: what `POST /v1/events` does with a JSON array of 1,000 events, in process, without HTTP:
         `parse_events` of the body, then `import_batch` with a cached validator;
- batch_threads_N (with --clients N): the next batches of the file from N threads at once, as a
         server process with N requests in flight writes them.
Each figure is `time.process_time()` around the call, divided by the events stored; on PostgreSQL
also the CPU of the server processes serving the call's connections (read from /proc, so only for
a server on this machine). CPU seconds, not wall-clock: the machine is shared.
Prints one JSON object per row and the load average beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from ratecard.api.routes.events import parse_events
from ratecard.ingest.validate import EventValidator
from ratecard.services.catalog import current_catalog
from ratecard.services.events import import_batch, import_events, late_windows
from ratecard.services.rollups import rebuild_rollups
from ratecard.store import open_store

from . import data
from .run import apply_catalog, make_partitions
from .stores import postgres_database, postgres_unavailable, sqlite_database

BATCH = 1_000


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _server_cpu(store) -> float:
    """PostgreSQL on this machine: CPU seconds used so far by the server processes serving this
    database's connections (from /proc; the pool keeps them open across the call, and the one
    asking here may be one of them); 0 for SQLite."""
    if not store.is_postgres:
        return 0.0
    with store.engine.connect() as connection:
        pids = [row[0] for row in connection.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile, or another machine's server
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _batch_bodies(events_file: Path, skip: int, batches: int) -> list[bytes]:
    """`batches` JSON arrays of 1,000 events each, from the file's lines after the first `skip`."""
    with events_file.open("rb") as handle:
        lines = [line.rstrip(b"\n") for line in handle]
    lines = lines[skip:skip + batches * BATCH]
    return [b"[" + b",".join(lines[start:start + BATCH]) + b"]" for start in range(0, len(lines), BATCH)]


def _profiled(profile: Path | None, call):
    if profile is None:
        return call()
    profiler = cProfile.Profile(time.process_time)  # CPU, not the waits on the database
    try:
        return profiler.runcall(call)
    finally:
        profiler.dump_stats(profile)


def _row(path: str, label: str, events: int, cpu: float, server: float) -> dict:
    row = {"path": path, "store": label, "events": events, "cpu_s": round(cpu, 3),
           "us_per_event": round(cpu / events * 1e6, 2), "load": _load()}
    if server:
        row["server_us_per_event"] = round(server / events * 1e6, 2)  # clock ticks: 10 ms steps
    return row


def measure(kind: str, url: str, events_file: Path, catalog_file: Path, events: int, batches: int,
            rollups: bool, profile_dir: Path | None, clients: int = 0) -> list[dict]:
    apply_catalog(url, catalog_file)
    make_partitions(url)
    store = open_store(url)
    rows = []
    try:
        if rollups:
            rebuild_rollups(store, data.ENVIRONMENT, data.NOW)
        label = f"{kind}{'_rollups' if rollups else ''}"
        # the file: the first `events` lines, imported as `ratecard import` does
        file_part = events_file.with_suffix(f".{events}.jsonl")
        with events_file.open("rb") as source, file_part.open("wb") as target:
            for _, line in zip(range(events), source, strict=False):
                target.write(line)
        server = _server_cpu(store)
        started = time.process_time()
        result = _profiled(profile_dir and profile_dir / f"{label}-file.prof",
                           lambda: import_events(store, file_part, data.NOW, environment=data.ENVIRONMENT))
        cpu = time.process_time() - started
        server = _server_cpu(store) - server
        stored = result.report.stored
        if stored != events:
            raise SystemExit(f"{label}: the file stored {stored} of {events}")
        rows.append(_row("file", label, stored, cpu, server))

        # batches of 1,000 as POST /v1/events hands them over (events after those of the file)
        bodies = _batch_bodies(events_file, events, batches)
        _, catalog = current_catalog(store, data.ENVIRONMENT)
        validator = EventValidator(catalog, data.NOW, late_windows(store, data.ENVIRONMENT))

        def post_all() -> int:
            stored = 0
            for body in bodies:
                records = parse_events(body)
                stored += import_batch(store, data.ENVIRONMENT, data.NOW, records, False, validator, catalog).stored
            return stored

        # a serving process keeps connections open (its group committer's, its reader's): the
        # request's own connection is never the last one, whose close would checkpoint the WAL
        with store.engine.connect() as held:
            held.exec_driver_sql("SELECT 1").fetchall()
            server = _server_cpu(store)
            started = time.process_time()
            stored = _profiled(profile_dir and profile_dir / f"{label}-batch.prof", post_all)
            cpu = time.process_time() - started
            server = _server_cpu(store) - server
        if stored != len(bodies) * BATCH:
            raise SystemExit(f"{label}: the batches stored {stored} of {len(bodies) * BATCH}")
        rows.append(_row("batch", label, stored, cpu, server))
        if clients:  # the next batches of the file from `clients` threads at once
            rows.append(_threads(store, label, _batch_bodies(events_file, events + batches * BATCH, batches),
                                 validator, catalog, clients, profile_dir))
    finally:
        store.dispose()
    return rows


def _threads(store, label: str, bodies: list[bytes], validator, catalog, clients: int,
             profile_dir: Path | None) -> dict:
    """Batches from `clients` threads at once, as a server process with that many requests in
    flight writes them (each its own transaction; on SQLite they wait for each other's lock)."""
    shares = [bodies[client::clients] for client in range(clients)]
    stored = [0] * clients

    def client(number: int) -> None:
        for body in shares[number]:
            records = parse_events(body)
            stored[number] += import_batch(store, data.ENVIRONMENT, data.NOW, records, False, validator,
                                           catalog).stored

    def post_all() -> None:
        threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    path = f"batch_threads_{clients}"
    with store.engine.connect() as held:  # as in `measure`: the requests' connections are never the last
        held.exec_driver_sql("SELECT 1").fetchall()
        server = _server_cpu(store)
        started = time.process_time()
        _profiled(profile_dir and profile_dir / f"{label}-{path}.prof", post_all)
        cpu = time.process_time() - started
        server = _server_cpu(store) - server
    if sum(stored) != len(bodies) * BATCH:
        raise SystemExit(f"{label}: {path} stored {sum(stored)} of {len(bodies) * BATCH}")
    return _row(path, label, sum(stored), cpu, server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events in the imported file")
    parser.add_argument("--batches", type=int, default=40, help="POST /v1/events bodies of 1,000 events")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--rollups", default="no,yes", help="comma-separated: no (none built), yes (built first)")
    parser.add_argument("--python-fold", action="store_true",
                        help="fold every roll-up in Python (as before the set-based statement), to compare")
    parser.add_argument("--clients", type=int, default=0,
                        help="also send as many batches again from this many threads at once")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="write cProfile stats of each measured call")
    args = parser.parse_args(argv)
    if args.python_fold:
        from ratecard.store import rollups

        rollups.SET_BASED_FROM = 10**12
    total = args.events + args.batches * BATCH * (2 if args.clients else 1)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ratecard-ingest-cpu-") as folder:
        folder_path = Path(folder)
        events_file, catalog_file = folder_path / "events.jsonl", folder_path / "catalog.json"
        data.write_events(events_file, total)
        # the catalog knows the customers of the whole file (the batches' too)
        data.write_catalog(catalog_file, total)
        for kind in args.stores.split(","):
            for with_rollups in (choice == "yes" for choice in args.rollups.split(",")):
                if kind == "postgresql":
                    problem = postgres_unavailable()
                    if problem:
                        print(f"postgresql skipped: {problem}", file=sys.stderr)
                        continue
                    database = postgres_database()
                else:
                    database = sqlite_database(folder_path)
                with database as url:
                    for row in measure(kind, url, events_file, catalog_file, args.events, args.batches,
                                       with_rollups, args.profile, args.clients):
                        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
