"""The ceilings of the HTTP benchmarks: ideal servers and ratecard against the bare baselines.

    .venv/bin/python -m bench.http_floor                  # single events, then batches (both stores)
    .venv/bin/python -m bench.http_floor --single-only    # [--requests 4000]
    .venv/bin/python -m bench.http_floor --batches-only   # [--batches 100]
    options: [--stores sqlite,postgresql] [--rounds 2]

Single events. `bench/api_bench.py` compares ratecard's single-event requests/s (4 client
processes, one request in flight each) with 4 processes doing a bare INSERT + COMMIT per row.
This asks how far any Python HTTP server could get on the same 2 cores, by measuring, in the
same run and with the same 4 lean clients (bench/http_client.py) and the same request bodies:

- `asgi_empty`: uvicorn as `ratecard serve --workers 2` runs it (httptools, uvloop, the same
  shared listener with TCP_NODELAY), serving an ASGI app that reads the body and answers 201
  with a fixed JSON body: no checks, no database, no commit.
- `protocol_empty`: no framework at all: 2 processes, each an uvloop `asyncio.Protocol` fed by
  httptools' C parser on a shared SO_REUSEPORT port, answering the same fixed 201. The least
  Python can do per request.
- `bare_row_commit`, per store: the baseline itself (4 processes, INSERT + COMMIT per row on
  an empty copy of events, as durable as the server's commits).
- `ideal_group_commit`, per store, in 2 processes and in 1: the least a server that stores each
  event durably can do. The same protocol server turns the request's event into the baseline's
  row (no key, no checks, no duplicates, no catalog) and writes it into the same empty copy of
  events, with group commit and no threads: the rows that arrived while a transaction was in
  flight go into the next one, written from the event loop (PostgreSQL: an async connection, one
  multi-row INSERT in autocommit, up to 4 transactions in flight per process, since the database
  merges the flushes of concurrent commits itself; SQLite: one transaction at a time).
- `ratecard_serve`, per store, with `--workers 1` (the default: one group committer merging
  every client's requests) and `--workers 2`: `ratecard serve` itself on a fresh database holding
  the benchmark catalog, answering the same requests.

A server that stores the event and commits it durably can only be slower than its empty
counterpart, and any server that checks the event can only be slower than the ideal one: when
the ideal server's requests/s is below the bare baseline, the ratio 1.0 of single events to the
bare baseline is out of reach here whatever a server does with the event.

Batches (bench/batch_floor.py). `api_bench`'s `api_batch` sends the events of bench/data.py as
JSON arrays of 1,000 (`POST /v1/events`) from 4 client processes to `ratecard serve --workers
2` and compares the events/s with one bare executemany INSERT (SQLite) / COPY (PostgreSQL) of
the same rows in one transaction; its target is 0.7 of that. Per store, on a fresh database,
with the same clients (api_bench's) and the same bodies (--batches of 1,000 events):

- `ratecard_batch`: `ratecard serve --workers 1` and `--workers 2`, each on a fresh database
  holding the catalog of these events.
- `required_batch` (PostgreSQL): the ideal batch server doing the work ratecard may not skip:
  each body parsed as `POST /v1/events` parses it, each event checked by ratecard's validator
  against the catalog, the rows stored through ratecard's id guard into the monthly partitions
  (bench/batch_floor.py, `_RequiredProtocol`). No key, figures, metrics or framework: what any
  ratecard batch server could reach here.
- `bare_batch`: api_bench's baseline, the same rows in one transaction (bench/baselines.py).
- `bare_per_request`: no server: the same rows committed 1,000 at a time, one transaction after
  the other, with the ideal server's writer (a diagnosis: what answering each request only
  after its own durable commit costs, before any HTTP; servers overlap requests, so on
  PostgreSQL, which commits them side by side, they can do better than it).
- `ideal_batch`, in 2 processes and in 1: the same protocol server decoding each body with
  msgspec straight into the baseline's rows (no key, no validation, no duplicates, no catalog)
  and writing them durably into an empty copy of events before answering: SQLite executemany,
  group-committed, synchronous=FULL in WAL; PostgreSQL one COPY per request, its own transaction.

Each batch row gives events/s, its ratio to the same round's bare baseline, and the CPU per
event (a server's processes with the PostgreSQL backends of their connections; the bare
baseline's process with its backend), which a shared machine's load moves much less than
events/s. The bare baseline works on one core (and its backend), the servers on both, so the
CPU figures say where the work is, not the events/s a quiet machine gives.

A server must at least receive, decode and durably commit each request, so the ideal batch
server is the ceiling for any server here: **if it stays below 0.7 of bare, the 0.7 target is
out of reach for any server on this machine**, and ratecard's ratio is to be read against the
ideal's rather than against 0.7.

Prints one JSON object per measurement and a table for each part.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import socket
import sys
import tempfile
from pathlib import Path

from ratecard.store import open_store

from .api_bench import (
    SINGLE_CLIENTS,
    Server,
    _bare_single_client,
    _run_clients,
    _single_client,
    percentile,
    split,
)
from .baselines import COLUMNS, TABLE, empty_copy_of_events
from .stores import fresh_database, postgres_unavailable

FIXED = b'{"received":1,"stored":1}'
HEALTH = b'{"status":"ok"}'


def _answer(status: int, body: bytes) -> bytes:
    reason = b"Created" if status == 201 else b"OK"
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
            % (status, reason, len(body))) + body


async def _empty_asgi(scope, receive, send) -> None:
    """Read the whole body, answer a fixed JSON: the cost of the HTTP/ASGI stack alone."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    post = scope["method"] == "POST"
    body = FIXED if post else HEALTH
    await send({"type": "http.response.start", "status": 201 if post else 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _empty_app():
    return _empty_asgi


def serve_asgi(host: str, port: int, workers: int) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from ratecard.cli.serve import _tcp_listener, http_stack

    http, loop = http_stack()
    config = uvicorn.Config("bench.http_floor:_empty_app", factory=True, host=host, port=port, workers=workers,
                            log_level="warning", access_log=False, http=http, loop=loop)
    Multiprocess(config, sockets=[_tcp_listener(host, port)]).run()


class _EmptyProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, parsed by httptools; every complete request gets the fixed answer."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpRequestParser(self)
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, chunk: bytes) -> None:
        self.parser.feed_data(chunk)

    def on_message_complete(self) -> None:
        post = self.parser.get_method() == b"POST"
        self.transport.write(_answer(201, FIXED) if post else _answer(200, HEALTH))


def _protocol_worker(host: str, port: int) -> None:
    import uvloop

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_EmptyProtocol, host, port, reuse_port=True)
        await server.serve_forever()

    uvloop.run(main())


def fork_workers(workers: int, target, *args) -> None:
    """`workers` forked processes each running target(*args) (they share the port through
    SO_REUSEPORT); returns when all have ended."""
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                target(*args)
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)


def serve_protocol(host: str, port: int, workers: int) -> None:
    fork_workers(workers, _protocol_worker, host, port)


class _CommitProtocol(_EmptyProtocol):
    """The least a server that stores each event durably can do: the request's one event becomes a
    row (no key, no checks, no duplicate handling), and every row that arrived while the previous
    commit was in flight goes into the next transaction (group commit with no thread hand-off:
    the event loop writes). The answer is sent once the row's transaction committed."""

    writer: _GroupWriter

    def on_body(self, body: bytes) -> None:
        self.body = getattr(self, "body", b"") + body

    def on_message_complete(self) -> None:
        if self.parser.get_method() != b"POST":
            self.transport.write(_answer(200, HEALTH))
            return
        body, self.body = getattr(self, "body", b""), b""
        self.writer.add(_row_of(body), self.transport)


def _row_of(body: bytes) -> tuple:
    """The row bench.api_bench's bare baseline writes for this single-event request."""
    from datetime import datetime

    import orjson

    from . import data

    event = orjson.loads(body)[0]
    ts = datetime.fromisoformat(event["timestamp"])
    micros = data.to_micros(ts)
    return (data.ENVIRONMENT, event["id"], event["customer"], event["meter"], micros,
            orjson.dumps(event["properties"]).decode(), data.to_micros(data.NOW), "matched", False)


class _GroupWriter:
    """Rows waiting for a transaction. PostgreSQL: up to CONNECTIONS transactions in flight per
    process (the database merges the flushes of concurrent commits itself, so serializing them
    here would only add waits); each free connection takes every row waiting. SQLite: one writer,
    one transaction at a time, written on the loop."""

    CONNECTIONS = 4

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith("postgresql")
        self.pending: list[tuple[tuple, object]] = []
        self.idle: list = []
        marks = ", ".join(["%s" if self.postgres else "?"] * len(COLUMNS))
        self.insert_head = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)})"
        self.values = f"({marks})"
        self.insert = f"{self.insert_head} VALUES {self.values}"

    async def open(self) -> None:
        if self.postgres:
            import psycopg
            from sqlalchemy.engine import make_url

            url = make_url(self.url)
            for _ in range(self.CONNECTIONS):
                self.idle.append(await psycopg.AsyncConnection.connect(
                    host=url.host, port=url.port or 5432, user=url.username, dbname=url.database, autocommit=True))
        else:
            import sqlite3

            # the cache as large as ratecard's store sets it (ratecard.store.db): a batch of
            # rows does not spill dirty pages into the WAL before its commit
            connection = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=60000", "cache_size=-262144"):
                connection.execute(f"PRAGMA {pragma}")
            self.idle.append(connection)

    def add(self, row: tuple, transport: object) -> None:
        self.pending.append((row, transport))
        if self.idle:
            asyncio.get_running_loop().create_task(self.flush(self.idle.pop()))

    async def flush(self, connection) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                rows = [row for row, _ in batch]
                if self.postgres:  # one statement in autocommit: one round trip, its own durable commit
                    values = ", ".join([self.values] * len(rows))
                    await connection.execute(f"{self.insert_head} VALUES {values}",
                                             [value for row in rows for value in row], prepare=False)
                else:
                    self.write_sqlite(connection, rows)
                for _, transport in batch:
                    transport.write(_answer(201, FIXED))
        finally:
            self.idle.append(connection)

    def write_sqlite(self, connection, rows: list[tuple]) -> None:
        """One SQLite transaction holding `rows`, committed durably (synchronous=FULL). With
        BENCH_FLOOR_WRITELOCK=1 the processes take turns through an flock on a file next to the
        database first, as ratecard's writers do (ratecard.store.write_lock), instead of meeting
        in SQLite's busy handler, which sleeps 1, 2, 5 ms... between tries."""
        lock = _write_lock(self.url)
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(self.insert, rows)
            connection.execute("COMMIT")
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)


_LOCKS: dict[str, int] = {}


def _write_lock(url: str) -> int | None:
    """This process's descriptor of the SQLite database's lock file, when BENCH_FLOOR_WRITELOCK=1."""
    if os.environ.get("BENCH_FLOOR_WRITELOCK") != "1":
        return None
    if url not in _LOCKS:
        _LOCKS[url] = os.open(os.path.abspath(url.removeprefix("sqlite:///")) + "-writelock", os.O_RDWR | os.O_CREAT)
    return _LOCKS[url]


def commit_worker(host: str, port: int, url: str, protocol: type = _CommitProtocol,
                  writer_class: type = _GroupWriter) -> None:
    """One server process: `protocol` on the shared port, every connection handing its rows to
    the process's one `writer_class`."""
    import uvloop

    async def main() -> None:
        writer = writer_class(url)
        await writer.open()
        protocol.writer = writer
        server = await asyncio.get_running_loop().create_server(protocol, host, port, reuse_port=True)
        await server.serve_forever()

    uvloop.run(main())


def serve_commit(host: str, port: int, workers: int, url: str) -> None:
    fork_workers(workers, commit_worker, host, port, url)


def ideal_server(url: str, folder: Path, requests: int, workers: int = 2) -> dict:
    """The ideal group-commit server (`_CommitProtocol`) writing into an empty copy of events, as
    the bare baseline does."""
    empty_copy_of_events(url, migrate=True)
    command = [sys.executable, "-m", "bench.http_floor", "serve", "commit", "--workers", str(workers), "--db", url]
    try:
        with Server("", folder / "floor-commit.log", command=command) as server:
            result = _clients(server.port, requests)
    finally:
        store = open_store(url, migrate=False)
        with store.engine.begin() as connection:
            stored = connection.exec_driver_sql(f"SELECT count(*) FROM {TABLE}").scalar_one()
            connection.exec_driver_sql(f"DROP TABLE {TABLE}")
        store.dispose()
    if stored != requests:
        raise SystemExit(f"the ideal server stored {stored} of {requests} rows")
    return result


def ratecard_server(url: str, folder: Path, requests: int, workers: int = 2) -> dict:
    """`ratecard serve --workers N` itself, on a database holding the benchmark catalog, answering
    the same one-event `POST /v1/events` requests (after a warm-up)."""
    from .server_cpu import prepare_database

    folder.mkdir(parents=True, exist_ok=True)
    key = prepare_database(url, folder)
    with Server(url, folder / "serve.log", workers=workers) as server:
        _clients(server.port, 400, key, "warm")
        return _clients(server.port, requests, key)


def _clients(port: int, requests: int, key: str = "no-key", prefix: str = "floor") -> dict:
    customers = 1_000  # data.customer_count of the 100,000-event sizing ratecard_server prepares
    seconds, reports = _run_clients(_single_client, split(requests, SINGLE_CLIENTS),
                                    (port, key, customers, "/v1/events", prefix))
    errors = [e for r in reports for e in r["errors"]]
    if errors:
        raise SystemExit(f"the empty server answered {errors[0]}")
    latencies = [value for r in reports for value in r["latencies"]]
    return {"requests_per_second": round(requests / seconds, 1), "p50_ms": round(percentile(latencies, .5) * 1000, 3),
            "p99_ms": round(percentile(latencies, .99) * 1000, 3)}


def empty_server(kind: str, folder: Path, requests: int, workers: int = 2) -> dict:
    command = [sys.executable, "-m", "bench.http_floor", "serve", kind, "--workers", str(workers)]
    with Server("", folder / f"floor-{kind}.log", command=command) as server:
        return _clients(server.port, requests)


def bare_row_commit(url: str, requests: int) -> dict:
    empty_copy_of_events(url, migrate=True)  # migrates: the events table to copy
    seconds, reports = _run_clients(_bare_single_client, split(requests, SINGLE_CLIENTS), (url, 1_000))
    latencies = [value for r in reports for value in r["latencies"]]
    store = open_store(url, migrate=False)
    with store.engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE {TABLE}")
    store.dispose()
    return {"requests_per_second": round(requests / seconds, 1), "p50_ms": round(percentile(latencies, .5) * 1000, 3),
            "p99_ms": round(percentile(latencies, .99) * 1000, 3),
            "durability": sorted({r["durability"] for r in reports})}


def measure(stores: list[str], requests: int, rounds: int) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="ratecard-floor-"))
    rows = []
    for round_number in range(1, rounds + 1):
        for kind in ("asgi", "protocol"):
            row = {"round": round_number, "what": f"{kind}_empty", **empty_server(kind, folder, requests),
                   "load": os.getloadavg()[0]}
            print(json.dumps(row), flush=True)
            rows.append(row)
        for store in stores:
            measured = {}
            # one process is one group committer merging every client's requests; two split them
            # (and on SQLite meet in its busy handler): both are measured, each on a fresh database
            for workers in (1, 2):
                with fresh_database(store, folder / f"serve-{workers}") as url:
                    measured[f"ratecard_serve_{store}_{workers}_worker{'s' if workers > 1 else ''}"] = \
                        ratecard_server(url, folder / f"ratecard-{store}-{round_number}-{workers}", requests,
                                        workers=workers)
            with fresh_database(store, folder / "floor") as url:
                measured.update({
                    f"bare_row_commit_{store}": bare_row_commit(url, requests),
                    f"ideal_group_commit_{store}_2_processes": ideal_server(url, folder, requests, 2),
                    f"ideal_group_commit_{store}_1_process": ideal_server(url, folder, requests, 1),
                })
            for what, result in measured.items():
                row = {"round": round_number, "what": what, **result, "load": os.getloadavg()[0]}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["serve"]:  # the server processes this benchmark starts
        parser = argparse.ArgumentParser(prog="python -m bench.http_floor serve")
        parser.add_argument("kind", choices=["asgi", "protocol", "commit"])
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--db", help="commit: the database holding the copy of events")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, required=True)
        args = parser.parse_args(argv[1:])
        if args.kind == "commit":
            serve_commit(args.host, args.port, args.workers, args.db)
        else:
            (serve_asgi if args.kind == "asgi" else serve_protocol)(args.host, args.port, args.workers)
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.http_floor", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4_000, help="single-event requests per measurement")
    parser.add_argument("--batches", type=int, default=100, help="batches of 1,000 events per batch measurement")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=2, help="measurements of each, interleaved")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--single-only", action="store_true", help="only the single-event measurements")
    only.add_argument("--batches-only", action="store_true", help="only the batch measurements")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if "postgresql" in stores and (reason := postgres_unavailable()) is not None:
        raise SystemExit(f"PostgreSQL is unreachable ({reason}); run with --stores sqlite")
    single = [] if args.batches_only else measure(stores, args.requests, args.rounds)
    batches = []
    if not args.single_only:
        from .batch_floor import measure_batches, print_batch_table

        batches = measure_batches(stores, args.batches, args.rounds, Path(tempfile.mkdtemp(prefix="ratecard-floor-")))
    if single:
        print("\n| measurement | requests/s (median of rounds) | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |")
        for what in dict.fromkeys(r["what"] for r in single):
            mine = sorted((r for r in single if r["what"] == what), key=lambda r: r["requests_per_second"])
            middle = mine[len(mine) // 2]
            print(f"| {what} | {middle['requests_per_second']:,.0f} | {middle['p50_ms']} | {middle['p99_ms']} |")
    if batches:
        print_batch_table(batches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
