"""Where a single event's time goes: the stages of each lane request, timed inside the server.

    .venv/bin/python -m bench.single_stages [--stores sqlite,postgresql] [--requests 2000]

`bench/server_cpu.py` says how much CPU a request costs; this says how long each request waits
where. It starts one `ratecard serve` worker (as `bench/server_cpu.py --profile` does: uvicorn
with the application factory, the benchmark catalog on a fresh database) with timestamps
(`time.perf_counter`) taken at each step of the single-event lane and the group committer, sends
the same single-event requests from 4 client processes as `bench/api_bench.py`, and prints each
stage's median and 90th percentile:

- `checks`: from the lane's start (headers read) to the row handed to the committer (body, JSON,
  key, catalog, the event's checks);
- `to hand-over`: until the event loop hands its turn's rows to the writers (the end of the turn);
- `to writer`: until a writer thread takes them (its wake-up, the GIL);
- `transaction`: the write, from the batch taken to its commit;
- `answer`: from the commit to the answer sent (the loop woken, the stored event rendered, sent).

The instrumented server runs in its own process and writes its records when it gets SIGUSR2.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

STAGES = (("checks", "start", "wait"), ("to hand-over", "wait", "hand"), ("to writer", "hand", "picked"),
          ("transaction", "picked", "committed"), ("answer", "committed", "end"), ("whole request", "start", "end"))


def serve_instrumented(argv: list[str]) -> None:
    """`python -m bench.single_stages --serve OUT --host H --port P`: one uvicorn worker running
    ratecard (RATECARD_DATABASE_URL from the environment), each lane request's stages timed."""
    import asyncio
    import contextvars

    import uvicorn

    from ratecard.api import lane
    from ratecard.cli.serve import APP_FACTORY, http_stack
    from ratecard.ingest import group_commit

    out, host, port = Path(argv[0]), argv[2], int(argv[4])
    clock = time.perf_counter
    current: contextvars.ContextVar[dict] = contextvars.ContextVar("stages")
    records: list[dict] = []
    committer = group_commit.GroupCommitter
    wait, hand_over, next_batch, answer = (committer.wait, committer._hand_over, committer._next_batch,
                                           group_commit._answer)
    lane_call = lane.SingleEventLane.__call__

    def timed_wait(self, *args, **kwargs):  # on the loop: the request's job is the last one held
        future = wait(self, *args, **kwargs)
        stages = current.get(None)
        if stages is not None:
            stages["wait"] = clock()
            self._held_by_loop[asyncio.get_running_loop()][-1].stages = stages
        return future

    def mark(jobs, name: str) -> None:
        now = clock()
        for job in jobs or []:
            if hasattr(job, "stages"):
                job.stages[name] = now

    def timed_hand_over(self, held):
        mark(held, "hand")
        return hand_over(self, held)

    def timed_next_batch(self):
        batch = next_batch(self)
        mark(batch, "picked")
        return batch

    def timed_answer(answers):
        mark([job for job, _ in answers], "committed")
        return answer(answers)

    async def timed_call(self, scope, receive, send):
        stages = {"start": clock()}
        token = current.set(stages)
        try:
            await lane_call(self, scope, receive, send)
        finally:
            current.reset(token)
        stages["end"] = clock()
        if "wait" in stages:
            records.append(stages)

    committer.wait, committer._hand_over, committer._next_batch = timed_wait, timed_hand_over, timed_next_batch
    group_commit._answer = timed_answer
    lane.SingleEventLane.__call__ = timed_call

    def dump(*_: object) -> None:
        out.write_text(json.dumps(records), encoding="utf-8")

    signal.signal(signal.SIGUSR2, dump)
    http, loop = http_stack()
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, log_level="warning", access_log=False,
                http=http, loop=loop)


def measure(kind: str, requests: int, path: str) -> list[dict]:
    from .api_bench import SINGLE_CLIENTS, Server, _run_clients, _single_client, split
    from .server_cpu import prepare_database
    from .stores import postgres_database, sqlite_database

    folder = Path(tempfile.mkdtemp(prefix="ratecard-stages-"))
    out = folder / "stages.json"
    database = sqlite_database(folder) if kind == "sqlite" else postgres_database(
        os.environ.get("RATECARD_BENCH_DATABASE", "ratecard_bench_stages"))
    with database as url:
        key = prepare_database(url, folder)
        command = [sys.executable, "-m", "bench.single_stages", "--serve", str(out)]
        with Server(url, folder / "serve.log", workers=1, env={"RATECARD_DATABASE_URL": url},
                    command=command) as server:
            assert server.process is not None
            _run_clients(_single_client, split(400, SINGLE_CLIENTS), (server.port, key, 1_000, path, "warm"))
            seconds, reports = _run_clients(_single_client, split(requests, SINGLE_CLIENTS),
                                            (server.port, key, 1_000, path, "stages"))
            errors = [e for r in reports for e in r["errors"]]
            if errors:
                raise SystemExit(f"{kind}: requests failed: {errors[:3]}\n{server.log()}")
            os.kill(server.process.pid, signal.SIGUSR2)
            for _ in range(50):
                if out.exists():
                    break
                time.sleep(0.1)
            time.sleep(0.5)
            records = json.loads(out.read_text(encoding="utf-8"))
    complete = [r for r in records if all(k in r for k in ("start", "wait", "hand", "picked", "committed", "end"))]
    complete = complete[-requests:]
    rows = []
    for name, first, last in STAGES:
        spans = sorted((r[last] - r[first]) * 1e6 for r in complete)
        rows.append({"store": kind, "stage": name, "p50_us": round(statistics.median(spans)),
                     "p90_us": round(spans[int(0.9 * (len(spans) - 1))]), "requests": len(complete),
                     "requests_per_second": round(requests / seconds), "load": round(os.getloadavg()[0], 2)})
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        serve_instrumented(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.single_stages", description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--path", default="/v1/ingest/meter-data", choices=["/v1/ingest/meter-data", "/v1/events"])
    args = parser.parse_args(argv)
    rows = []
    for kind in [s.strip() for s in args.stores.split(",") if s.strip()]:
        rows += measure(kind, args.requests, args.path)
    print("| store | stage | p50 µs | p90 µs | requests/s | load |\n| --- | --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['store']} | {row['stage']} | {row['p50_us']:,} | {row['p90_us']:,} | "
              f"{row['requests_per_second']:,} | {row['load']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
