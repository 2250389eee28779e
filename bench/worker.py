"""One measured operation in a fresh process, so its peak memory is its own.

    python -m bench.worker import  --db URL --events FILE [--profile OUT.prof]
    python -m bench.worker invoice --db URL [--profile OUT.prof]
    python -m bench.worker rollups --db URL      (build the catalog's roll-ups: ready before an import)
    python -m bench.worker usage --db URL        (the invoice run's usage read alone: roll-ups, then raw)

Prints one JSON object on the last line of stdout: seconds, peak RSS (MiB), what it did.
Only the ratecard call itself is timed; opening the store and loading the catalog are
reported separately.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import resource
import sys
import time
from pathlib import Path

from ratecard.billing.run import generate_invoices
from ratecard.ingest.importer import import_file
from ratecard.services.catalog import current_catalog
from ratecard.store import open_store

from .data import NOW, UNTIL


def peak_rss_mib() -> float:
    """Resident-set high-water mark of this process, in MiB.

    Linux: VmHWM from /proc/self/status. getrusage's ru_maxrss would be wrong here: a child
    inherits the parent's high-water mark through fork/exec (measured: a worker spawned by a
    600 MiB parent reports ru_maxrss = 611 MiB while its own VmHWM is 9 MiB), and the runner
    holds the baseline's rows in memory. Elsewhere ru_maxrss is the fallback.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return maxrss_mib()


def maxrss_mib() -> float:
    """getrusage's ru_maxrss (KiB on Linux), includes what fork/exec inherited from the parent."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _usage_read(store, catalog) -> dict:
    """The usage of every subscription's October (the invoice run's read), from the roll-ups where
    ready, then from the raw events alone (the roll-ups ignored), in this one process."""
    from ratecard.billing.run import charged_meters
    from ratecard.store import usage as usage_module
    from ratecard.store.usage import Window, aggregate_usage

    from .data import PERIOD_END, PERIOD_START, to_micros

    subscriptions = sorted(catalog.subscriptions.values(), key=lambda s: s.reference)
    windows = [Window(index, s.customer, to_micros(PERIOD_START), to_micros(PERIOD_END))
               for index, s in enumerate(subscriptions)]
    meters = charged_meters(catalog, subscriptions)
    started = time.perf_counter()
    rolled = aggregate_usage(store, windows, meters)
    rolled_seconds = time.perf_counter() - started
    original = usage_module.usage_from_rollups
    usage_module.usage_from_rollups = lambda store, windows, meters, environment: ({}, list(meters))
    try:
        started = time.perf_counter()
        raw = aggregate_usage(store, windows, meters)
        raw_seconds = time.perf_counter() - started
    finally:
        usage_module.usage_from_rollups = original
    if rolled != raw:
        raise SystemExit("the usage from the roll-ups differs from the usage of the raw events")
    return {"windows": len(windows), "from_rollups_seconds": rolled_seconds, "raw_seconds": raw_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("operation", choices=("import", "invoice", "rollups", "usage"))
    parser.add_argument("--db", required=True)
    parser.add_argument("--events", type=Path)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    store = open_store(args.db)
    version, catalog = current_catalog(store)
    setup_seconds = time.perf_counter() - started
    rss_before = peak_rss_mib()
    profiler = cProfile.Profile() if args.profile else None

    started = time.perf_counter()
    cpu_started = time.process_time()
    if profiler:
        profiler.enable()
    if args.operation == "import":
        report = import_file(store, catalog, args.events, NOW)
        detail = {"read": report.read, "stored": report.stored, "duplicates": report.duplicates,
                  "rejected": dict(report.rejected), "flags": dict(report.flags)}
    elif args.operation == "usage":
        detail = _usage_read(store, catalog)
    elif args.operation == "rollups":
        from ratecard.services.rollups import rebuild_rollups

        detail = rebuild_rollups(store, "live", NOW)
    else:
        # as `ratecard invoices generate` runs it (services.invoices.generate)
        report = generate_invoices(store, catalog, version, UNTIL, NOW, pause_gc=True)
        detail = report.as_dict()
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started  # every thread of this process, on a loaded machine steadier
    if profiler:
        profiler.dump_stats(args.profile)
    store.dispose()
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "setup_seconds": setup_seconds,
                      "peak_rss_mib": peak_rss_mib(),
                      "rss_before_mib": rss_before, "ru_maxrss_mib": maxrss_mib(),
                      "detail": detail}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
