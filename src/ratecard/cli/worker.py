"""`ratecard worker`: store the events `ratecard serve --log` put in the event log (NATS JetStream);
with `--invoices`, help with invoice runs instead (cli/invoice_run.py).

Run as many as the database takes: they share one durable pull consumer, each pulls a batch,
stores it through the same use case as the embedded path and acknowledges it after the commit.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from .common import MAX_ID, DbOption, check_output, fail, masked_url, store_for
from .console import err, say

# the defaults of ratecard.ingest.log, repeated so `ratecard --help` does not import the services
DEFAULT_STREAM = "RATECARD_EVENTS"
DEFAULT_DEDUP_WINDOW = 600.0
DEFAULT_ACK_WAIT = 30.0

LogOption = Annotated[str | None, typer.Option(
    "--log", help="Event log URL (nats://host:4222, JetStream enabled): answer once the log persisted a batch; "
                  "`ratecard worker` stores it. Without it, events are stored inside the request.")]
LogStreamOption = Annotated[str, typer.Option("--log-stream", help="JetStream stream name (subjects <name>.<env>).")]
DedupOption = Annotated[float, typer.Option("--log-dedup-window", help="Seconds a resent event id is dropped by the log.")]


def use_log(url: str, stream: str, dedup_window: float) -> None:
    """`serve --log`: create or check the stream, then hand the settings to the server processes."""
    from ..services.errors import ServiceError
    from ..services.event_log import log_settings, prepare_log

    try:
        settings = log_settings(url, stream, dedup_window)
        os.environ.update(prepare_log(settings))  # read by each server process (api.app.app_from_environment)
    except ServiceError as exc:
        fail(exc.message)
    say(err, f"event log: {url}, stream {stream} (answers once JetStream persisted a batch; "
             "run `ratecard worker` to store the events)")


def worker(
    log: Annotated[str | None, typer.Option("--log", help="Event log URL (nats://host:4222): store its events.")]
    = None,
    db: DbOption = None,
    log_stream: LogStreamOption = DEFAULT_STREAM,
    log_dedup_window: DedupOption = DEFAULT_DEDUP_WINDOW,
    batch: Annotated[int, typer.Option("--batch", min=1, max=10_000, help="Events pulled per batch.")] = 1000,
    wait: Annotated[float, typer.Option("--wait", min=0.001, max=60,
                                        help="Seconds a pull waits for its batch to fill.")] = 0.05,
    ack_wait: Annotated[float, typer.Option("--ack-wait", min=1, max=3600,
                                            help="Seconds before an unacknowledged batch is redelivered to "
                                                 "another worker (set when the consumer is created).")] = DEFAULT_ACK_WAIT,
    stats: Annotated[Path | None, typer.Option("--stats", help="Write the counts and event-to-billable "
                                                               "latency (JSON) to this file, at most every second "
                                                               "and on exit.")] = None,
    invoices: Annotated[bool, typer.Option("--invoices", help="Help with invoice runs instead: claim customers "
                                                              "of the open runs (`invoices generate --workers N`) "
                                                              "and bill them.")] = False,
    run: Annotated[int | None, typer.Option("--run", min=1, max=MAX_ID, help="With --invoices: only this run; exit once it "
                                                                "is billed.")] = None,
    poll: Annotated[float, typer.Option("--poll", min=0.05, max=60, help="With --invoices: seconds between two "
                                                                         "looks for open runs.")] = 1.0,
) -> None:
    """Store the events of the event log (NATS JetStream) in the database (--log), or help with invoice runs
    (--invoices); stop with Ctrl-C or SIGTERM."""
    from ..services.errors import ServiceError
    from ..services.event_log import WorkerStats, log_settings, run_worker
    from ..store.db import resolve_url

    if invoices == (log is not None):
        fail("give --log URL (store the event log's events) or --invoices (help with invoice runs); "
             "run one worker process for each")
    if run is not None and not invoices:
        fail("--run goes with --invoices")
    if invoices:
        from .invoice_run import invoice_worker

        invoice_worker(db, run, poll)
        return
    assert log is not None
    url = resolve_url(db)
    if stats is not None:
        check_output("--stats", stats, url)  # a directory or the database: refused before anything runs
    try:
        settings = log_settings(log, log_stream, log_dedup_window, ack_wait)
    except ServiceError as exc:
        fail(exc.message)
    last_write = [0.0]

    def write_stats(current: WorkerStats, force: bool = False) -> None:
        if stats is None or (not force and time.monotonic() - last_write[0] < 1.0):
            return
        last_write[0] = time.monotonic()
        partial = stats.with_suffix(stats.suffix + ".tmp")
        partial.write_text(json.dumps(current.as_dict()), encoding="utf-8")
        partial.replace(stats)

    import asyncio  # here, not at the top: every `ratecard` command imports this module

    async def main() -> WorkerStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run_worker(store, settings, batch=batch, wait=wait, stop=stop, on_batch=write_stats)

    with store_for(url) as store:
        say(err, f"worker: stream {log_stream} on {log}, database {masked_url(url)}, batches of {batch}")
        try:
            done = asyncio.run(main())
        except ServiceError as exc:
            fail(exc.message)
    write_stats(done, force=True)
    figures = done.as_dict()
    latency = figures["latency_ms"]
    say(err, f"worker stopped: {done.consumed} consumed, {done.stored} stored, {done.duplicates} duplicates, "
             f"{done.rejected} rejected; event-to-billable p50 {latency['p50']} ms, p99 {latency['p99']} ms")
