"""GET /v1/customers/{ref}/entitlements latency through the whole ASGI app (key check, the
request's fingerprint query, the Solvimon view, the entitlement cache), on SQLite.

    .venv/bin/python -m bench.entitlements          # BENCH_ENT_CUSTOMERS, BENCH_ENT_READS to change

Catalog: one metered usage-limit feature, a switch and an enum on a plan; BENCH_ENT_CUSTOMERS
customers with a subscription each and 20 events each. Reads go to random customers, with one
ingest (one event, for the customer read next, so that read recomputes) per 100 reads: the mix an
app calling it on its request path sees. Printed: p50/p99 of the reads, and
  ratio  = baseline p99 / value p99, baseline = the cheapest authenticated request
           (GET /v1/webhooks/actions: key check only) timed in the same rounds (the machine's own limit)
  budget = 5 ms / value p99 (>= 1 meets the < 5 ms p99 target)
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from ratecard.api.app import create_app
from ratecard.store import open_store
from ratecard.store.keys import create_key

CUSTOMERS = int(os.environ.get("BENCH_ENT_CUSTOMERS", "500"))
READS = int(os.environ.get("BENCH_ENT_READS", "5000"))
INGEST_EVERY = 100
BUDGET_MS = 5.0


def _catalog() -> dict:
    return {
        "meters": [{"code": "calls", "aggregation": "count"}],
        "features": [{"code": "calls_quota", "type": "number", "meter": "calls"},
                     {"code": "sso", "type": "switch"},
                     {"code": "support", "type": "enum", "values": ["basic", "priority"]}],
        "plans": [{"code": "pro", "currency": "EUR", "charges": [
            {"code": "calls", "meter": "calls", "model": "per_unit", "unit_amount": "0.01"}],
            "features": {"calls_quota": 10000, "sso": True, "support": "priority"}}],
        "customers": [{"reference": f"c{i}"} for i in range(CUSTOMERS)],
        "subscriptions": [{"reference": f"s{i}", "customer": f"c{i}", "plan": "pro", "start": "2026-01-01"}
                          for i in range(CUSTOMERS)],
    }


def _pct(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seed(client: TestClient, key: str) -> None:
    """The bench's catalog and 20 events per customer, through the API (shared with
    bench/entitlements_refresh.py)."""
    headers = {"X-API-KEY": key}
    applied = client.post("/v1/catalog", content=yaml.safe_dump(_catalog()).encode(),
                          headers={**headers, "content-type": "application/yaml"})
    assert applied.status_code == 201, applied.text
    events = [{"id": f"e{c}-{n}", "customer": f"c{c}", "meter": "calls",
               "timestamp": f"2026-01-{1 + n:02d}T10:00:00Z", "properties": {}}
              for c in range(CUSTOMERS) for n in range(20)]
    for start in range(0, len(events), 5000):
        stored = client.post("/v1/events", content=json.dumps(events[start:start + 5000]), headers=headers)
        assert stored.status_code == 200, stored.text


def _run(client: TestClient, key: str) -> tuple[list[float], list[float]]:
    headers = {"X-API-KEY": key}
    seed(client, key)
    rng = random.Random(7)
    for c in range(CUSTOMERS):  # warm: every customer's entry once
        client.get(f"/v1/customers/c{c}/entitlements", headers=headers)
    reads: list[float] = []
    base: list[float] = []
    extra = 0
    for i in range(READS):
        customer = f"c{rng.randrange(CUSTOMERS)}"
        if i % INGEST_EVERY == 0:
            extra += 1
            client.post("/v1/events", headers=headers, content=json.dumps([{
                "id": f"x{extra}", "customer": customer, "meter": "calls", "timestamp": "2026-01-24T10:00:00Z",
                "properties": {}}]))
        started = time.perf_counter()
        response = client.get(f"/v1/customers/{customer}/entitlements", headers=headers)
        reads.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and response.json()["as_of"], response.text
        started = time.perf_counter()
        client.get("/v1/webhooks/actions", headers=headers)
        base.append((time.perf_counter() - started) * 1000)
    return reads, base


def _cache_only(url: str) -> list[float]:
    """The entitlement cache as the handler calls it, without the HTTP and key layers."""
    from datetime import UTC, datetime

    from ratecard.services.catalog import current_catalog
    from ratecard.services.entitlements import EntitlementCache, usage_changed

    store = open_store(url)
    cache = EntitlementCache()
    version, catalog = current_catalog(store, "live")
    now = datetime(2026, 1, 25, 12, tzinfo=UTC)
    rng = random.Random(11)
    started = time.perf_counter()
    for c in range(CUSTOMERS):  # warm: every customer's entry once (a miss computes)
        cache.get(store, "live", catalog, version, f"c{c}", now)
    miss_ms = (time.perf_counter() - started) * 1000 / CUSTOMERS
    times = []
    for i in range(READS):
        customer = f"c{rng.randrange(CUSTOMERS)}"
        if i % INGEST_EVERY == 0:
            cache.usage_changed("live", [customer])
        started = time.perf_counter()
        cache.get(store, "live", catalog, version, customer, now)
        times.append((time.perf_counter() - started) * 1000)
    cache.wait_idle()
    usage_changed("live")
    store.dispose()
    print(f"entitlements compute (a miss, or one background refresh): {miss_ms:.2f} ms on average")
    return times


def main() -> None:
    os.environ["RATECARD_NOW"] = "2026-01-25T12:00:00Z"
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        store = open_store(url)
        _, key = create_key(store, "live", 0, "bench")
        store.dispose()
        with TestClient(create_app(url)) as client:
            reads, base = _run(client, key)
        cache = _cache_only(url)
    value, baseline = _pct(reads, 0.99), _pct(base, 0.99)
    print(f"entitlements cache (in process, the same mix): p50 {_pct(cache, 0.5):.3f} ms, p99 {_pct(cache, 0.99):.3f} ms; "
          f"budget {BUDGET_MS / _pct(cache, 0.99):.1f}")
    print(f"entitlements (SQLite, {CUSTOMERS} customers, {READS} reads, 1 ingest per {INGEST_EVERY} reads): "
          f"p50 {_pct(reads, 0.5):.2f} ms, p99 {value:.2f} ms; baseline p50 {_pct(base, 0.5):.2f} ms, "
          f"p99 {baseline:.2f} ms; "
          f"ratio {baseline / value:.3f}; budget {BUDGET_MS / value:.3f}")


if __name__ == "__main__":
    main()
