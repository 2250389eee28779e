"""A workspace with a Stripe-linked customer and one final invoice, and the Stripe stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from ratecard.services import invoices
from ratecard.store import Store
from ratecard.store.invoices import InvoiceRecord

from ..integration.scenario import CATALOG, NOW, workspace
from .stripe_standin import StripeStandIn

WEBHOOK_SECRET = "whsec_test_secret"
PAYMENTS_CATALOG = CATALOG.replace(
    "billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}",
    "billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR, payments: {dunning_days: [1, 3]},"
    " email: {sender: billing@acme.example, send_on_finalization: false}}",
).replace(
    "tax_rate: \"19\", timezone: Europe/Berlin}",
    "tax_rate: \"19\", timezone: Europe/Berlin, email: ap@acme.example, stripe_customer_id: cus_acme}",
)
assert "cus_acme" in PAYMENTS_CATALOG and "dunning_days" in PAYMENTS_CATALOG


@pytest.fixture
def stripe_standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeStandIn]:
    standin = StripeStandIn().start()
    standin.customers["cus_acme"] = "pm_card_visa"
    monkeypatch.setenv("RATECARD_STRIPE_API_KEY", "sk_test_standin")
    monkeypatch.setenv("RATECARD_STRIPE_API_BASE", standin.url)
    monkeypatch.setenv("RATECARD_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    yield standin
    standin.stop()


@dataclass
class Billed:
    store: Store
    invoice: InvoiceRecord  # final, customer acme (Stripe customer cus_acme)


def final_invoice(store: Store) -> InvoiceRecord:
    invoices.generate(store, date(2026, 2, 1), NOW)
    draft = invoices.find_invoices(store, status="draft")[0]
    return invoices.finalize_invoices(store, [draft.display_number], NOW).finalized[0]


@pytest.fixture
def billed(db_url: str) -> Iterator[Billed]:
    store, _ = workspace(db_url, PAYMENTS_CATALOG)
    try:
        yield Billed(store, final_invoice(store))
    finally:
        store.dispose()


def later(days: float) -> object:
    return NOW + timedelta(days=days)
