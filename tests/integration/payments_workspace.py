"""A workspace with a Stripe-linked customer and one final invoice (the Stripe stand-in is the
`stripe_standin` fixture of tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ratecard.services import invoices
from ratecard.store import Store
from ratecard.store.invoices import InvoiceRecord

from .scenario import CATALOG, NOW, workspace

PAYMENTS_CATALOG = CATALOG.replace(
    "billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}",
    "billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR, payments: {dunning_days: [1, 3]},"
    " email: {sender: billing@acme.example, send_on_finalization: false}}",
).replace(
    "tax_rate: \"19\", timezone: Europe/Berlin}",
    "tax_rate: \"19\", timezone: Europe/Berlin, email: ap@acme.example, stripe_customer_id: cus_acme}",
)
assert "cus_acme" in PAYMENTS_CATALOG and "dunning_days" in PAYMENTS_CATALOG


@dataclass
class Billed:
    store: Store
    invoice: InvoiceRecord  # final, customer acme (Stripe customer cus_acme)


def final_invoice(store: Store) -> InvoiceRecord:
    invoices.generate(store, date(2026, 2, 1), NOW)
    draft = invoices.find_invoices(store, status="draft")[0]
    return invoices.finalize_invoices(store, [draft.display_number], NOW).finalized[0]


def billed_workspace(db_url: str) -> Billed:
    store, _ = workspace(db_url, PAYMENTS_CATALOG)
    return Billed(store, final_invoice(store))


def later(days: float) -> object:
    return NOW + timedelta(days=days)
