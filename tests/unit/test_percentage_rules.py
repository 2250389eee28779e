"""Percentage charges priced event by event (free units, per-transaction bounds) and graduated_percentage
(docs/billing.md), with hand-computed examples (Lago's among them) and properties."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.aggregation import Usage
from ratecard.domain.money import quantize
from ratecard.domain.periods import Schedule
from ratecard.domain.pricing import Charge, MissingValues, Tier, percentage_per_event, price_usage
from ratecard.domain.rating import Plan, Pricing, invoice_cuts, rate_cut
from ratecard.domain.terms import Terms
from ratecard.domain.tiers import tier_parts

D = Decimal


def percentage(**fields: object) -> Charge:
    return Charge(code="fees", model="percentage", meter="payments", **fields)


def billed(charge: Charge, *values: str) -> str:
    """The line amount, rounded once, of a period whose events carry these values in order."""
    events = tuple(D(value) for value in values)
    price = price_usage(charge, sum(events, D(0)), len(events), events)
    return str(quantize(price.amount, "EUR"))


# ---------------------------------------------------------------------------------------------
# per-transaction bounds
# ---------------------------------------------------------------------------------------------


def test_each_event_fee_is_held_between_the_minimum_and_the_maximum() -> None:
    # 2% + 0.10 per event, each fee in [0.50, 15.00]:
    #   50.00 -> 1.00 + 0.10 = 1.10;  200.00 -> 4.00 + 0.10 = 4.10;  1,000.00 -> 20.00 + 0.10 = 20.10 -> 15.00
    charge = percentage(rate=D(2), fixed_amount=D("0.10"), per_transaction_min_amount=D("0.50"),
                        per_transaction_max_amount=D("15.00"))
    assert billed(charge, "50.00", "200.00", "1000.00") == "20.20"
    # a 10.00 payment: 0.20 + 0.10 = 0.30, raised to the 0.50 minimum
    assert billed(charge, "10.00") == "0.50"
    # without the bounds the same events bill 2% of 1,250.00 plus 3 × 0.10 = 25.30
    assert billed(percentage(rate=D(2), fixed_amount=D("0.10")), "50.00", "200.00", "1000.00") == "25.30"


def test_only_a_minimum_or_only_a_maximum() -> None:
    low = percentage(rate=D(2), per_transaction_min_amount=D("1.00"))
    assert billed(low, "10.00", "100.00") == "3.00"  # 0.20 -> 1.00, then 2.00
    high = percentage(rate=D(2), per_transaction_max_amount=D("1.00"))
    assert billed(high, "10.00", "100.00") == "1.20"  # 0.20, then 2.00 -> 1.00


# ---------------------------------------------------------------------------------------------
# free units
# ---------------------------------------------------------------------------------------------


def test_the_first_events_of_the_period_are_free() -> None:
    # 2% + 0.10, the first 2 events free: 100.00 and 300.00 free; 40.00 -> 0.80 + 0.10 = 0.90;
    # 500.00 -> 10.00 + 0.10 = 10.10; total 11.00
    charge = percentage(rate=D(2), fixed_amount=D("0.10"), free_units_per_events=2)
    assert billed(charge, "100.00", "300.00", "40.00", "500.00") == "11.00"
    assert billed(charge, "100.00", "300.00") == "0.00"


def test_the_first_amount_of_the_period_is_free() -> None:
    # 2% + 0.10, the first 500.00 free: 200.00 free (300.00 left), 250.00 free (50.00 left),
    # 100.00 passes it: (100.00 - 50.00) × 2% + 0.10 = 1.10; 400.00 -> 8.00 + 0.10 = 8.10; total 9.20
    charge = percentage(rate=D(2), fixed_amount=D("0.10"), free_units_per_total_aggregation=D("500.00"))
    assert billed(charge, "200.00", "250.00", "100.00", "400.00") == "9.20"
    # an event that uses up the free amount exactly is free; the next one pays in full
    assert billed(charge, "200.00", "300.00", "100.00") == "2.10"


def test_lago_example_three_events_or_500_whichever_comes_first() -> None:
    # Lago's documentation: 1.2% + 0.10, the first 3 events or 500 free. 200, 100 and 100 are free
    # (3 events, 400 of the 500); the fourth, 50, is charged 0.10 + 1.2% of 50 = 0.70
    charge = percentage(rate=D("1.2"), fixed_amount=D("0.10"), free_units_per_events=3,
                        free_units_per_total_aggregation=D(500))
    assert billed(charge, "200", "100", "100", "50") == "0.70"


def test_the_free_amount_can_run_out_before_the_free_events() -> None:
    # 1.2% + 0.10, the first 3 events or 250 free: 200 free (50 left); 100 passes the amount:
    # 50 × 1.2% + 0.10 = 0.70; then 100 -> 1.20 + 0.10 = 1.30 and 50 -> 0.70; total 2.70
    charge = percentage(rate=D("1.2"), fixed_amount=D("0.10"), free_units_per_events=3,
                        free_units_per_total_aggregation=D(250))
    assert billed(charge, "200", "100", "100", "50") == "2.70"


def test_a_refund_is_never_free_and_uses_no_allowance() -> None:
    # 2%, the first event free: the -50.00 refund is billed (-1.00) and the 100.00 after it is free
    charge = percentage(rate=D(2), free_units_per_events=1)
    assert billed(charge, "-50.00", "100.00", "100.00") == "1.00"


def test_free_events_are_not_raised_to_the_minimum() -> None:
    # the first event free, then 10.00 -> 0.20 + 0.10 raised to 0.50
    charge = percentage(rate=D(2), fixed_amount=D("0.10"), free_units_per_events=1,
                        per_transaction_min_amount=D("0.50"))
    assert billed(charge, "10.00", "10.00") == "0.50"


def test_zero_allowances_are_no_allowances() -> None:
    # 0 free events or a free amount of 0 is what leaving them out is (a subscription's override
    # may set them to 0 to take a plan's allowance away)
    plain = percentage(rate=D(2), fixed_amount=D("0.10"))
    zero = percentage(rate=D(2), fixed_amount=D("0.10"), free_units_per_events=0,
                      free_units_per_total_aggregation=D(0))
    assert not zero.per_event
    assert billed(zero, "100.00", "50.00") == billed(plain, "100.00", "50.00") == "3.20"


def test_no_events_bill_nothing_and_events_need_their_values() -> None:
    charge = percentage(rate=D(2), fixed_amount=D("0.10"), per_transaction_min_amount=D("0.50"))
    assert price_usage(charge, D(0), 0).amount == 0
    with pytest.raises(MissingValues):
        price_usage(charge, D(100), 1)


def test_an_invoice_line_from_usage_with_each_event_value() -> None:
    charge = percentage(rate=D(2), fixed_amount=D("0.10"), per_transaction_min_amount=D("0.50"),
                        per_transaction_max_amount=D("15.00"))
    plan = Plan("pay", "EUR", "month", (charge,))
    schedule = Schedule.build(datetime(2026, 1, 1, tzinfo=UTC), None, "month", ZoneInfo("UTC"))
    cut = invoice_cuts(schedule, datetime(2026, 2, 1, tzinfo=UTC))[1]
    values = (D("50.00"), D("200.00"), D("1000.00"))
    lines = rate_cut(plan, cut, {"payments": Usage(D("1250.00"), 3, values)}, Pricing("EUR"))
    assert [(line.code, str(line.quantity), str(line.amount)) for line in lines] == [("fees", "1250.00", "20.20")]


def test_each_segment_of_a_period_cut_by_a_change_has_its_own_free_units() -> None:
    # the first payment free on both plans; the change on Jan 15 cuts January in two lines, each
    # priced under its own terms: 100.00 free, then 60.00 free and 40.00 at 2% = 0.80
    first = Plan("a", "EUR", "month", (percentage(rate=D(2), free_units_per_events=1),))
    second = Plan("b", "EUR", "month", (percentage(rate=D(2), free_units_per_events=1, fixed_amount=D("0")),))
    terms = (Terms(datetime(2026, 1, 1, tzinfo=UTC), first), Terms(datetime(2026, 1, 15, tzinfo=UTC), second))
    schedule = Schedule.build(datetime(2026, 1, 1, tzinfo=UTC), None, "month", ZoneInfo("UTC"))
    cut = invoice_cuts(schedule, datetime(2026, 2, 1, tzinfo=UTC), terms)[1]
    usage = [{"payments": Usage(D("100.00"), 1, (D("100.00"),))},
             {"payments": Usage(D("100.00"), 2, (D("60.00"), D("40.00")))}]
    lines = rate_cut(terms, cut, usage, Pricing("EUR"))
    assert [(line.service_start.day, str(line.amount)) for line in lines] == [(1, "0.00"), (15, "0.80")]


# ---------------------------------------------------------------------------------------------
# graduated_percentage
# ---------------------------------------------------------------------------------------------

TWO_TIERS = Charge(code="volume", model="graduated_percentage", meter="payments",
                   tiers=(Tier(D(1000), rate=D(1)), Tier(None, rate=D("0.5"), flat_amount=D(5))))


def test_graduated_percentage_example() -> None:
    # 1% up to 1,000, 0.5% above with a flat 5: 3,000 -> 1,000 × 1% + 2,000 × 0.5% + 5 = 10 + 10 + 5 = 25.00
    assert str(quantize(price_usage(TWO_TIERS, D(3000)).amount, "EUR")) == "25.00"
    # 800 stays in the first tier: 8.00, and the second tier's flat amount is not due
    assert str(quantize(price_usage(TWO_TIERS, D(800)).amount, "EUR")) == "8.00"


def test_lago_graduated_percentage_example() -> None:
    # Lago's tiers: 1% + $200 up to 1,000; 2% + $300 up to 10,000; 3% + $400 above.
    # 500 -> 500 × 1% + 200 = 205.00; 1,050 -> 10 + 200 + 50 × 2% + 300 = 511.00 (205 + Lago's 306)
    charge = Charge(code="c", model="graduated_percentage", meter="m",
                    tiers=(Tier(D(1000), rate=D(1), flat_amount=D(200)),
                           Tier(D(10000), rate=D(2), flat_amount=D(300)),
                           Tier(None, rate=D(3), flat_amount=D(400))))
    assert str(quantize(price_usage(charge, D(500)).amount, "USD")) == "205.00"
    assert str(quantize(price_usage(charge, D(1050)).amount, "USD")) == "511.00"


def test_graduated_percentage_parts_show_each_tier_with_its_rate_as_a_unit_price() -> None:
    parts = tier_parts(TWO_TIERS, D(3000))
    assert [(p.tier, str(p.quantity), str(p.unit_amount), str(p.flat_amount), str(p.amount)) for p in parts] == [
        (1, "1000", "0.01", "0", "10.00"), (2, "2000", "0.005", "5", "15.000")]
    assert sum(p.amount for p in parts) == price_usage(TWO_TIERS, D(3000)).amount


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------

money = st.decimals(min_value=D("-1000"), max_value=D("100000"), places=2, allow_nan=False, allow_infinity=False)
positive_money = st.decimals(min_value=D(0), max_value=D("100000"), places=2, allow_nan=False,
                             allow_infinity=False)
rates = st.decimals(min_value=D(0), max_value=D(100), places=3, allow_nan=False, allow_infinity=False)
fees = st.decimals(min_value=D(0), max_value=D(50), places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(money, max_size=30), rate=rates, fixed=fees, bounds=st.tuples(fees, fees))
def test_bounds_keep_the_total_between_count_times_min_and_count_times_max(
        values: list[Decimal], rate: Decimal, fixed: Decimal, bounds: tuple[Decimal, Decimal]) -> None:
    low, high = min(bounds), max(bounds)
    charge = percentage(rate=rate, fixed_amount=fixed, per_transaction_min_amount=low, per_transaction_max_amount=high)
    total = percentage_per_event(charge, values)
    assert len(values) * low <= total <= len(values) * high
    for value in values:  # each event's own fee is inside the bounds
        assert low <= percentage_per_event(charge, [value]) <= high


@settings(max_examples=200, deadline=None)
@given(values=st.lists(money, max_size=30), rate=rates, fixed=fees,
       bounds=st.tuples(st.none() | fees, st.none() | fees),
       free_events=st.none() | st.integers(min_value=0, max_value=40),
       free_amount=st.none() | positive_money)
def test_free_units_never_raise_an_amount(values: list[Decimal], rate: Decimal, fixed: Decimal,
                                          bounds: tuple[Decimal | None, Decimal | None], free_events: int | None,
                                          free_amount: Decimal | None) -> None:
    low, high = bounds
    if low is not None and high is not None and low > high:
        low, high = high, low
    paying = percentage(rate=rate, fixed_amount=fixed, per_transaction_min_amount=low,
                        per_transaction_max_amount=high)
    free = percentage(rate=rate, fixed_amount=fixed, per_transaction_min_amount=low, per_transaction_max_amount=high,
                      free_units_per_events=free_events, free_units_per_total_aggregation=free_amount)
    assert percentage_per_event(free, values) <= percentage_per_event(paying, values)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(money, max_size=30), rate=rates, fixed=fees)
def test_event_by_event_without_rules_is_the_percentage_of_the_sum(values: list[Decimal], rate: Decimal,
                                                                   fixed: Decimal) -> None:
    charge = percentage(rate=rate, fixed_amount=fixed)
    quantity = sum(values, D(0))
    assert percentage_per_event(charge, values) == price_usage(charge, quantity, len(values)).amount


@settings(max_examples=200, deadline=None)
@given(quantity=positive_money, rate=rates)
def test_graduated_percentage_with_one_tier_is_percentage(quantity: Decimal, rate: Decimal) -> None:
    one_tier = Charge(code="c", model="graduated_percentage", meter="m", tiers=(Tier(None, rate=rate),))
    assert price_usage(one_tier, quantity).amount == price_usage(percentage(rate=rate), quantity).amount


@st.composite
def rate_tiers(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted({D(b) for b in draw(st.lists(st.integers(1, 10**6), max_size=4))})
    return (*[Tier(b, rate=draw(rates), flat_amount=draw(fees)) for b in bounds],
            Tier(None, rate=draw(rates), flat_amount=draw(fees)))


@settings(max_examples=200, deadline=None)
@given(tiers=rate_tiers(), quantity=positive_money)
def test_graduated_percentage_parts_add_up_to_the_price(tiers: tuple[Tier, ...], quantity: Decimal) -> None:
    charge = Charge(code="c", model="graduated_percentage", meter="m", tiers=tiers)
    parts = tier_parts(charge, quantity)
    assert sum((part.amount for part in parts), D(0)) == price_usage(charge, quantity).amount
    assert sum((part.quantity for part in parts), D(0)) == quantity
    for part in parts:
        assert part.unit_amount * 100 == tiers[part.tier - 1].rate
