"""The console's pages on a large workspace: server time of every page an admin can open.

The workspace is bench/data.py's: N events (BENCH_EVENTS, default 1,000,000) over October 2026
and N/100 customers (10,000 at the default size), one subscription each, and the invoice run up
to 2026-11-01 (two drafts a customer: October's usage, November's advance fee). The events are
inserted directly, in chunks (the setup is not measured); one admin and a signed-in session are
written straight into the store, and "now" is pinned to 2026-11-26 (RATECARD_NOW), as a server
answering the day the data was made.

The pages measured: every link of the console's navigation as an admin sees it, plus, found in
those pages' HTML, the next page of each paged list (rel="next") and the first link from each
list to a page of its own (a customer, an invoice…), so pages added to the console are measured
without editing this file. BENCH_CONSOLE_PATHS (comma-separated) adds more paths.

Each page is requested through the ASGI app in this process (Starlette's TestClient: no socket,
no second process), with the session's cookie, WARMUP times unmeasured and then RUNS times, all
pages timed **in turn** (one request of each per round) so a machine shared with other work
weighs on all of them alike. Every answer must be 200.

value    = median milliseconds of the page
baseline = median milliseconds, in the same rounds, of the trivial console request:
           GET /console/whoami (the guard, the session looked up, a small JSON answer): the
           fixed cost every page pays on this machine
ratio    = baseline / value (higher is better); target 0.02: a page may cost what fifty trivial
           requests cost (on a quiet machine about 100 ms, a third of the budget)
and one row per store against the absolute budget: the worst page's p95 against 300 ms,
ratio = 300 / p95, target 1.

BENCH_EVENTS shrinks the workspace (e.g. BENCH_EVENTS=20000: 200 customers), BENCH_CONSOLE_RUNS
sets RUNS (default 11). Alone: `python -m bench.console [sqlite] [postgresql]` prints the rows as
JSON; `python -m bench.run --suites console` runs it with the others' table.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any

from ratecard.catalog import build_catalog, check_document
from ratecard.services.invoices import generate
from ratecard.store import console_users as users_store
from ratecard.store import open_store
from ratecard.store.catalogs import save_version

from . import data
from .baselines import COLUMNS

WARMUP = 2
DEFAULT_RUNS = 11
CHUNK = 50_000
BUDGET_MS = 300.0
TRIVIAL_TARGET = 0.02
TRIVIAL = "/console/whoami"
NOW = "2026-11-26T00:00:00Z"
ADMIN = "bench-admin@example.com"
# argon2 of a password nobody types: the session is written directly, no login is measured
UNUSED_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$c2hhc2hhc2hhc2hhc2hhc2hhc2hhc2hhc2g"
NAV_LINK = re.compile(r'<nav aria-label="sections">(.*?)</nav>', re.S)
HREF = re.compile(r'<a\b[^>]*?href="(/console/[^"#]*)"', re.S)
NEXT_LINK = re.compile(r'<a\b[^>]*?rel="next"[^>]*?href="(/console/[^"#]*)"'
                       r'|<a\b[^>]*?href="(/console/[^"#]*)"[^>]*?rel="next"', re.S)
MAIN = re.compile(r"<main\b.*?</main>", re.S)


def runs_from_env() -> int:
    raw = os.environ.get("BENCH_CONSOLE_RUNS", "").strip()
    try:
        return max(3, int(raw)) if raw else DEFAULT_RUNS
    except ValueError:
        raise SystemExit(f"BENCH_CONSOLE_RUNS must be a whole number, got {raw!r}") from None


@contextmanager
def pinned_now() -> Iterator[None]:
    previous = os.environ.get("RATECARD_NOW")
    os.environ["RATECARD_NOW"] = NOW
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("RATECARD_NOW", None)
        else:
            os.environ["RATECARD_NOW"] = previous


def load(url: str, events: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The workspace: catalog, events, drafts, an admin with a session. Returns the session's
    cookie value and what was made."""
    store = open_store(url)  # creates the schema
    try:
        customers = data.customer_count(events)
        document, problems = check_document(data.catalog_document(customers))
        if document is None or problems:
            raise SystemExit(f"the console bench catalog is invalid: {problems[:3]}")
        build_catalog(document)
        now_us = data.to_micros(data.NOW)
        save_version(store, document, now_us)
        started = time.perf_counter()
        _insert_events(store, events, now_us)
        log(f"console: {events:,} events inserted in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        run = generate(store, data.UNTIL, data.NOW)
        log(f"console: invoice run ({run.as_dict().get('created', '?')} drafts) in {time.perf_counter() - started:.1f}s")
        user = users_store.insert_user(store, ADMIN, "admin", UNUSED_HASH, now_us)
        if user is None:
            raise SystemExit(f"console bench: {ADMIN} exists already in a fresh database")
        token = secrets.token_urlsafe(32)
        users_store.insert_session(store, hashlib.sha256(token.encode()).hexdigest(), user.id, data.ENVIRONMENT,
                                   secrets.token_urlsafe(32), now_us)
        _settle(store)
        return {"token": token, "customers": customers, "events": events, "invoices": run.as_dict()}
    finally:
        store.dispose()


def _insert_events(store: Any, events: int, received_at: int) -> None:
    rows = ((data.ENVIRONMENT, event_id, customer, meter, ts, properties, received_at, "matched", False)
            for event_id, customer, meter, ts, _stamp, properties in data.iter_events(events))
    columns = ", ".join(COLUMNS)
    raw = store.engine.raw_connection()
    try:
        driver = raw.driver_connection
        if store.is_postgres:
            with driver.cursor() as cursor, cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            sql = f"INSERT INTO events ({columns}) VALUES ({', '.join('?' * len(COLUMNS))})"
            while chunk := list(islice(rows, CHUNK)):
                driver.executemany(sql, chunk)
        driver.commit()
    finally:
        raw.close()


def _settle(store: Any) -> None:
    """The quiet state a warm server is in: statistics current, the WAL checkpointed."""
    raw = store.engine.raw_connection()
    try:
        driver = raw.driver_connection
        if store.is_postgres:
            driver.commit()
            driver.autocommit = True
            driver.execute("VACUUM ANALYZE")
        else:
            driver.execute("ANALYZE")
            driver.commit()
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def discover(get: Callable[[str], Any]) -> list[str]:
    """The navigation's pages, then each one's next page and its first link to a page of its own."""
    home = get("/console/")
    if home.status_code != 200:
        raise SystemExit(f"console bench: /console/ answered {home.status_code}: {home.text[:300]}")
    navigation = HREF.findall(NAV_LINK.search(home.text).group(1)) if NAV_LINK.search(home.text) else []
    if not navigation:
        raise SystemExit("console bench: no navigation links found on /console/")
    paths = list(dict.fromkeys(navigation))
    for section in list(paths):
        html = get(section).text
        main = MAIN.search(html)
        body = main.group(0) if main else ""
        following = [a or b for a, b in NEXT_LINK.findall(body)]
        own = [href for href in HREF.findall(body)
               if href.split("?")[0] not in navigation and href.split("?")[0].startswith(section.rstrip("/") + "/")]
        for extra in following[:1] + own[:1]:
            extra = extra.replace("&amp;", "&")
            if extra not in paths:
                paths.append(extra)
    for extra in filter(None, (p.strip() for p in os.environ.get("BENCH_CONSOLE_PATHS", "").split(","))):
        if extra not in paths:
            paths.append(extra)
    return paths


def measure(url: str, token: str, runs: int, log: Callable[[str], None]) -> tuple[dict[str, list[float]], list[str]]:
    import warnings

    with warnings.catch_warnings():  # starlette's note about its test client's HTTP library: not ours to act on
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from ratecard.api.app import create_app
    from ratecard.web.context import SESSION_COOKIE

    with TestClient(create_app(url), raise_server_exceptions=True, follow_redirects=False) as client:
        client.cookies.set(SESSION_COOKIE, token, path="/console")
        paths = discover(client.get)
        log(f"console: measuring {len(paths)} pages: {', '.join(paths)}")
        times: dict[str, list[float]] = {path: [] for path in [TRIVIAL, *paths]}
        for round_number in range(WARMUP + runs):
            for path in times:
                started = time.perf_counter()
                response = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"console bench: {path} answered {response.status_code}: {response.text[:300]}")
                if round_number >= WARMUP:
                    times[path].append(elapsed)
    return times, paths


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def run_console_benchmark(kind: str, url: str, events: int, log: Callable[[str], None]) -> list[dict]:
    runs = runs_from_env()
    log(f"console ({kind}): loading {events:,} events and {data.customer_count(events):,} customers")
    with pinned_now():
        made = load(url, events, log)
        times, paths = measure(url, made["token"], runs, log)
    trivial = statistics.median(times[TRIVIAL])
    rows = []
    pages = {}
    for path in paths:
        median, high = statistics.median(times[path]), p95(times[path])
        pages[path] = {"median_ms": round(median, 2), "p95_ms": round(high, 2)}
        log(f"console ({kind}): {path:<40} median {median:7.1f} ms  p95 {high:7.1f} ms")
        rows.append({
            "name": f"console {path}.{kind}", "value": round(median, 2), "unit": "ms", "baseline": round(trivial, 2),
            "ratio": round(trivial / median, 3), "target": TRIVIAL_TARGET,
            "detail": {"p95_ms": round(high, 2), "times_ms": [round(t, 2) for t in times[path]],
                       "meaning": f"median server time in process; baseline = median of GET {TRIVIAL} in the same "
                                  "rounds; ratio = baseline / value (higher is better)"},
        })
    worst = max(paths, key=lambda path: pages[path]["p95_ms"])
    log(f"console ({kind}): trivial request median {trivial:.1f} ms; worst p95 {pages[worst]['p95_ms']:.1f} ms ({worst})")
    rows.append({
        "name": f"console_budget.{kind}", "value": pages[worst]["p95_ms"], "unit": "ms", "baseline": BUDGET_MS,
        "ratio": round(BUDGET_MS / pages[worst]["p95_ms"], 3), "target": 1.0,
        "detail": {"meaning": "the slowest page's p95 against the 300 ms budget; ratio = budget / value",
                   "worst_page": worst, "pages": pages, "trivial_median_ms": round(trivial, 2),
                   "trivial_times_ms": [round(t, 2) for t in times[TRIVIAL]], "runs": runs, "warmup_runs": WARMUP,
                   "customers": made["customers"], "events": made["events"], "invoice_run": made["invoices"]},
    })
    return rows


def _main() -> None:
    """`python -m bench.console [sqlite|postgresql]`: this benchmark alone, printed as JSON."""
    import sys
    import tempfile
    from pathlib import Path

    from .run import events_from_env
    from .stores import postgres_database, sqlite_database

    kinds = sys.argv[1:] or ["sqlite"]
    events = events_from_env()
    results = []
    with tempfile.TemporaryDirectory(prefix="ratecard-bench-") as folder:
        for kind in kinds:
            database = sqlite_database(Path(folder)) if kind == "sqlite" else postgres_database()
            with database as url:
                results += run_console_benchmark(kind, url, events,
                                                 lambda message: print(message, file=sys.stderr, flush=True))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    _main()
