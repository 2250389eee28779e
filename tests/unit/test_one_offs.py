"""One-off charges (a set-up fee, professional services): billed once, on the subscription's first
invoice cut at or after their instant, as lines of kind one_off: quantity x amount, never
discounted, taxed like every line."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.rating import invoice_totals

from .subscription_cuts import at, catalog_of, invoices, problems_of, shown

D = Decimal


def _document(one_off: list[dict[str, Any]], **subscription: Any) -> dict[str, Any]:
    return {
        "billing_entity": {"name": "Acme", "currency": "EUR", "timezone": "UTC"},
        "plans": [{"code": "pro", "currency": "EUR",
                   "charges": [{"code": "base", "model": "flat", "amount": "100.00", "timing": "advance"}]},
                  {"code": "max", "currency": "EUR",
                   "charges": [{"code": "base", "model": "flat", "amount": "200.00", "timing": "advance"}]}],
        "customers": [{"reference": "c1", "currency": "EUR", "tax_rate": "21"}],
        "subscriptions": [{"reference": "s1", "customer": "c1", "plan": "pro", "start": "2026-01-01",
                           "discounts": [{"code": "launch", "percent_off": "10"}], "one_off": one_off,
                           **subscription}],
    }


def test_set_up_fee_and_services_on_the_next_invoice_not_discounted_but_taxed() -> None:
    # set-up 500.00 at the start: on the opening invoice. 7.5 hours at 120.00 = 900.00 on Jan 10 and
    # a 250.00 migration at Feb 1 00:00: both on the Feb 1 invoice. The 10% discount takes only from
    # the fee (10.00); tax 21% of everything: Jan 1: (100.00 - 10.00 + 500.00) x 21% = 123.90.
    catalog = catalog_of(_document([
        {"code": "setup", "amount": "500.00", "at": "2026-01-01", "description": "Set-up fee"},
        {"code": "workshop", "amount": "120.00", "quantity": "7.5", "at": "2026-01-10T14:00:00Z"},
        {"code": "migration", "amount": "250.00", "at": "2026-02-01"},
    ]))
    bills = invoices(catalog, "s1", date(2026, 3, 1))
    january = bills[at(date(2026, 1, 1))]
    assert shown(january) == [("advance", "base", "1", "100.00", "100.00"),
                              ("discount", "discount:launch", "1", "-10.00", "-10.00"),
                              ("one_off", "setup", "1", "500.00", "500.00")]
    assert january[2].description == "Set-up fee"
    assert invoice_totals(january, catalog.pricing_for(catalog.subscriptions["s1"])).tax == D("123.90")
    assert shown(bills[at(date(2026, 2, 1))]) == [("advance", "base", "1", "100.00", "100.00"),
                                                  ("discount", "discount:launch", "1", "-10.00", "-10.00"),
                                                  ("one_off", "workshop", "7.5", "120.00", "900.00"),
                                                  ("one_off", "migration", "1", "250.00", "250.00")]
    assert [line.kind for line in bills[at(date(2026, 3, 1))]] == ["advance", "discount"]


def test_a_change_invoiced_at_once_cuts_an_invoice_that_takes_the_charges_due_by_then() -> None:
    catalog = catalog_of(_document([{"code": "upgrade", "amount": "50.00", "at": "2026-01-10"}],
                                   changes=[{"at": "2026-01-12", "plan": "max", "proration": "invoice_now"}]))
    bills = invoices(catalog, "s1", date(2026, 2, 1))
    assert [line.code for line in bills[at(date(2026, 1, 12))] if line.kind == "one_off"] == ["upgrade"]
    assert not [line for line in bills[at(date(2026, 2, 1))] if line.kind == "one_off"]


def test_one_offs_are_validated_with_their_path() -> None:
    shape = problems_of(_document([{"code": "a", "amount": "-1", "at": "2026-02-01"},
                                   {"code": "c", "amount": "1", "at": "2026-02-01", "quantity": "0"},
                                   {"code": "e", "at": "2026-02-01"},
                                   {"code": "f", "amount": "1", "at": "2026-02-01T10:00:00"}]))
    assert set(shape) == {"subscriptions[0].one_off[0].amount", "subscriptions[0].one_off[1].quantity",
                          "subscriptions[0].one_off[2].amount", "subscriptions[0].one_off[3].at"}
    found = problems_of(_document([{"code": "b", "amount": "1", "at": "2025-12-31"},
                                   {"code": "b", "amount": "1", "at": "2026-07-01"},
                                   {"code": "d", "amount": "1e40", "at": "2026-02-01"}], end="2026-06-01"))
    assert set(found) == {"subscriptions[0].one_off[0].at", "subscriptions[0].one_off[1].code",
                          "subscriptions[0].one_off[1].at", "subscriptions[0].one_off[2].amount"}
    assert "before the subscription's start" in found["subscriptions[0].one_off[0].at"]
    assert "after the subscription's end" in found["subscriptions[0].one_off[1].at"]


@settings(max_examples=60, deadline=None)
@given(days=st.lists(st.integers(min_value=0, max_value=150), min_size=1, max_size=6),
       amount=st.decimals(min_value=0, max_value=100_000, places=2))
def test_each_one_off_is_billed_exactly_once_at_the_first_cut_at_or_after_it(days: list[int], amount: Decimal) -> None:
    items = [{"code": f"item{n}", "amount": f"{amount}", "at": (date(2026, 1, 1) + timedelta(days=day)).isoformat()}
             for n, day in enumerate(days)]
    bills = invoices(catalog_of(_document(items)), "s1", date(2026, 7, 1))
    billed = {line.code: boundary for boundary, lines in bills.items() for line in lines if line.kind == "one_off"}
    assert sum(1 for lines in bills.values() for line in lines if line.kind == "one_off") == len(days)
    for n, day in enumerate(days):
        due = at(date(2026, 1, 1) + timedelta(days=day))
        boundary = billed[f"item{n}"]
        assert boundary >= due
        assert not [earlier for earlier in bills if due <= earlier < boundary]
