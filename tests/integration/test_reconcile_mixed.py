"""Reconciliation at scale: the demo workspace over two months, a legacy export with thousands
of lines and planted differences of mixed causes. Every planted difference is found with its
cause, and nothing else is reported."""

from __future__ import annotations

import csv
import dataclasses
import random
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

from ratecard.billing.run import generate_invoices
from ratecard.catalog import check_document, load_document
from ratecard.domain.money import quantize
from ratecard.domain.pricing import price_usage
from ratecard.golive.legacy import Mapping, read_legacy
from ratecard.golive.reconcile import reconcile
from ratecard.ingest.importer import import_file
from ratecard.services.catalog import current_catalog
from ratecard.store import open_store
from ratecard.store.catalogs import save_version
from ratecard.store.invoices import list_invoices

from ..migrated import at_head
from .scenario import NOW

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _events(tmp_path: Path, month: str) -> Path:
    out = tmp_path / f"events-{month}.jsonl"
    subprocess.run([sys.executable, str(EXAMPLES / "generate_events.py"), "--catalog", str(EXAMPLES / "catalog.yaml"),
                    "--out", str(out), "--month", month, "--events", "4000"], check=True, capture_output=True)
    return out


def test_thousands_of_lines_with_mixed_causes(db_url: str, tmp_path: Path) -> None:
    store = open_store(at_head(db_url))
    document, problems = check_document(load_document(EXAMPLES / "catalog.yaml"))
    assert not problems
    save_version(store, document, 0)
    version, catalog = current_catalog(store)
    for month in ("2026-10", "2026-11", "2026-12"):
        import_file(store, catalog, _events(tmp_path, month), NOW.replace(year=2027))
    generate_invoices(store, catalog, version, date(2027, 1, 1), NOW.replace(year=2027))

    rows, planted = [], {}
    rng = random.Random(7)
    for invoice in list_invoices(store):
        subscription = catalog.subscriptions[invoice.subscription]
        for line in invoice.lines:
            row = {"customer": invoice.customer, "code": line.code, "service_start": line.service_start,
                   "service_end": line.service_end, "quantity": f"{line.quantity:f}", "amount": f"{line.amount:f}"}
            key = (invoice.customer, line.code, line.service_start)
            charge = next((c for c in subscription.plan.charges if c.code == line.code), None)
            roll = rng.random()
            if charge is not None and charge.model == "graduated" and line.quantity > 0 and roll < 0.5:
                volume = quantize(price_usage(dataclasses.replace(charge, model="volume"),
                                              line.quantity).amount, invoice.currency)
                if volume != line.amount:
                    row["amount"] = f"{volume:f}"
                    planted[(*key, "amount")] = "tier_model"
            elif line.amount > 1 and roll < 0.06:
                row["amount"] = f"{line.amount + Decimal('0.01'):f}"
                planted[(*key, "amount")] = "rounding"
            elif line.amount > 1 and roll < 0.09:
                row["amount"] = f"{line.amount + Decimal('777.77'):f}"
                planted[(*key, "amount")] = "unexplained"
            elif line.amount > 0 and roll < 0.11:
                planted[(*key, "line")] = "missing_in_legacy"
                continue
            rows.append(row)
            if roll > 0.985:
                extra = {**row, "code": "legacy_only_fee", "quantity": "1", "amount": "12.00"}
                rows.append(extra)
                planted[(invoice.customer, "legacy_only_fee", line.service_start, "line")] = "missing_in_ratecard"
    legacy = tmp_path / "legacy.csv"
    with legacy.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    result = reconcile(store, catalog, read_legacy(legacy, Mapping({})))
    store.dispose()
    assert result.legacy_lines >= 1000, result.legacy_lines
    found = {(d.customer, d.code, d.service_start.isoformat(), d.field): d.cause for d in result.differences}
    assert found == planted
    assert {cause for cause in planted.values()} >= {"tier_model", "rounding", "unexplained", "missing_in_legacy",
                                                    "missing_in_ratecard"}
