"""The server's CPU per single-event request over HTTP, read from the kernel's per-thread counters.

`python -m bench.server_cpu [--stores sqlite,postgresql] [--path /v1/ingest/meter-data]`

Requests/s on a 2-core machine shared with other work follow the load average; the CPU the
server spends on each request does not (much). This starts `ratecard serve` on a fresh database
holding the benchmark catalog, warms it, then sends rounds of single-event requests from 4
client processes with the lean client (bench/http_client.py) and reads each server process's
CPU time per thread (/proc/PID/task/TID/schedstat, nanoseconds, every thread of every worker)
before and after each round: the difference divided by the requests is the server's CPU per
request, split into the event-loop thread (uvicorn, the lane or the full stack, the answer) and
the other threads (the group committer's writers, the thread pool). The clients' CPU is not in
it; on SQLite the database's work is (it runs in the writer thread), on PostgreSQL it is not
(the server process's backends are counted apart, as `database`, when they are this machine's).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ratecard.store import open_store
from ratecard.store.keys import create_key

from . import data
from .api_bench import RATECARD, SINGLE_CLIENTS, Server, _run_clients, _single_client, request, split
from .stores import BENCH_DATABASE, postgres_database, postgres_unavailable, sqlite_database

EVENTS = 100_000  # sizes the catalog (customers) as the api_bench run of 100,000 events does
PATHS = ("/v1/ingest/meter-data", "/v1/events")


@dataclass
class Sample:
    main_ns: int  # the event-loop threads (a process's first thread)
    other_ns: int  # every other thread (group-commit writers, thread pool)
    database_ns: int  # PostgreSQL backends serving the server (0 for SQLite: in process)
    system_ticks: int  # the server's CPU in the kernel (all threads, clock ticks)
    ticks: int  # the server's CPU, user and kernel (all threads, clock ticks)
    switches: int  # the server threads' context switches (each a sleep and a wake-up)


def _session_processes(leader: int) -> list[int]:
    """The processes of the server's session (`ratecard serve` and its workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == leader:  # the session id (started with start_new_session)
            found.append(int(entry))
    return found


def _thread_ns(pid: int) -> dict[int, int]:
    times = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return times
    for tid in tasks:
        try:
            times[int(tid)] = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except OSError:
            continue
    return times


def _postgres_backends(server_pids: set[int]) -> list[int]:
    """PostgreSQL backends whose client is a server process (by the connection's local port)."""
    ports = _local_ports(server_pids)
    backends = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if not command.startswith(b"postgres:"):
            continue
        if any(f"({port})".encode() in command for port in ports):
            backends.append(int(entry))
    return backends


def _local_ports(pids: set[int]) -> set[int]:
    """Local TCP ports of the sockets the processes hold (their database connections among them)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _thread_kernel_figures(pid: int) -> tuple[int, int, int]:
    """(kernel ticks, all ticks, context switches) of the process's threads."""
    system = total = switches = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:
            continue
        system += int(fields[12])
        total += int(fields[11]) + int(fields[12])
        switches += sum(int(line.split()[1]) for line in status.splitlines() if line.endswith("ctxt_switches")
                        or "ctxt_switches:" in line)
    return system, total, switches


def sample(leader: int) -> Sample:
    main = other = system = ticks = switches = 0
    pids = _session_processes(leader)
    for pid in pids:
        for tid, ns in _thread_ns(pid).items():
            if tid == pid:
                main += ns
            else:
                other += ns
        try:
            figures = _thread_kernel_figures(pid)
        except OSError:
            continue
        system, ticks, switches = system + figures[0], ticks + figures[1], switches + figures[2]
    database = sum(sum(_thread_ns(pid).values()) for pid in _postgres_backends(set(pids)))
    return Sample(main, other, database, system, ticks, switches)


def _load() -> float:
    return os.getloadavg()[0]


@dataclass
class Subject:
    """One server measured: this tree's `ratecard serve`, or another tree's (`--compare`)."""

    label: str
    ratecard: str


def prepare_database(url: str, folder: Path, events: int = EVENTS) -> str:
    """The benchmark catalog (sized for `events`: its customers) and one live key in a fresh
    database; returns the key."""
    from .run import apply_catalog, settle

    data.write_catalog(folder / "catalog.json", events)
    apply_catalog(url, folder / "catalog.json")
    store = open_store(url, migrate=False)
    _, key = create_key(store, "live", data.to_micros(data.NOW), "bench")
    store.dispose()
    settle(url)
    return key


def measure(kind: str, path: str, subjects: list[Subject], folder: Path, requests: int, rounds: int,
            workers: int, env: dict[str, str], profile: Path | None = None) -> list[dict]:
    """Every subject's server up at once on its own database; the rounds alternate between them
    (in turn, the order reversed every other round), so each sees the same moments of the load."""
    customers = data.customer_count(EVENTS)
    rows = []
    with ExitStack() as stack:
        servers = []
        for number, subject in enumerate(subjects):
            mine = folder / f"{number}"
            mine.mkdir()
            url = stack.enter_context(sqlite_database(mine) if kind == "sqlite"
                                      else postgres_database(f"{BENCH_DATABASE}_{number}"))
            key = prepare_database(url, mine)
            command = [subject.ratecard, "serve", "--db", url, "--workers", str(workers)]
            served_env = env
            if profile is not None:
                target = profile / f"{kind}{path.replace('/', '-')}-{subject.label}"
                target.mkdir(parents=True, exist_ok=True)
                command = [str(Path(subject.ratecard).with_name("python")), "-m", "bench.server_cpu",
                           "--serve-profiled", str(target)]
                served_env = {**env, "RATECARD_DATABASE_URL": url}
            server = stack.enter_context(Server(url, mine / "serve.log", workers=workers, env=served_env,
                                                command=command))
            request(server.port, "GET", "/healthz", b"", {})
            _run_clients(_single_client, split(400, SINGLE_CLIENTS), (server.port, key, customers, path, "warm"))
            servers.append((subject, server, key))
        for number in range(rounds):
            for subject, server, key in servers if number % 2 == 0 else reversed(servers):
                rows.append(_round(kind, path, subject, server, key, customers, requests, number,
                                   profile is not None and number == rounds - 1))
                print(rows[-1], flush=True)
    return rows


def _round(kind: str, path: str, subject: Subject, server: Server, key: str, customers: int, requests: int,
           number: int, profiled: bool) -> dict:
    assert server.process is not None
    load = _load()
    if profiled:
        os.kill(server.process.pid, signal.SIGUSR1)
    before = sample(server.process.pid)
    seconds, reports = _run_clients(_single_client, split(requests, SINGLE_CLIENTS),
                                    (server.port, key, customers, path, f"cpu{number}"))
    after = sample(server.process.pid)
    if profiled:
        os.kill(server.process.pid, signal.SIGUSR2)
        time.sleep(2)
    errors = [e for r in reports for e in r["errors"]]
    if errors:
        raise SystemExit(f"{kind}: requests failed: {errors[:3]}\n{server.log()}")
    return {
        "subject": subject.label, "store": kind, "path": path, "round": number + 1, "load": round(load, 2),
        "requests_per_second": round(requests / seconds),
        "server_us": round((after.main_ns + after.other_ns - before.main_ns - before.other_ns) / requests / 1000, 1),
        "loop_thread_us": round((after.main_ns - before.main_ns) / requests / 1000, 1),
        "other_threads_us": round((after.other_ns - before.other_ns) / requests / 1000, 1),
        "database_us": round((after.database_ns - before.database_ns) / requests / 1000, 1),
        "kernel_share": round((after.system_ticks - before.system_ticks) / max(1, after.ticks - before.ticks), 2),
        "switches_per_request": round((after.switches - before.switches) / requests, 2),
    }


def serve_profiled(argv: list[str]) -> None:
    """`python -m bench.server_cpu --serve-profiled FOLDER --host H --port P`: one uvicorn worker as
    `ratecard serve` runs it (RATECARD_DATABASE_URL from the environment), with cProfile on the
    event-loop thread and around each group-commit write, both on between SIGUSR1 and SIGUSR2
    (which writes loop.prof and writers.prof into FOLDER)."""
    import cProfile
    import signal
    import threading

    import uvicorn

    from ratecard.cli.serve import APP_FACTORY, http_stack
    from ratecard.ingest import group_commit

    folder, host, port = Path(argv[0]), argv[2], int(argv[4])
    # CPU time of the calling thread: wall-clock time would count the waits for a core on a busy machine
    loop_profile, writer_profile = cProfile.Profile(time.thread_time), cProfile.Profile(time.thread_time)
    writer_lock = threading.Lock()  # one profiler for every writer thread: one write at a time in it
    active = threading.Event()
    write = group_commit.GroupCommitter._write

    def profiled_write(self: group_commit.GroupCommitter, batch: list) -> None:
        if not active.is_set():
            write(self, batch)
            return
        with writer_lock:
            writer_profile.enable()
            try:
                write(self, batch)
            finally:
                writer_profile.disable()

    def start(*_: object) -> None:
        active.set()
        loop_profile.enable()

    def stop(*_: object) -> None:
        loop_profile.disable()
        active.clear()
        with writer_lock:
            writer_profile.dump_stats(folder / "writers.prof")
        loop_profile.dump_stats(folder / "loop.prof")

    group_commit.GroupCommitter._write = profiled_write  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    http, loop = http_stack()
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, log_level="warning", access_log=False,
                http=http, loop=loop)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-profiled"]:
        serve_profiled(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.server_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--path", action="append", choices=PATHS, help="one or both (default: both)")
    parser.add_argument("--requests", type=int, default=4000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="`ratecard serve --workers`")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    parser.add_argument("--compare", type=Path, help="another work tree (with its .venv): its server is measured "
                        "in alternate rounds with this one's")
    parser.add_argument("--profile", type=Path, help="profile the last round into this folder (loop.prof, "
                        "writers.prof; one worker, cProfile's own cost in the figures of that round)")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if "postgresql" in stores and (reason := postgres_unavailable()) is not None:
        raise SystemExit(f"PostgreSQL is unreachable ({reason}); run with --stores sqlite")
    env = dict(item.split("=", 1) for item in args.env)
    subjects = [Subject("this", RATECARD)]
    if args.compare is not None:
        subjects.append(Subject(args.compare.name, str(args.compare / ".venv" / "bin" / "ratecard")))
    rows = []
    for path in args.path or PATHS:
        for kind in stores:
            with tempfile.TemporaryDirectory(prefix="ratecard-server-cpu-") as folder:
                rows += measure(kind, path, subjects, Path(folder), args.requests, args.rounds, args.workers, env,
                                args.profile)
    print(f"{'subject':<22}{'store':<11}{'path':<24}{'server µs/request':>18}{'loop thread':>13}{'other':>8}"
          f"{'database':>10}{'requests/s':>12}{'kernel':>8}{'switches':>10}  load (medians of the rounds)")
    for path in args.path or PATHS:
        for kind in stores:
            for subject in subjects:
                mine = [r for r in rows if r["store"] == kind and r["path"] == path and r["subject"] == subject.label]
                median = {name: statistics.median(r[name] for r in mine)
                          for name in ("server_us", "loop_thread_us", "other_threads_us", "database_us",
                                       "requests_per_second", "kernel_share", "switches_per_request")}
                loads = f"{min(r['load'] for r in mine):.1f}-{max(r['load'] for r in mine):.1f}"
                print(f"{subject.label:<22}{kind:<11}{path:<24}{median['server_us']:>18.1f}"
                      f"{median['loop_thread_us']:>13.1f}{median['other_threads_us']:>8.1f}"
                      f"{median['database_us']:>10.1f}{median['requests_per_second']:>12.0f}"
                      f"{median['kernel_share']:>8.2f}{median['switches_per_request']:>10.2f}  {loads}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
