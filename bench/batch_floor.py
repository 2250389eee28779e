"""The ceiling under batches: an ideal batch server and `ratecard serve` on the same load, the
bare baseline and the same rows committed per request. Run through bench/http_floor.py (its
docstring says how and what the rows mean):

    .venv/bin/python -m bench.http_floor --batches-only [--batches 100] [--rounds 2]

The load is bench/api_bench.py's `api_batch`: the events of bench/data.py sent as JSON arrays
of 1,000 (`POST /v1/events`) by 4 client processes (api_bench's `_batch_client`, one keep-alive
connection each). The ideal server (`_BatchProtocol`, `_BatchWriter`) is http_floor's protocol
server, decoding each body with msgspec straight into the bare baseline's rows and writing them
into an empty copy of events:

- SQLite: one connection per process, synchronous=FULL in WAL and the cache ratecard's store
  sets (as durable as its commits), group commit as http_floor's single-event ideal does it:
  the rows of every request waiting when a transaction starts go into it (one executemany),
  written from the event loop.
- PostgreSQL: one COPY per request in autocommit (its own durable transaction), up to 4 in
  flight per process on 4 async connections.

It answers 200 with {"received": n, "stored": n} once the commit returned.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy.engine import make_url

from ratecard.store import open_store

from . import data, server_cpu
from .api_bench import (
    BATCH_CLIENTS,
    BATCH_SIZE,
    SINGLE_CLIENTS,
    Server,
    _batch_client,
    _run_clients,
    _single_client,
    split,
)
from .baselines import COLUMNS, TABLE, bare_insert, empty_copy_of_events
from .http_floor import HEALTH, _answer, _EmptyProtocol, _GroupWriter, commit_worker, fork_workers
from .stores import fresh_database

_MICROSECOND = timedelta(microseconds=1)


class _Event(msgspec.Struct):
    """The fields the baseline's row holds; `properties` kept as the body's own bytes (the
    compact text bench/data.py writes and the baseline inserts)."""

    id: str
    customer: str
    meter: str
    timestamp: datetime
    properties: msgspec.Raw


_decode_batch = msgspec.json.Decoder(list[_Event]).decode


def rows_of_batch(body: bytes) -> list[tuple]:
    """The rows the bare baseline (data.event_rows) writes for this batch's events: no key, no
    checks, no duplicates, no catalog."""
    environment, epoch, received = data.ENVIRONMENT, data.EPOCH, data.to_micros(data.NOW)
    return [(environment, event.id, event.customer, event.meter, (event.timestamp - epoch) // _MICROSECOND,
             bytes(event.properties).decode(), received, "matched", False)
            for event in _decode_batch(body)]


def _summary(stored: int) -> bytes:
    return _answer(200, b'{"received":%d,"stored":%d}' % (stored, stored))


class _BatchProtocol(_EmptyProtocol):
    """Each complete POST body becomes rows handed to the process's writer; answered after the
    commit."""

    writer: _BatchWriter

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.parser.get_method() != b"POST":
            self.transport.write(_answer(200, HEALTH))
            return
        body, self.chunks = b"".join(self.chunks), []
        self.writer.add(rows_of_batch(body), self.transport)


class _BatchWriter(_GroupWriter):
    """http_floor's writer (same connections, same durability), fed whole requests. PostgreSQL:
    each free connection takes the oldest waiting request and COPYs it in autocommit (one
    transaction). SQLite: one connection; every request waiting goes into the next transaction,
    written from the event loop (no thread: in a thread the commit would overlap the next
    body's decoding, but measured it cost more CPU per event, the GIL hand-overs, and was no
    faster)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.copy = f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN"

    async def flush(self, connection) -> None:
        try:
            while self.pending:
                if self.postgres:
                    rows, transport = self.pending.pop(0)
                    await self.commit(connection, rows)
                    transport.write(_summary(len(rows)))
                    continue
                waiting, self.pending = self.pending, []
                await self.commit(connection, [row for rows, _ in waiting for row in rows])
                for rows, transport in waiting:
                    transport.write(_summary(len(rows)))
        finally:
            self.idle.append(connection)

    async def commit(self, connection, rows: list[tuple]) -> None:
        """`rows` in one durable transaction: a COPY in autocommit, or SQLite's executemany."""
        if self.postgres:
            async with connection.cursor() as cursor, cursor.copy(self.copy) as copy:
                for row in rows:
                    await copy.write_row(row)
        else:
            self.write_sqlite(connection, rows)

    async def close(self) -> None:
        for connection in self.idle:
            if self.postgres:
                await connection.close()
            else:
                connection.close()


def serve_batch(host: str, port: int, workers: int, url: str) -> None:
    fork_workers(workers, commit_worker, host, port, url, _BatchProtocol, _BatchWriter)


# ------------------------------------------------- the same server doing the work ratecard must do


class _RequiredProtocol(_BatchProtocol):
    """The ideal batch server plus the work no server of ratecard's may skip: each body parsed
    into events as `POST /v1/events` parses it (routes.events.parse_events), each event checked
    against the catalog by ratecard's own validator (EventValidator.check_row: fields, timestamp,
    customer, subscription, pricing), and the rows stored into ratecard's events table with its id
    guard (store.events.claim_ids_then_copy: the ids claimed in event_ids, then one COPY into the
    monthly partitions). No key check, no figures, no metrics, no roll-ups, no framework: the
    ceiling of a ratecard batch server on this machine, which ratecard's own is measured against."""

    validator: Any = None
    parse: Any = None  # routes.events.parse_events, imported before the first request

    def on_message_complete(self) -> None:
        if self.parser.get_method() != b"POST":
            self.transport.write(_answer(200, HEALTH))
            return
        body, self.chunks = b"".join(self.chunks), []
        received = data.to_micros(data.NOW)
        rows = [row for record in self.parse(body)
                if type(row := self.validator.check_row(record, data.ENVIRONMENT, received)) is tuple]
        self.writer.add(rows, self.transport)


class _RequiredWriter(_BatchWriter):
    """PostgreSQL only: each request's rows in one transaction through ratecard's id guard, up to
    4 transactions in flight per process (the ideal writer's connections, not in autocommit)."""

    async def open(self) -> None:
        await super().open()
        for connection in self.idle:
            await connection.set_autocommit(False)

    async def commit(self, connection, rows: list[tuple]) -> None:
        from ratecard.store.events import COLUMNS as EVENT_COLUMNS
        from ratecard.store.events import IDS_CLAIMED_OFF, IDS_CLAIMED_ON

        rows = sorted(rows, key=lambda row: (row[0], row[1]))  # the global order store/events.py takes ids in
        async with connection.cursor() as cursor:
            await cursor.execute(IDS_CLAIMED_ON)
            async with cursor.copy("COPY event_ids (environment, id) FROM STDIN") as copy:
                for row in rows:
                    await copy.write_row(row[:2])
            async with cursor.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    await copy.write_row(row)
            await cursor.execute(IDS_CLAIMED_OFF)
        await connection.commit()


def required_worker(host: str, port: int, url: str) -> None:
    """One process of the required-work server: the catalog read once, then `commit_worker`."""
    from ratecard.api.routes.events import parse_events
    from ratecard.ingest.validate import EventValidator
    from ratecard.services.catalog import current_catalog

    store = open_store(url, migrate=False)
    _, catalog = current_catalog(store, data.ENVIRONMENT)
    store.dispose()
    _RequiredProtocol.validator = EventValidator(catalog, data.NOW)
    _RequiredProtocol.parse = staticmethod(parse_events)
    commit_worker(host, port, url, _RequiredProtocol, _RequiredWriter)


def required_batch(url: str, folder: Path, events_file: Path, events: int, workers: int) -> dict:
    """The required-work batch server in `workers` processes on a fresh ratecard database holding
    the catalog of these events (as `ratecard_batch` prepares it)."""
    from .server_cpu import prepare_database

    folder.mkdir(parents=True, exist_ok=True)
    prepare_database(url, folder, events)
    command = [sys.executable, "-m", "bench.batch_floor", "serve-required", "--workers", str(workers), "--db", url]
    with Server("", folder / f"batch-required-{workers}.log", command=command) as server:
        return _send_batches(server, "no-key", events_file, events)


# ----------------------------------------------------------------------------- measurements


def _send_batches(server: Server, key: str, events_file: Path, events: int) -> dict:
    """api_bench's batch load: the file's events as arrays of BATCH_SIZE, dealt round-robin to
    BATCH_CLIENTS processes; every event must come back as stored. With the events/s, the CPU
    the server spent per event (its processes, and on PostgreSQL the backends of their
    connections; not the clients'), which the load average moves much less than events/s."""
    batches = -(-events // BATCH_SIZE)
    shares = [[b for b in range(batches) if b % BATCH_CLIENTS == c] for c in range(BATCH_CLIENTS)]
    before = server_cpu.sample(server.process.pid)
    seconds, reports = _run_clients(_batch_client, shares, (server.port, key, str(events_file)))
    after = server_cpu.sample(server.process.pid)
    errors = [e for r in reports for e in r["errors"]]
    stored = sum(r["stored"] for r in reports)
    if errors or stored != events:
        raise SystemExit(f"the server stored {stored} of {events} events; errors: {errors[:3]}")
    server_ns = after.main_ns + after.other_ns - before.main_ns - before.other_ns
    return {"events_per_second": round(events / seconds, 1), "seconds": round(seconds, 3),
            "cpu_us_per_event": round((server_ns + after.database_ns - before.database_ns) / events / 1000, 2),
            "database_cpu_us_per_event": round((after.database_ns - before.database_ns) / events / 1000, 2)}


def ideal_batch(url: str, folder: Path, events_file: Path, events: int, workers: int) -> dict:
    """The ideal batch server in `workers` processes, writing into an empty copy of events."""
    from .run import settle

    empty_copy_of_events(url, migrate=True)
    settle(url)
    command = [sys.executable, "-m", "bench.batch_floor", "serve", "--workers", str(workers), "--db", url]
    try:
        with Server("", folder / f"batch-ideal-{workers}.log", command=command) as server:
            result = _send_batches(server, "no-key", events_file, events)
    finally:
        stored = _drop_copy(url)
    if stored != events:
        raise SystemExit(f"the ideal batch server stored {stored} of {events} rows")
    return result


def _drop_copy(url: str) -> int:
    """Drops the copy of events; returns the rows it held."""
    store = open_store(url, migrate=False)
    with store.engine.begin() as connection:
        stored = connection.exec_driver_sql(f"SELECT count(*) FROM {TABLE}").scalar_one()
        connection.exec_driver_sql(f"DROP TABLE {TABLE}")
    store.dispose()
    return stored


def ratecard_batch(url: str, folder: Path, events_file: Path, events: int, workers: int = 2) -> dict:
    """`ratecard serve --workers N` on a fresh database holding the catalog these events bill
    (customer_count(events) customers) and one live key, warmed with single events."""
    from .server_cpu import prepare_database

    folder.mkdir(parents=True, exist_ok=True)
    key = prepare_database(url, folder, events)
    with Server(url, folder / "serve-batch.log", workers=workers) as server:
        # every worker's catalog cache, as api_bench warms it before its batches
        _, reports = _run_clients(_single_client, split(64, SINGLE_CLIENTS),
                                  (server.port, key, data.customer_count(events), "/v1/events", "warm"))
        if errors := [e for r in reports for e in r["errors"]]:
            raise SystemExit(f"ratecard refused a warm-up event: {errors[0]}")
        return _send_batches(server, key, events_file, events)


def _postmaster() -> int | None:
    """This machine's PostgreSQL server process (a `postgres` whose parent is not one), if any."""
    def name(pid: str) -> str:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return ""

    for pid in filter(str.isdigit, os.listdir("/proc")):
        if name(pid) == "postgres":
            try:
                parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue
            if name(parent) != "postgres":
                return int(pid)
    return None


def _poll_backends(postmaster: int, database: str, stop, results) -> None:
    """Every 10 ms until `stop`: the CPU (ns, /proc schedstat) of each backend connected to
    `database`; reports the CPU they spent since the first look (since their start for those
    that appeared later)."""
    def backends() -> dict[int, int]:
        found = {}
        try:
            children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        except OSError:
            return found
        for pid in children:
            try:
                if f" {database} ".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found[int(pid)] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
            except OSError:
                continue
        return found

    first = backends()
    last = dict(first)
    while not stop.wait(0.01):
        last.update(backends())
    last.update(backends())
    results.put(sum(ns - first.get(pid, 0) for pid, ns in last.items()))


class BackendCpu:
    """The CPU of the PostgreSQL backends serving `database` (this machine's server) while the
    block runs, read from a forked process: the bare baseline's backend ends with its
    connection, taking its counters along, so they are read every 10 ms while it lives. `ns`
    stays None when the server is not this machine's."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.ns: int | None = None

    def __enter__(self) -> BackendCpu:
        from .api_bench import _FORK

        self.poller = None
        postmaster = _postmaster()
        if postmaster is not None:
            self.stop, self.results = _FORK.Event(), _FORK.Queue()
            self.poller = _FORK.Process(target=_poll_backends, args=(postmaster, self.database, self.stop,
                                                                     self.results), daemon=True)
            self.poller.start()
            time.sleep(0.05)  # its first look before the block's connection opens
        return self

    def __exit__(self, *_: object) -> None:
        if self.poller is not None:
            self.stop.set()
            self.ns = self.results.get(timeout=30)
            self.poller.join(timeout=10)


def bare_batch(url: str, events: int) -> dict:
    """api_bench's baseline: the same rows by one executemany (SQLite) / COPY (PostgreSQL), one
    transaction, into an empty copy of events."""
    from .run import settle

    empty_copy_of_events(url, migrate=True)  # migrates: bare_insert copies the events table
    settle(url)
    rows = data.event_rows(events, data.to_micros(data.NOW))
    sqlite = url.startswith("sqlite")
    with BackendCpu(make_url(url).database if not sqlite else "") as backend:
        started = time.process_time()
        bare = bare_insert(url, rows)
        cpu = time.process_time() - started
    # SQLite: the database runs in this process; PostgreSQL: this process and its backend (the
    # whole call: connecting, copying the table, the COPY, the count and DROP)
    return {"events_per_second": round(events / bare["seconds"], 1), "seconds": round(bare["seconds"], 3),
            **_cpu(cpu, 0 if sqlite else backend.ns, events),
            "how": "executemany INSERT, one transaction" if sqlite else "COPY, one transaction"}


def bare_per_request(url: str, events: int) -> dict:
    """The bare baseline's rows committed BATCH_SIZE at a time, one transaction after the other,
    with the ideal server's writer and connection but no HTTP, no decoding and no concurrency:
    what committing each request durably on its own costs against one transaction for all."""
    import asyncio

    from .run import settle

    empty_copy_of_events(url, migrate=True)
    settle(url)
    rows = data.event_rows(events, data.to_micros(data.NOW))

    async def commit_each() -> float:
        writer = _BatchWriter(url)
        await writer.open()
        connection = writer.idle[0]
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH_SIZE):
            await writer.commit(connection, rows[start:start + BATCH_SIZE])
        seconds = time.perf_counter() - started
        await writer.close()
        return seconds

    sqlite = url.startswith("sqlite")
    try:
        with BackendCpu(make_url(url).database if not sqlite else "") as backend:
            started = time.process_time()
            seconds = asyncio.run(commit_each())
            cpu = time.process_time() - started
    finally:
        stored = _drop_copy(url)
    if stored != events:
        raise SystemExit(f"the per-request commits stored {stored} of {events} rows")
    return {"events_per_second": round(events / seconds, 1), "seconds": round(seconds, 3), **_cpu(
        cpu, 0 if sqlite else backend.ns, events)}


def _cpu(process_seconds: float, database_ns: int | None, events: int) -> dict:
    """CPU µs per event of this process and (PostgreSQL) its backends; None when not read."""
    if database_ns is None:
        return {"cpu_us_per_event": None, "database_cpu_us_per_event": None}
    return {"cpu_us_per_event": round((process_seconds * 1e9 + database_ns) / events / 1000, 2),
            "database_cpu_us_per_event": round(database_ns / events / 1000, 2)}


def measure_batches(stores: list[str], batches: int, rounds: int, folder: Path) -> list[dict]:
    """Per round and store, on a fresh database: ratecard, the bare baseline, the same rows
    committed per request without a server, the ideal server in 2 processes and in 1. Each row's
    ratio is to the same round's bare baseline."""
    events = batches * BATCH_SIZE
    events_file = folder / "batch-events.jsonl"
    data.write_events(events_file, events)
    try:
        return _rounds(stores, events, events_file, rounds, folder)
    finally:
        events_file.unlink(missing_ok=True)  # the servers' logs stay in `folder`


def _rounds(stores: list[str], events: int, events_file: Path, rounds: int, folder: Path) -> list[dict]:
    rows = []
    for round_number in range(1, rounds + 1):
        for store in stores:
            measured = {}
            for workers in (1, 2):  # each on a fresh database: the same events are sent again
                with fresh_database(store, folder / f"batch-serve-{workers}") as url:
                    measured[f"ratecard_batch_{store}_{workers}_worker{'s' if workers > 1 else ''}"] = ratecard_batch(
                        url, folder / f"ratecard-batch-{store}-{round_number}-{workers}", events_file, events, workers)
            if store == "postgresql":  # SQLite's ideal is below the target already
                with fresh_database(store, folder / "batch-required") as url:
                    measured["required_batch_postgresql_2_processes"] = required_batch(
                        url, folder / f"required-{round_number}", events_file, events, 2)
            with fresh_database(store, folder / "batch-floor") as url:
                measured.update({f"bare_batch_{store}": bare_batch(url, events),
                                 f"bare_per_request_{store}": bare_per_request(url, events),
                                 f"ideal_batch_{store}_2_processes": ideal_batch(url, folder, events_file, events, 2),
                                 f"ideal_batch_{store}_1_process": ideal_batch(url, folder, events_file, events, 1)})
            bare = measured[f"bare_batch_{store}"]["events_per_second"]
            for what, result in measured.items():
                row = {"round": round_number, "what": what, "events": events, **result,
                       "ratio_to_bare": round(result["events_per_second"] / bare, 3), "load": os.getloadavg()[0]}
                print(msgspec.json.encode(row).decode(), flush=True)
                rows.append(row)
    return rows


def print_batch_table(rows: list[dict]) -> None:
    print("\n| measurement | events/s (median of rounds) | ratio to the same round's bare (median) "
          "| CPU µs per event (median) |\n| --- | ---: | ---: | ---: |")
    for what in dict.fromkeys(r["what"] for r in rows):
        mine = [r for r in rows if r["what"] == what]
        rate = statistics.median(r["events_per_second"] for r in mine)
        ratio = statistics.median(r["ratio_to_bare"] for r in mine)
        cpus = [r["cpu_us_per_event"] for r in mine if r.get("cpu_us_per_event") is not None]
        cpu = f"{statistics.median(cpus):.2f}" if cpus else "(not read)"
        print(f"| {what} | {rate:,.0f} | {ratio:.3f} | {cpu} |")


def main(argv: list[str] | None = None) -> int:
    """`serve`: the ideal batch server process tree this benchmark starts."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.batch_floor")
    parser.add_argument("command", choices=["serve", "serve-required"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", required=True, help="the database holding the empty copy of events")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "serve-required":
        fork_workers(args.workers, required_worker, args.host, args.port, args.db)
    else:
        serve_batch(args.host, args.port, args.workers, args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
