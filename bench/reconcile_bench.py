"""Reconciliation throughput: ratecard's lines against a legacy export of the same size.

N/10 lines on each side (100,000 at the default 1,000,000): 10,000 customers on a plan with
five flat charges, two invoices each. The legacy file is ratecard's own lines with 2% of the
amounts one cent off (each a `rounding` difference the cause finder must examine).

value    = lines reconciled per second by `golive.reconcile` (reads the legacy CSV, loads
           ratecard's lines from the store, matches, finds causes)
baseline = lines per second of merely reading and parsing both files in the same run: the
           legacy CSV with `read_legacy`, and ratecard's JSON export with json.loads
target   = 0.3 (reconciling costs at most ~3x merely reading both files)
"""

from __future__ import annotations

import csv
import json
import random
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from ratecard.billing.export import invoices_json
from ratecard.billing.run import generate_invoices
from ratecard.catalog import check_document
from ratecard.catalog.load import parse_text
from ratecard.golive.legacy import Mapping, read_legacy
from ratecard.golive.reconcile import reconcile
from ratecard.services.catalog import current_catalog
from ratecard.store import open_store
from ratecard.store.catalogs import save_version
from ratecard.store.invoices import list_invoices

TARGET = 0.3
CHARGES = 5
NOW = datetime(2026, 11, 26, tzinfo=UTC)


def _catalog(customers: int) -> str:
    charges = ", ".join(f"{{code: fee{i}, model: flat, amount: '{10 + i}.00'}}" for i in range(CHARGES))
    lines = [f"plans:\n  - {{code: p, currency: EUR, charges: [{charges}]}}", "customers:"]
    lines += [f"  - {{reference: c{i:06d}, currency: EUR, tax_rate: '21'}}" for i in range(customers)]
    lines.append("subscriptions:")
    lines += [f"  - {{reference: s{i:06d}, customer: c{i:06d}, plan: p, start: 2026-01-01}}" for i in range(customers)]
    return "\n".join(lines) + "\n"


def run_reconcile_benchmark(url: str, events: int, folder: Path, log) -> dict:
    lines_wanted = max(events // 10, 100)
    customers = max(lines_wanted // (2 * CHARGES), 1)
    store = open_store(url)
    document, problems = check_document(parse_text(_catalog(customers), "catalog.yaml"))
    assert not problems, problems[:3]
    save_version(store, document, 0)
    version, catalog = current_catalog(store)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    invoices = list_invoices(store)
    export = folder / "ratecard-export.json"
    export.write_text(json.dumps(invoices_json(invoices)), encoding="utf-8")
    legacy = folder / "legacy.csv"
    rng = random.Random(11)
    count = 0
    with legacy.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "code", "service_start", "service_end", "quantity", "amount"])
        for invoice in invoices:
            for line in invoice.lines:
                amount = line.amount + Decimal("0.01") if rng.random() < 0.02 else line.amount
                writer.writerow([invoice.customer, line.code, line.service_start, line.service_end,
                                 f"{line.quantity:f}", f"{amount:f}"])
                count += 1
    log(f"reconcile: {count:,} lines on each side ({customers:,} customers)")

    started = time.perf_counter()
    result = reconcile(store, catalog, read_legacy(legacy, Mapping({})))
    seconds = time.perf_counter() - started
    store.dispose()
    started = time.perf_counter()
    read_legacy(legacy, Mapping({}))
    json.loads(export.read_text(encoding="utf-8"))
    baseline_seconds = time.perf_counter() - started
    value, baseline = count / seconds, count / baseline_seconds
    log(f"reconcile: {seconds:.2f}s ({len(result.differences):,} differences); "
        f"reading both files {baseline_seconds:.2f}s")
    return {
        "name": "reconcile.sqlite", "value": round(value, 1), "unit": "lines/s", "baseline": round(baseline, 1),
        "ratio": round(value / baseline, 3), "target": TARGET,
        "detail": {"lines": count, "differences": len(result.differences), "seconds": round(seconds, 3),
                   "baseline_seconds": round(baseline_seconds, 3),
                   "baseline": "read_legacy(legacy CSV) + json.loads(ratecard export), same run"},
    }
