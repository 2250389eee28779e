"""Write a "legacy system" export of the demo month with known differences planted in it.

`make demo` runs it after the drafts exist, then reconciles ratecard against it, so the demo
shows every kind of finding a team meets when it compares ratecard with the system it bills
with today. Every line is ratecard's own draft line, copied, except these (each a cause
`ratecard reconcile` names):

| customer    | what the legacy system did                                   | expected cause        |
| ----------- | ------------------------------------------------------------ | --------------------- |
| ravenstone  | billed the base fee at the list price, not the 79.00 override | override             |
| kestrel     | priced its custom token tiers as volume, not graduated       | tier_model            |
| thistle     | charged 19 % tax where the catalog says 21 %                 | tax_rate              |
| harborlight | one line one cent higher                                     | rounding              |
| harborlight | an add-on ratecard does not know                             | missing_in_ratecard   |
| orbitale    | no requests line                                             | missing_in_legacy     |
| lodestar    | its platform fee 100.00 higher, for no reason we know        | unexplained           |

Usage: python examples/make_legacy.py --db sqlite:///demo.db --out examples/legacy.csv
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from decimal import Decimal
from pathlib import Path

from ratecard.domain.money import quantize
from ratecard.domain.pricing import price_usage
from ratecard.services.catalog import current_catalog
from ratecard.store import open_store
from ratecard.store.invoices import list_invoices

COLUMNS = ("customer", "code", "service_start", "service_end", "quantity", "amount", "currency", "tax", "invoice")


def legacy_rows(db: str) -> list[dict[str, str]]:
    store = open_store(db)
    try:
        _, catalog = current_catalog(store)
        invoices = list_invoices(store)
    finally:
        store.dispose()
    rows: list[dict[str, str]] = []
    planted: set[str] = set()
    for invoice in invoices:
        subscription = catalog.subscriptions[invoice.subscription]
        for line in invoice.lines:
            amount, tax = line.amount, ""
            if invoice.customer == "orbitale" and line.code == "requests":
                planted.add("missing_in_legacy")
                continue
            if invoice.customer == "ravenstone" and line.code == "base":
                listed = next(c for c in subscription.list_plan.charges if c.code == "base")
                amount = quantize(line.amount / next(c for c in subscription.plan.charges
                                                     if c.code == "base").amount * listed.amount,
                                  invoice.currency, catalog.rounding)
                planted.add("override")
            if invoice.customer == "kestrel" and line.code == "gpt4o_tokens" and line.quantity > 0:
                charge = next(c for c in subscription.plan.charges if c.code == line.code)
                volume = dataclasses.replace(charge, model="volume")
                amount = quantize(price_usage(volume, line.quantity).amount, invoice.currency, catalog.rounding)
                planted.add("tier_model")
            if invoice.customer == "thistle":
                tax = f"{quantize(line.amount * Decimal('0.19'), invoice.currency, catalog.rounding):f}"
                planted.add("tax_rate")
            if invoice.customer == "harborlight" and line.code == "base":
                amount += Decimal("0.01")
                planted.add("rounding")
            if invoice.customer == "lodestar" and line.code == "platform":
                amount += Decimal("100.00")
                planted.add("unexplained")
            rows.append({"customer": invoice.customer, "code": line.code, "service_start": line.service_start,
                         "service_end": line.service_end, "quantity": f"{line.quantity:f}", "amount": f"{amount:f}",
                         "currency": invoice.currency, "tax": tax, "invoice": f"LEG-{invoice.id:05d}"})
            if invoice.customer == "harborlight" and line.code == "base":
                rows.append({**rows[-1], "code": "priority_support", "quantity": "1", "amount": "25.00"})
                planted.add("missing_in_ratecard")
    missing = {"override", "tier_model", "tax_rate", "rounding", "unexplained", "missing_in_legacy",
               "missing_in_ratecard"} - planted
    if missing:
        raise SystemExit(f"the demo workspace changed: could not plant {sorted(missing)}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the demo database URL")
    parser.add_argument("--out", type=Path, default=Path("examples/legacy.csv"))
    args = parser.parse_args()
    rows = legacy_rows(args.db)
    with args.out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} legacy lines to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
