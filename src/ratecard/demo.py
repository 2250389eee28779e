"""`ratecard demo`: the example workspace end to end — catalog, a month of events, drafts."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .billing.run import generate_invoices
from .catalog import CatalogFileError, check_document, load_document
from .clock import now as clock_now
from .ingest.importer import import_file
from .ingest.validate import to_micros
from .store import open_store
from .store.catalogs import save_version
from .store.invoices import list_invoices
from .workspace import current_catalog

DEMO_UNTIL = date(2026, 11, 1)


def run_demo(examples: Path, db: str | None) -> dict[str, Any]:
    catalog_file = examples / "catalog.yaml"
    events_file = examples / "events.jsonl"
    for needed in (catalog_file, events_file):
        if not needed.exists():
            raise FileNotFoundError(f"{needed}: missing; run `make demo` (it generates the example events)")
    document, problems = check_document(load_document(catalog_file))
    if problems:
        raise CatalogFileError(f"{catalog_file}: {problems[0]}")
    moment = clock_now()
    store = open_store(db)
    try:
        save_version(store, document, to_micros(moment))
        version, catalog = current_catalog(store)
        imported = import_file(store, catalog, events_file, moment)
        run = generate_invoices(store, catalog, version, DEMO_UNTIL, moment)
        invoices = list_invoices(store)
    finally:
        store.dispose()
    by_currency: dict[str, dict[str, Any]] = defaultdict(lambda: {"invoices": 0, "subtotal": Decimal(0),
                                                                   "tax": Decimal(0), "total": Decimal(0)})
    for invoice in invoices:
        bucket = by_currency[invoice.currency]
        bucket["invoices"] += 1
        for name in ("subtotal", "tax", "total"):
            bucket[name] += getattr(invoice, name)
    largest = sorted(invoices, key=lambda i: i.total, reverse=True)[:5]
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


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    c, e, r = summary["catalog"], summary["events"], summary["run"]
    console.print(f"[bold]catalog[/]: {c['meters']} meters, {c['plans']} plans, {c['customers']} customers, "
                  f"{c['subscriptions']} subscriptions")
    console.print(f"[bold]events[/]: {e['read']} read, {e['stored']} stored, {e['duplicates']} duplicates, "
                  f"flags {e['flags'] or 'none'}, rejected {e['rejected'] or 'none'}")
    console.print(f"[bold]invoices[/] up to {r['until']}: {r['created']} created, {r['updated']} refreshed, "
                  f"{r['unchanged']} unchanged")
    table = Table(title="Draft invoices by currency")
    for column in ("currency", "invoices", "subtotal", "tax", "total"):
        table.add_column(column, justify="left" if column == "currency" else "right")
    for currency, bucket in summary["by_currency"].items():
        table.add_row(currency, str(bucket["invoices"]), bucket["subtotal"], bucket["tax"], bucket["total"])
    console.print(table)
    top = Table(title="Largest drafts")
    for column in ("invoice", "customer", "currency", "lines", "total"):
        top.add_column(column, justify="right" if column in ("lines", "total") else "left")
    for item in summary["largest"]:
        top.add_row(item["number"], item["customer"], item["currency"], str(item["lines"]), item["total"])
    console.print(top)
    console.print("Next: `ratecard invoices list --db …`, `ratecard invoices show DRAFT-1 --db …`, "
                  "`ratecard invoices export --format csv --db …`")
