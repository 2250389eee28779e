"""Reconciliation of percentage charges priced event by event and of graduated_percentage: the cause
of a legacy amount computed another way, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

from ratecard.billing.run import generate_invoices
from ratecard.golive.legacy import Mapping, read_legacy
from ratecard.golive.reconcile import reconcile
from ratecard.ingest.importer import import_file
from ratecard.store.invoices import list_invoices

from .scenario import NOW, current, workspace, write_jsonl

CATALOG = """
billing_entity: {name: Acme Payments BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: payments, aggregation: sum, field: amount}
plans:
  - code: pay
    currency: EUR
    charges:
      - {code: card_fees, meter: payments, model: percentage, rate: "2", fixed_amount: "0.10"}
      - code: volume_fees
        meter: payments
        model: graduated_percentage
        tiers:
          - {up_to: "1000", rate: "1"}
          - {up_to: null, rate: "0.5", flat_amount: "5"}
customers:
  - {reference: acme, currency: EUR}
subscriptions:
  - {reference: acme-pay, customer: acme, plan: pay, start: 2026-01-01,
     overrides: {card_fees: {per_transaction_min_amount: "0.50", per_transaction_max_amount: "15.00"}}}
"""
EVENTS = [{"id": f"p{n}", "customer": "acme", "meter": "payments", "timestamp": f"2026-01-{5 * n:02d}T10:00:00Z",
           "properties": {"amount": amount}} for n, amount in enumerate(["50.00", "200.00", "1000.00", "1750.00"], 1)]


def test_the_list_price_and_the_tier_model_are_named(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    version, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", EVENTS), NOW)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    rows = [{"customer": invoice.customer, "code": line.code, "service_start": line.service_start,
             "service_end": line.service_end, "quantity": f"{line.quantity:f}", "amount": f"{line.amount:f}", "tax": ""}
            for invoice in list_invoices(store) for line in invoice.lines]
    ours = {row["code"]: Decimal(row["amount"]) for row in rows}
    # ours: 1.10 + 4.10 + 15.00 (20.10 held) + 15.00 (35.10 held) = 35.20; 3,000 at 1% then 0.5% + 5 = 25.00
    assert ours == {"card_fees": Decimal("35.20"), "volume_fees": Decimal("25.00")}
    for row in rows:
        # the legacy system billed the plan's plain 2% + 0.10 (3,000 × 2% + 4 × 0.10 = 60.40), and the
        # whole 3,000 at the second tier's 0.5% + 5 = 20.00
        row["amount"] = {"card_fees": "60.40", "volume_fees": "20.00"}[row["code"]]
    path = tmp_path / "legacy.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = reconcile(store, catalog, read_legacy(path, Mapping({})))
    found = {(item.code, item.field): (item.cause, {k: v for k, v in item.detail.items() if k != "via"})
             for item in result.differences if item.field == "amount"}
    assert found == {("card_fees", "amount"): ("override", {"legacy_used": "the list price"}),
                     ("volume_fees", "amount"): ("tier_model", {"model": "volume"})}
    store.dispose()
