"""The demo: the example workspace end to end — its catalog applied, a month of events imported,
the drafts generated, a console user to look at them with — summed up for people to read."""

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
from . import users
from .catalog import apply_catalog, current_catalog
from .errors import Conflict, InvalidInput

DEMO_UNTIL = date(2026, 11, 1)  # the example events are October 2026's
LARGEST = 5
# The demo's console login. A password everyone can read is acceptable here only because the demo
# database is a local file made by `make demo` and served on 127.0.0.1; the demo says so each time.
DEMO_EMAIL = "demo@example.com"
DEMO_ROLE = "admin"
DEMO_PASSWORD = "demo-only-local-password"


def check_examples(examples: Path) -> None:
    """InvalidInput unless the folder holds the demo's catalog.yaml and events.jsonl (checked
    before the database is opened, so a wrong --examples leaves no empty database behind)."""
    catalog_file = examples / "catalog.yaml"
    events_file = examples / "events.jsonl"
    if not examples.is_dir():
        raise InvalidInput(f"{examples}: not a folder; give the example workspace folder, the project's "
                           "examples/ (catalog.yaml and events.jsonl)", field="examples")
    if not catalog_file.exists():
        raise InvalidInput(f"{catalog_file}: missing; give the example workspace folder, the project's examples/",
                           field="examples")
    if not events_file.exists():
        raise InvalidInput(f"{events_file}: missing; run `make demo` (it generates the example events)")


def run_demo(store: Store, examples: Path, now: datetime) -> dict[str, Any]:
    """Apply examples/catalog.yaml, import examples/events.jsonl, generate the drafts up to DEMO_UNTIL."""
    check_examples(examples)
    catalog_file = examples / "catalog.yaml"
    events_file = examples / "events.jsonl"
    try:
        apply_catalog(store, catalog_file, now)
        version, catalog = current_catalog(store)
        imported = import_file(store, catalog, events_file, now)
    except (CatalogFileError, ReaderError) as exc:
        raise InvalidInput(str(exc)) from None
    run = generate_invoices(store, catalog, version, DEMO_UNTIL, now)
    console = demo_console_user(store, now)
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
        "console": console,
    }


def demo_console_user(store: Store, now: datetime) -> dict[str, Any]:
    """The demo's admin for the console, created once; on a database that has it already (the demo
    run again) it is left alone, password included, since someone may have changed it."""
    try:
        users.create_user(store, DEMO_EMAIL, DEMO_ROLE, DEMO_PASSWORD, now)
    except Conflict:
        return {"email": DEMO_EMAIL, "role": DEMO_ROLE, "password": None, "created": False}
    return {"email": DEMO_EMAIL, "role": DEMO_ROLE, "password": DEMO_PASSWORD, "created": True}
