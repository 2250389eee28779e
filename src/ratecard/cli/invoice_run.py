"""`ratecard invoices generate --workers N` (a run shared by N worker processes) and
`ratecard worker --invoices` (a process that helps with shared runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import date, datetime

import typer

from .common import ENVIRONMENT, fail, masked_url, progress, store_for
from .console import err, say


def generate_shared(limit: date | datetime, moment: datetime, db: str | None, workers: int, lease: float,
                    chunk: int | None, json_output: bool) -> dict:
    """Plan the run, start `workers - 1` worker processes and be the last one: this process claims
    and bills too, then waits for the items others hold, taking over those of a worker that died
    (once their lease ran out). The run's report."""
    from ..services.invoice_runs import progress_of, run_report, start_run, work_on_run
    from ..store.db import resolve_url

    url = resolve_url(db)
    with store_for(url) as store:
        run = start_run(store, limit, moment, ENVIRONMENT, workers, lease=lease, chunk=chunk)
        processes = workers
        if not store.is_postgres:
            say(err, f"SQLite has one writer: the run is billed by this process alone, not by {workers} "
                     "(PostgreSQL runs the workers in parallel)")
            processes = 1
        children = [_spawn(url, run.id) for _ in range(processes - 1)]
        with progress(json_output) as bar:
            # PostgreSQL: the customers billed by every worker; SQLite: the cuts this process priced
            task = bar.add_task(f"invoice run {run.id}: " + ("customers billed" if processes > 1 else
                                                             "pricing invoices"), total=None)

            def show(_items: int) -> None:
                now = progress_of(store, run.id)
                bar.update(task, completed=now.done + now.failed, total=run.items)

            counting = {} if processes > 1 else {
                "on_total": lambda n: bar.update(task, total=(bar.tasks[0].total or 0) + n),
                "on_progress": lambda n: bar.advance(task, n)}
            try:
                work_on_run(store, run, wait_for_others=True, on_batch=show if processes > 1 else None,
                            **counting)
                for child in children:  # each exits once nothing is left to claim
                    child.wait()
            except KeyboardInterrupt:
                _stop(children)
                raise
            if processes > 1:
                show(0)
        for child in children:
            if child.returncode:
                cause = (f"was killed by signal {-child.returncode}" if child.returncode < 0
                         else f"exited with code {child.returncode}")
                say(err, f"worker process {child.pid} {cause}; its customers were billed by the others")
        return run_report(store, run)


def _spawn(url: str, run_id: int) -> subprocess.Popen:
    """One `ratecard worker --invoices --run ID` on this interpreter; the database URL goes through
    the environment, never the command line (where `ps` shows it)."""
    env = {**os.environ, "RATECARD_DATABASE_URL": url}
    return subprocess.Popen([sys.executable, "-m", "ratecard", "worker", "--invoices", "--run", str(run_id)],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


def invoice_worker(db: str | None, run_id: int | None, poll: float) -> None:
    """Help with the open invoice runs (or only run `run_id`, then exit) until Ctrl-C or SIGTERM."""
    from ..services.errors import ServiceError
    from ..services.invoice_runs import serve_runs
    from ..store.db import resolve_url

    url = resolve_url(db)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with store_for(url) as store:
        scope = f"invoice run {run_id}" if run_id is not None else "every open invoice run"
        say(err, f"worker {os.getpid()}: {scope}, database {masked_url(url)}")
        try:
            tally = serve_runs(store, stop, run_id=run_id, poll=poll)
        except ServiceError as exc:
            fail(exc.message)
    lost = f", {tally.lost} taken over by another worker first" if tally.lost else ""
    say(err, f"worker {os.getpid()} stopped: {tally.items} customers billed in {tally.batches} batches{lost}"
             + (f"; {len(tally.errors)} batch(es) failed and were given back" if tally.errors else ""))
    if tally.errors:
        raise typer.Exit(1)
