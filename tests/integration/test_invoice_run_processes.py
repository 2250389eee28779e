"""`ratecard invoices generate --workers N` and `ratecard worker --invoices` as real processes, on
both stores: the invoices are those of a run of one process, a worker killed with SIGKILL mid-run
loses and doubles nothing (its customers are taken over once its lease ran out), final numbers
stay gapless."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from ratecard.billing.run import generate_invoices
from ratecard.services.catalog import current_catalog
from ratecard.services.invoice_runs import start_run
from ratecard.store import Store, open_store
from ratecard.store.invoices import list_invoices
from ratecard.store.run_claims import get_run, item_holders, open_runs

from ..migrated import at_head
from .test_shared_invoice_run import NOW, content, numbers, prepare

RATECARD = Path(sys.executable).parent / "ratecard"
CUSTOMERS = 30
UNTIL = "2026-04-01"


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"}
    return {**env, "RATECARD_NOW": NOW.isoformat().replace("+00:00", "Z"), "NO_COLOR": "1"}


def ratecard(*args: str, db: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(RATECARD), *args, "--db", db], capture_output=True, text=True, env=environment(),
                          timeout=timeout)


def workspaces(db_url: str, tmp_path: Path) -> Store:
    """`live` for the processes, `sandbox` billed by one in-process run: the reference."""
    store = open_store(at_head(db_url))
    for env in ("live", "sandbox"):
        prepare(store, env, tmp_path, 11, CUSTOMERS, {CUSTOMERS - 1}, "next_invoice")
    version, catalog = current_catalog(store, "sandbox")
    generate_invoices(store, catalog, version, date(2026, 4, 1), NOW, environment="sandbox")
    return store


def assert_same_as_one_process(store: Store) -> None:
    assert content(store, "live") == content(store, "sandbox")
    drafts, finals = numbers(store, "live")
    reference = numbers(store, "sandbox")
    assert len(set(drafts)) == len(drafts) == len(reference[0]) and drafts[-1] == reference[0][-1]
    assert finals == reference[1]


def finalize_all(db: str) -> list[str]:
    """`finalize --due` far enough ahead that every draft is due: the final numbers, in finalizing order."""
    env = {**environment(), "RATECARD_NOW": "2026-12-31T00:00:00Z"}
    done = subprocess.run([str(RATECARD), "invoices", "finalize", "--due", "--json", "--db", db],
                          capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr
    return [invoice["number"] for invoice in json.loads(done.stdout)["finalized"]]


def children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.slow
def test_workers_bill_what_one_process_bills_and_numbers_stay_gapless(db_url: str, tmp_path: Path) -> None:
    store = workspaces(db_url, tmp_path)
    run = ratecard("invoices", "generate", "--until", UNTIL, "--workers", "2", "--chunk", "3", "--json", db=db_url)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)  # stdout is one JSON document: the workers print to stderr only
    assert report["run"]["items"] == report["run"]["done"] == CUSTOMERS  # 29 customers + the dropped one's draft
    assert report["created"] > 0 and report["removed"] == 1 and report["failures"] == []
    if not store.is_postgres:
        assert "SQLite has one writer" in run.stderr
    assert_same_as_one_process(store)
    # finalizing numbers every draft in order: gapless, each once, earlier cuts first
    finalized = finalize_all(db_url)
    assert [int(number.rsplit("-", 1)[1]) for number in finalized] == list(
        range(int(finalized[0].rsplit("-", 1)[1]), int(finalized[0].rsplit("-", 1)[1]) + len(finalized)))
    final = [invoice for invoice in list_invoices(store) if invoice.number in set(finalized)]
    by_number = sorted(final, key=lambda invoice: invoice.number)
    assert [invoice.boundary_ts for invoice in by_number] == sorted(invoice.boundary_ts for invoice in by_number)
    again = ratecard("invoices", "generate", "--until", UNTIL, "--workers", "2", "--json", db=db_url)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["created"] == 0  # nothing left to bill: final invoices are left alone


def kill_when_holding(store: Store, process: subprocess.Popen, candidates) -> tuple[int, int, list[int]]:
    """SIGKILL the first of `candidates()` (pids) caught holding claims after some items were done;
    each is frozen (SIGSTOP) while its claims are read, so none completes meanwhile.
    (pid, run id, positions it held).

    On SQLite a connection of this process stays open meanwhile: a store opens a connection per
    use, and the last connection to a WAL database to close checkpoints and removes the log under
    an exclusive lock. A process frozen in that step would hold the lock until it is killed, and
    the reads below would wait for it in vain ("database is locked" after the busy timeout)."""
    with store.engine.connect():
        return _kill_when_holding(store, process, candidates)


def _kill_when_holding(store: Store, process: subprocess.Popen, candidates) -> tuple[int, int, list[int]]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        runs = open_runs(store)
        for pid in candidates() if runs else ():
            os.kill(pid, signal.SIGSTOP)
            holders = item_holders(store, runs[0].id)
            held = [position for position, (status, worker) in holders.items()
                    if status == "claimed" and worker and worker.split(":")[1] == str(pid)]
            if held and any(status == "done" for status, _ in holders.values()):
                os.kill(pid, signal.SIGKILL)
                return pid, runs[0].id, held
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.005)
    raise AssertionError("no worker was caught holding a claim mid-run")


def assert_taken_over(store: Store, db_url: str, pid: int, run_id: int, held: list[int]) -> None:
    assert get_run(store, run_id).status == "done"
    holders = item_holders(store, run_id)
    assert all(status == "done" for status, _ in holders.values()) and len(holders) == CUSTOMERS
    assert all(holders[position][1].split(":")[1] != str(pid) for position in held)  # every one taken over
    assert_same_as_one_process(store)  # every subscription billed once: no duplicate, none missing
    finalized = finalize_all(db_url)
    digits = sorted(int(number.rsplit("-", 1)[1]) for number in finalized)
    assert digits == list(range(digits[0], digits[0] + len(digits)))


def generate_in_background(db_url: str, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [str(RATECARD), "invoices", "generate", "--until", UNTIL, "--workers", str(workers), "--chunk", "1",
         "--lease", "2", "--json", "--db", db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment())


@pytest.mark.slow
def test_generate_killed_mid_run_is_finished_by_a_worker(db_url: str, tmp_path: Path) -> None:
    """`generate` bills too: SIGKILLed while it holds claims, `ratecard worker --invoices` takes them over."""
    store = workspaces(db_url, tmp_path)
    generate = generate_in_background(db_url, 2)
    try:
        pid, run_id, held = kill_when_holding(store, generate, lambda: [generate.pid])
    finally:
        if generate.poll() is None:
            generate.kill()
        generate.communicate(timeout=60)
    # (on PostgreSQL the worker process `generate` started may take them over first)
    rescue = ratecard("worker", "--invoices", "--run", str(run_id), db=db_url)
    assert rescue.returncode == 0, rescue.stderr
    assert_taken_over(store, db_url, pid, run_id, held)


@pytest.mark.slow
def test_a_worker_process_killed_mid_run_is_taken_over(db_url: str, tmp_path: Path) -> None:
    """PostgreSQL: `generate --workers 3` starts two worker processes; one SIGKILLed mid-run, the run
    still ends with every customer billed once. SQLite: no worker process is started (one writer)."""
    store = workspaces(db_url, tmp_path)
    generate = generate_in_background(db_url, 3)
    try:
        if store.is_postgres:
            deadline = time.monotonic() + 60
            while len(children(generate.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            # `generate` frozen: it would bill most customers before its workers are up
            os.kill(generate.pid, signal.SIGSTOP)
            try:
                victim = kill_when_holding(store, generate, lambda: children(generate.pid))
            finally:
                os.kill(generate.pid, signal.SIGCONT)
        out, err = generate.communicate(timeout=240)
    finally:
        if generate.poll() is None:
            generate.kill()
    assert generate.returncode == 0, err
    report = json.loads(out)
    assert report["run"]["done"] == report["run"]["items"] == CUSTOMERS and report["run"]["unfinished"] == 0
    started = [line for line in err.splitlines() if line.startswith("worker ") and ": invoice run" in line]
    if store.is_postgres:
        pid, run_id, held = victim
        assert len(started) == 2
        assert f"worker process {pid} was killed by signal 9" in err
        assert_taken_over(store, db_url, pid, run_id, held)
    else:
        assert started == [] and "billed by this process alone, not by 3" in err
        assert_same_as_one_process(store)


def test_worker_processes_share_a_run_started_elsewhere(db_url: str, tmp_path: Path) -> None:
    """Two `ratecard worker --invoices` processes bill an open run together and close it."""
    store = workspaces(db_url, tmp_path)
    run = start_run(store, date(2026, 4, 1), NOW, "live", 2, chunk=2)
    env = {**environment(), "RATECARD_DATABASE_URL": db_url}
    workers = [subprocess.Popen([str(RATECARD), "worker", "--invoices", "--run", str(run.id)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [worker.communicate(timeout=240) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], results
    assert sum(int(err.split("stopped: ")[1].split(" customers")[0]) for _, err in results) == CUSTOMERS
    assert get_run(store, run.id).status == "done"
    assert_same_as_one_process(store)


@pytest.mark.slow
def test_worker_and_generate_refuse_what_they_cannot_do(db_url: str, tmp_path: Path) -> None:
    store = workspaces(db_url, tmp_path)
    neither = ratecard("worker", db=db_url)
    assert neither.returncode == 2 and "give --log URL" in neither.stderr and "Traceback" not in neither.stderr
    both = ratecard("worker", "--invoices", "--log", "nats://127.0.0.1:4222", db=db_url)
    assert both.returncode == 2 and "give --log URL" in both.stderr
    lone_run = ratecard("worker", "--log", "nats://127.0.0.1:4222", "--run", "1", db=db_url)
    assert lone_run.returncode == 2 and "--run goes with --invoices" in lone_run.stderr
    assert ratecard("invoices", "generate", "--until", UNTIL, "--workers", "0", db=db_url).returncode == 2
    missing = ratecard("worker", "--invoices", "--run", "99", db=db_url)
    assert missing.returncode == 2 and "no invoice run 99" in missing.stderr
    # a dry run is never shared: it writes nothing, claims included
    dry = ratecard("invoices", "generate", "--until", UNTIL, "--workers", "2", "--dry-run", "--json", db=db_url)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["dry_run"] is True and json.loads(dry.stdout)["created"] > 0
    assert "runs in this process" in dry.stderr
    assert content(store, "live") != content(store, "sandbox") and open_runs(store) == []
    # an open run is finished before another one starts
    run = start_run(store, date(2026, 4, 1), NOW, "live", 2)
    refused = ratecard("invoices", "generate", "--until", UNTIL, "--workers", "2", db=db_url)
    assert refused.returncode == 1
    assert f"invoice run {run.id} (until 2026-04-01) is still open" in refused.stderr
