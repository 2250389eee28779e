"""A catalog read from the store (current_catalog) is the catalog its document builds, and serves
that document back, though it validates customers and subscriptions one at a time and keeps one
object for repeated values: the invoices of a run are the same either way."""

from __future__ import annotations

from datetime import timedelta

from ratecard.billing.export import invoices_json
from ratecard.billing.run import generate_invoices
from ratecard.catalog import build_catalog
from ratecard.services.catalog import catalog_at
from ratecard.services.invoices import finalize_due_invoices
from ratecard.store.invoices import list_invoices

from .scenario import NOW, catalog_document, current, workspace
from .test_usage_in_chunks import CATALOG as CHUNKS_CATALOG

# equal values written differently (21 and 21.00, one instant in two offsets) must keep their own form
CATALOG = """
billing_entity: {code: main, name: Acme Cloud BV, country: NL, timezone: Europe/Amsterdam, currency: EUR}
billing_entities:
  - {code: us, name: Acme Inc, country: US, timezone: America/New_York, currency: USD, invoice_prefix: US}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
  - {code: api_calls, aggregation: count}
plans:
  - code: pro
    currency: EUR
    interval: month
    trial_days: 7
    charges:
      - {code: base, model: flat, amount: "49.00", timing: advance}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.0125"}
      - code: tokens
        meter: tokens
        model: graduated
        tiers: [{up_to: 1000, unit_amount: "0"}, {up_to: null, unit_amount: "0.002", flat_amount: "5"}]
    currencies:
      USD:
        charges:
          base: {amount: "55.00"}
          calls: {unit_amount: "0.015"}
          tokens: {tiers: [{up_to: 1000, unit_amount: "0"}, {up_to: null, unit_amount: "0.0025", flat_amount: "6"}]}
  - code: team
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "20.00", timing: advance}
    currencies:
      USD: {charges: {base: {amount: "22.00"}}}
    discounts: [{code: launch, percent_off: "10", periods: 2}]
coupons:
  - {code: HALF, percent_off: "50", duration: forever}
customers:
  - {reference: a, name: A, country: NL, currency: EUR, tax_rate: "21"}
  - {reference: b, name: B, country: NL, currency: EUR, tax_rate: "21.00"}
  - {reference: c, name: C, country: NL, currency: EUR, tax_rate: "21", timezone: Asia/Tokyo}
  - {reference: d, name: D, country: US, currency: USD, tax_rate: "0", billing_entity: us}
subscriptions:
  - {reference: a-pro, customer: a, plan: pro, start: 2026-01-01, billing_anchor: 1}
  - {reference: b-pro, customer: b, plan: pro, start: "2026-01-01T00:00:00+01:00", trial_days: 0}
  - {reference: c-pro, customer: c, plan: pro, start: "2025-12-31T23:00:00Z", trial_days: 0,
     overrides: {base: {amount: "39.00"}}}
  - reference: d-pro
    customer: d
    plan: pro
    start: 2026-01-01
    trial_days: 0
    coupons: [HALF]
    one_off: [{code: setup, amount: "100.00", at: 2026-01-01}]
    changes: [{at: 2026-01-16, plan: team, quantity: 3, proration: prorate}]
  - {reference: a-team, customer: a, plan: team, start: 2026-01-01, quantity: 2, end: 2026-03-15,
     requires_reference: true}
"""


def test_the_stored_catalog_is_the_documents_and_bills_the_same(db_url: str) -> None:
    document = catalog_document(CATALOG)
    built = build_catalog(document)
    store, version = workspace(db_url, CATALOG)
    try:
        read_version, stored = current(store)
        assert read_version == version
        # repr: a Decimal's digits and a datetime's offset, which == would not tell apart
        assert {key: repr(spec) for key, spec in stored.customers.items()} == \
            {key: repr(spec) for key, spec in built.customers.items()}
        assert {key: repr(spec) for key, spec in stored.subscriptions.items()} == \
            {key: repr(spec) for key, spec in built.subscriptions.items()}
        assert [str(stored.customers[key].tax_rate) for key in "abcd"] == ["21", "21.00", "21", "0"]
        assert stored.subscriptions["b-pro"].start.isoformat() == "2026-01-01T00:00:00+01:00"
        assert stored.subscriptions["c-pro"].start.isoformat() == "2025-12-31T23:00:00+00:00"
        assert repr(stored.plans) == repr(built.plans) and repr(stored.meters) == repr(built.meters)
        assert stored.entities == built.entities
        assert [s.reference for s in stored.subscriptions_of("a")] == ["a-pro", "a-team"]
        assert stored.document == document  # validated again on first use
        assert catalog_at(store, version).document == document

        until = NOW.date()
        first = generate_invoices(store, built, version, until, NOW)
        written = invoices_json(list_invoices(store))
        again = generate_invoices(store, stored, version, until, NOW)  # every draft recomputed
        assert first.created > 0 and first.failures == again.failures == []
        assert (again.created, again.updated, again.unchanged) == (0, 0, first.created)
        assert invoices_json(list_invoices(store)) == written
        assert {invoice["customer"] for invoice in written} == {"a", "b", "c", "d"}
    finally:
        store.dispose()


def test_a_run_checking_final_invoices_does_not_validate_the_whole_catalog(db_url: str) -> None:
    """Once invoices are final, the next run compares each subscription's catalog entry with the
    version its final invoice was billed from: entry by entry from the stored text, so the catalog
    read from the store stays packed (not a model per customer and subscription), and the run
    bills the same as one with the whole document in hand."""
    store, version = workspace(db_url, CHUNKS_CATALOG)
    try:
        _, catalog = current(store)
        generate_invoices(store, catalog, version, NOW.date(), NOW)
        finalized = finalize_due_invoices(store, NOW + timedelta(days=40))
        assert finalized, "the scenario needs final invoices"
        before = sorted((i.number, i.total) for i in list_invoices(store))
        _, catalog = current(store)
        generate_invoices(store, catalog, version, NOW.date(), NOW)
        assert isinstance(catalog.source.held_or_text(), str)  # never validated whole
        whole = build_catalog(catalog.document)
        generate_invoices(store, whole, version, NOW.date(), NOW)
        assert sorted((i.number, i.total) for i in list_invoices(store)) == before
    finally:
        store.dispose()
