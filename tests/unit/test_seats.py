"""Seats: a subscription's quantity multiplies its flat fees (line quantity = seats, unit amount =
the fee); a change of quantity inside a period prorates the fees billed in advance like any change
of terms: the unused old seats credited, the new ones charged, by days."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.money import quantize

from .subscription_cuts import at, catalog_of, invoices, problems_of, shown

D = Decimal


def _document(subscription: dict[str, Any], fee: str = "10.00", timing: str = "advance") -> dict[str, Any]:
    return {
        "billing_entity": {"name": "Acme", "currency": "USD", "timezone": "UTC"},
        "plans": [{"code": "team", "name": "Team", "currency": "USD",
                   "charges": [{"code": "seat", "model": "flat", "amount": fee, "timing": timing,
                                "description": "Seat"}]},
                  {"code": "business", "name": "Business", "currency": "USD",
                   "charges": [{"code": "seat", "model": "flat", "amount": "20.00", "timing": timing}]}],
        "customers": [{"reference": "c1", "currency": "USD"}],
        "subscriptions": [{"reference": "s1", "customer": "c1", "plan": "team", "start": "2026-01-01",
                           **subscription}],
    }


def test_ten_seats_then_fifteen_from_january_16() -> None:
    # 10 seats x 10.00 billed Jan 1. From Jan 16 (16 of 31 days left) 15 seats: the Feb 1 invoice
    # credits the unused old seats, -100.00 x 16/31 = -51.61, charges the new ones,
    # 150.00 x 16/31 = 77.42 (net 25.81 = 5 x 10.00 x 16/31), and bills February's 15 seats.
    catalog = catalog_of(_document({"quantity": 10, "changes": [{"at": "2026-01-16", "quantity": 15}]}))
    bills = invoices(catalog, "s1", date(2026, 2, 1))
    assert shown(bills[at(date(2026, 1, 1))]) == [("advance", "seat", "10", "10.00", "100.00")]
    february = bills[at(date(2026, 2, 1))]
    assert shown(february) == [("advance", "seat", "15", "10.00", "150.00"),
                               ("proration", "seat", "1", "-51.61", "-51.61"),
                               ("proration", "seat", "1", "77.42", "77.42")]
    assert february[1].description == "Unused time from 2026-01-16 (prorated 16/31 days)"
    assert february[2].description == "Remaining time on 15 × Team from 2026-01-16 (prorated 16/31 days)"
    assert sum(line.amount for line in february if line.kind == "proration") == D("25.81")


def test_seats_multiply_arrears_fees_and_a_short_first_period() -> None:
    # 3 seats from Jan 11 with anchor 1: 21 of 31 days of 3 x 10.00 = 20.32 (30 x 21/31 = 20.3225...)
    catalog = catalog_of(_document({"quantity": 3, "start": "2026-01-11", "billing_anchor": 1}, timing="arrears"))
    february = invoices(catalog, "s1", date(2026, 2, 1))[at(date(2026, 2, 1))]
    assert shown(february) == [("arrears", "seat", "3", "10.00", "20.32")]


def test_the_quantity_stays_across_a_change_of_plan() -> None:
    catalog = catalog_of(_document({"quantity": 4, "changes": [{"at": "2026-02-01", "plan": "business"}]}))
    bills = invoices(catalog, "s1", date(2026, 3, 1))
    assert shown(bills[at(date(2026, 3, 1))]) == [("advance", "seat", "4", "20.00", "80.00")]


def test_quantity_is_validated_with_its_path() -> None:
    assert "subscriptions[0].quantity" in problems_of(_document({"quantity": 0}))
    assert "subscriptions[0].quantity" in problems_of(_document({"quantity": 2.5}))
    assert "subscriptions[0].quantity" in problems_of(_document({"quantity": 1_000_001}))
    assert "subscriptions[0].changes[0].quantity" in problems_of(
        _document({"changes": [{"at": "2026-01-10", "quantity": -3}]}))


@settings(max_examples=60, deadline=None)
@given(seats=st.integers(min_value=1, max_value=10_000), later=st.integers(min_value=1, max_value=10_000),
       day=st.integers(min_value=2, max_value=31), fee=st.decimals(min_value=0, max_value=1000, places=2))
def test_seats_times_the_fee_and_prorations_add_up_to_the_days_share(seats: int, later: int, day: int,
                                                                     fee: Decimal) -> None:
    catalog = catalog_of(_document({"quantity": seats, "changes": [{"at": f"2026-01-{day:02d}", "quantity": later}]},
                                   fee=f"{fee}"))
    bills = invoices(catalog, "s1", date(2026, 3, 1))
    # full periods: seats x fee
    assert [line.amount for line in bills[at(date(2026, 1, 1))]] == [seats * fee]
    assert [line.amount for line in bills[at(date(2026, 3, 1))]] == [later * fee]
    # the change: each line rounded once, so together within a cent of (new - old) x fee x days left / 31
    prorations = [line.amount for line in bills[at(date(2026, 2, 1))] if line.kind == "proration"]
    exact = (later - seats) * fee * (32 - day) / D(31)
    assert abs(sum(prorations, D(0)) - exact) <= D("0.01")
    assert all(abs(amount) <= quantize(max(seats, later) * fee, "USD") for amount in prorations)


def test_fewer_seats_under_a_percentage_discount_credit_what_was_paid_not_the_list_price() -> None:
    # 10 seats x 10.00 with 50% off, billed Jan 1: 100.00 - 50.00 = 50.00 paid. From Jan 16 (16 of
    # 31 days left) 5 seats: the unused old seats are credited -100.00 x 16/31 = -51.61, the new
    # ones charged 50.00 x 16/31 = 25.81 (net -25.80 at list price). January's lines now add up to
    # 74.20, so its discount is 37.10, not the 50.00 already taken: the Feb 1 invoice gives back
    # +12.90 of it. January then costs 100.00 - 25.80 - 37.10 = 37.10 = 74.20 x 50%, as if the
    # customer had been billed the discounted price all along (as Stripe discounts prorations).
    catalog = catalog_of(_document({"quantity": 10, "discounts": [{"code": "half", "percent_off": "50"}],
                                    "changes": [{"at": "2026-01-16", "quantity": 5}]}))
    bills = invoices(catalog, "s1", date(2026, 2, 1))
    january = bills[at(date(2026, 1, 1))]
    assert sum(line.amount for line in january) == D("50.00")
    february = bills[at(date(2026, 2, 1))]
    january_lines = [line for line in february if line.service_start < at(date(2026, 2, 1))]
    assert [(line.kind, line.amount) for line in january_lines] == [
        ("proration", D("-51.61")), ("proration", D("25.81")), ("discount", D("12.90"))]
    assert sum(line.amount for line in january) + sum(line.amount for line in january_lines) == D("37.10")


@settings(max_examples=60, deadline=None)
@given(seats=st.integers(min_value=1, max_value=500), later=st.integers(min_value=1, max_value=500),
       day=st.integers(min_value=2, max_value=31), percent=st.integers(min_value=1, max_value=100),
       fee=st.decimals(min_value=0, max_value=1000, places=2))
def test_a_period_under_a_percentage_discount_costs_its_share_of_its_lines_whatever_the_seat_change(
        seats: int, later: int, day: int, percent: int, fee: Decimal) -> None:
    catalog = catalog_of(_document({"quantity": seats, "discounts": [{"code": "p", "percent_off": f"{percent}"}],
                                    "changes": [{"at": f"2026-01-{day:02d}", "quantity": later}]}, fee=f"{fee}"))
    bills = invoices(catalog, "s1", date(2026, 2, 1))
    period = [line for bill in bills.values() for line in bill if line.service_start < at(date(2026, 2, 1))]
    listed = sum((line.amount for line in period if line.kind != "discount"), D(0))
    discount = sum((line.amount for line in period if line.kind == "discount"), D(0))
    # the period's discount is its percentage of the period's lines, rounded once: never more (an
    # over-credit when seats go down) and never less (an undercharge when they go up)
    assert discount == -quantize(max(listed, D(0)) * percent / 100, "USD")
    # and no invoice's discount line charges more than it gives back of what was taken before
    assert discount <= 0
