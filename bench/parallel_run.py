"""The invoice run shared by worker processes (`invoices generate --workers 2`) against the same run
in one process (`invoices generate`), both as a user starts them: the `ratecard` command, timed
from start to exit, on the same database (its drafts removed between runs), alternating, the
faster of two rounds each.

value = events/s with --workers 2, baseline = events/s of one process measured in the same run,
ratio = the speed-up. Target 1.0 on PostgreSQL (sharing must not make the run slower on this
2-core machine, where the database server competes with the workers for the same cores); on
SQLite, which has one writer, `--workers 2` runs one worker process, so the ratio is the cost of
sharing (planning the items, a process, claims): target 0.8.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from ratecard.store import open_store

from . import data

ROUNDS = 2
TARGETS = {"postgresql": 1.0, "sqlite": 0.8}


def _forget_invoices(url: str) -> None:
    """Back to no invoice at all, so each run creates every draft again."""
    store = open_store(url, migrate=False)
    try:
        with store.engine.begin() as connection:
            for table in ("invoice_lines", "invoices", "draft_sequences", "invoice_run_reports",
                          "invoice_run_items", "invoice_runs"):
                connection.execute(text(f"DELETE FROM {table}"))
    finally:
        store.dispose()


def _generate(url: str, workers: int) -> tuple[float, dict]:
    command = [str(Path(sys.executable).parent / "ratecard"), "invoices", "generate", "--until",
               data.UNTIL.isoformat(), "--json"] + (["--workers", str(workers)] if workers > 1 else [])
    env = {**os.environ, "RATECARD_DATABASE_URL": url, "RATECARD_NOW": data.NOW.isoformat()}
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr)
        raise SystemExit(f"`ratecard invoices generate --workers {workers}` failed (exit {completed.returncode})")
    return seconds, json.loads(completed.stdout)


def run_parallel_benchmark(kind: str, url: str, events: int, settle: Callable[[str], None],
                           log: Callable[[str], None]) -> list[dict]:
    """On a database holding the core suite's catalog and events (nothing invoiced yet)."""
    customers = data.customer_count(events)
    times: dict[int, list[float]] = {1: [], 2: []}
    created: dict[int, int] = {}
    for _ in range(ROUNDS):
        for workers in (1, 2):
            _forget_invoices(url)
            settle(url)
            seconds, report = _generate(url, workers)
            times[workers].append(seconds)
            created[workers] = report["created"]
            log(f"{kind}: invoices generate --workers {workers}: {seconds:.2f}s ({report['created']:,} drafts)")
    if created[1] != created[2] or created[1] != 2 * customers:
        raise SystemExit(f"{kind}: one process created {created[1]} drafts, two workers {created[2]}, "
                         f"expected {2 * customers}")
    one, two = min(times[1]), min(times[2])
    return [{
        "name": f"invoice_run_workers2.{kind}", "value": round(events / two, 1), "unit": "events/s",
        "baseline": round(events / one, 1), "ratio": round(one / two, 3), "target": TARGETS[kind],
        "detail": {"events": events, "subscriptions": customers, "invoices": created[2],
                   "seconds_workers_2": [round(s, 3) for s in times[2]],
                   "seconds_one_process": [round(s, 3) for s in times[1]],
                   "worker_processes": 2 if kind == "postgresql" else 1,
                   "baseline": "`ratecard invoices generate` in one process, same database, same run",
                   "command": "ratecard invoices generate --until 2026-11-01 --workers 2 --json"},
    }]
