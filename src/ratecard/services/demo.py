"""The demo: the example workspace end to end — its catalog applied, a month of events imported,
the drafts generated — summed up for people to read."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..billing.run import generate_invoices
from ..catalog import CatalogFileError
from ..ingest.importer import import_file
from ..ingest.readers import ReaderError
from ..store import Store
from ..store.invoices import list_invoices
from .catalog import apply_catalog, current_catalog
from .errors import InvalidInput

DEMO_UNTIL = date(2026, 11, 1)  # the example events are October 2026's
LARGEST = 5


def run_demo(store: Store, examples: Path, now: datetime) -> dict[str, Any]:
    """Apply examples/catalog.yaml, import examples/events.jsonl, generate the drafts up to DEMO_UNTIL."""
    catalog_file = examples / "catalog.yaml"
    events_file = examples / "events.jsonl"
    for needed in (catalog_file, events_file):
        if not needed.exists():
            raise InvalidInput(f"{needed}: missing; run `make demo` (it generates the example events)")
    try:
        apply_catalog(store, catalog_file, now)
        version, catalog = current_catalog(store)
        imported = import_file(store, catalog, events_file, now)
    except (CatalogFileError, ReaderError) as exc:
        raise InvalidInput(str(exc)) from None
    run = generate_invoices(store, catalog, version, DEMO_UNTIL, now)
    invoices = list_invoices(store)
    by_currency: dict[str, dict[str, Any]] = defaultdict(lambda: {"invoices": 0, "subtotal": Decimal(0),
                                                                   "tax": Decimal(0), "total": Decimal(0)})
    for invoice in invoices:
        bucket = by_currency[invoice.currency]
        bucket["invoices"] += 1
        for name in ("subtotal", "tax", "total"):
            bucket[name] += getattr(invoice, name)
    largest = sorted(invoices, key=lambda i: i.total, reverse=True)[:LARGEST]
    return {
        "catalog": {"meters": len(catalog.meters), "plans": len(catalog.plans),
                    "customers": len(catalog.customers), "subscriptions": len(catalog.subscriptions)},
        "events": imported.as_dict() | {"coverage": len(imported.coverage)},
        "run": run.as_dict(),
        "by_currency": {c: {k: (f"{v:f}" if isinstance(v, Decimal) else v) for k, v in b.items()}
                        for c, b in sorted(by_currency.items())},
        "largest": [{"number": i.display_number, "customer": i.customer, "currency": i.currency,
                     "total": f"{i.total:f}", "lines": len(i.lines)} for i in largest],
    }
