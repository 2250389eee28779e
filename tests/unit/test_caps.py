"""Caps (docs/billing.md#caps): charge model → charge cap → plan cap → minimum → discounts → tax.
A cap is prorated by whole days like a fee, rounded once, shown as a line of its own."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.aggregation import Usage
from ratecard.domain.caps import PlanCap
from ratecard.domain.discounts import Discount
from ratecard.domain.invoice import Line
from ratecard.domain.money import quantize
from ratecard.domain.periods import Schedule, local_midnight
from ratecard.domain.pricing import Charge
from ratecard.domain.rating import Cut, Plan, Pricing, invoice_cuts, invoice_totals, rate_cut
from ratecard.domain.terms import Terms

D = Decimal
EUR = Pricing(currency="EUR", rounding="half_up", tax_rate=D(21))
TOKENS = Charge(code="tokens", model="per_unit", meter="tokens", unit_amount=D("1"), maximum=D("500.00"))
CALLS = Charge(code="calls", model="per_unit", meter="calls", unit_amount=D("0.50"))
FEE = Charge(code="fee", model="flat", amount=D("100.00"), timing="arrears")
# starts Jan 15 on anchor 1: a short first period Jan 15 -> Feb 1 (17 of 31 days), then months
SHORT = Schedule.build(date(2026, 1, 15), None, "month", "UTC", anchor_day=1)
FULL = Schedule.build(date(2026, 1, 1), None, "month", "UTC", anchor_day=1)


def utc(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


def closing(plan: Plan | tuple[Terms, ...], schedule: Schedule, usage: dict[str, str] | list[dict[str, str]],
            number: int = 0, pricing: Pricing = EUR) -> list[Line]:
    """The lines of the cut closing the schedule's `number`-th period."""
    cut = [cut for cut in invoice_cuts(schedule, utc(2026, 12, 31)) if cut.closing is not None][number]
    if isinstance(usage, dict):
        measured: dict[str, Usage] | list[dict[str, Usage]] = {k: Usage(D(v), 1) for k, v in usage.items()}
    else:
        measured = [{k: Usage(D(v), 1) for k, v in part.items()} for part in usage]
    return [line for line in rate_cut(plan, cut, measured, pricing) if line.kind != "advance"]


def amounts(lines: list[Line]) -> list[tuple[str, Decimal]]:
    return [(line.code, line.amount) for line in lines]


def test_worked_example_a_short_first_period_caps_at_the_prorated_maximum() -> None:
    # 500.00 × 17/31 = 274.193548… -> 274.19; 400.00 of usage -> a cap line of -125.81
    plan = Plan("pro", "EUR", "month", (TOKENS,))
    lines = closing(plan, SHORT, {"tokens": "400"})
    assert amounts(lines) == [("tokens", D("400.00")), ("maximum:tokens", D("-125.81"))]
    cap = lines[1]
    assert cap.kind == "maximum"
    assert cap.description == "Maximum 500.00 EUR per period on tokens (prorated 17/31 days: 274.19 EUR)"
    assert (cap.service_start, cap.service_end) == (utc(2026, 1, 15), utc(2026, 2, 1))
    totals = invoice_totals(lines, EUR)
    assert (totals.subtotal, totals.tax, totals.total) == (D("274.19"), D("57.58"), D("331.77"))


def test_a_full_period_caps_at_the_maximum_and_usage_under_it_has_no_cap_line() -> None:
    plan = Plan("pro", "EUR", "month", (TOKENS,))
    assert amounts(closing(plan, FULL, {"tokens": "612.40"})) == [("tokens", D("612.40")),
                                                                   ("maximum:tokens", D("-112.40"))]
    assert amounts(closing(plan, FULL, {"tokens": "500"})) == [("tokens", D("500.00"))]
    assert amounts(closing(plan, FULL, {})) == [("tokens", D("0"))]


def test_plan_cap_over_a_subset_of_charges_after_their_own_caps() -> None:
    # tokens 700 -> capped at 500 by its own cap; calls 300 × 0.50 = 150; the plan caps tokens + calls at 600:
    # 500 + 150 = 650 -> -50.00. The flat fee is never capped.
    plan = Plan("pro", "EUR", "month", (FEE, TOKENS, CALLS), maximum=PlanCap(D("600.00"), ("tokens", "calls")))
    lines = closing(plan, FULL, {"tokens": "700", "calls": "300"})
    assert amounts(lines) == [("fee", D("100.00")), ("tokens", D("700.00")), ("calls", D("150.00")),
                              ("maximum:tokens", D("-200.00")), ("maximum", D("-50.00"))]
    assert lines[-1].description == "Maximum 600.00 EUR per period on tokens, calls"
    # a plan cap naming only calls leaves tokens alone
    only_calls = replace(plan, maximum=PlanCap(D("100.00"), ("calls",)))
    assert amounts(closing(only_calls, FULL, {"tokens": "700", "calls": "300"}))[-1] == ("maximum", D("-50.00"))
    # without `charges`: every usage charge
    every = replace(plan, maximum=PlanCap(D("100.00")))
    assert amounts(closing(every, FULL, {"tokens": "700", "calls": "300"}))[-1] == ("maximum", D("-550.00"))


def test_the_minimum_counts_what_the_caps_left() -> None:
    # tokens 900 capped at 500; the minimum 800 compares with 100 (fee) + 500 -> true-up 200.00
    plan = Plan("pro", "EUR", "month", (FEE, TOKENS), minimum=D("800.00"))
    assert amounts(closing(plan, FULL, {"tokens": "900"})) == [("fee", D("100.00")), ("tokens", D("900.00")),
                                                                ("maximum:tokens", D("-400.00")),
                                                                ("minimum", D("200.00"))]


def test_discounts_come_after_the_caps() -> None:
    # 10% of tokens after their cap: 10% of 500 = -50.00, not of 900
    plan = Plan("pro", "EUR", "month", (FEE, TOKENS),
                discounts=(Discount("ten", percent_off=D(10), charge="tokens"),))
    assert amounts(closing(plan, FULL, {"tokens": "900"}))[-1] == ("discount:ten", D("-50.00"))
    # an amount off every charge takes at most what is left after the cap: 100 + 500
    whole = replace(plan, discounts=(Discount("all", amount_off=D("1000.00")),))
    lines = closing(whole, FULL, {"tokens": "900"})
    assert lines[-1].amount == D("-600.00") and invoice_totals(lines, EUR).total == D("0.00")


def test_caps_are_rounded_to_the_currency_of_the_invoice() -> None:
    # JPY has no minor unit: 50000 × 17/31 = 27419.35… -> 27419
    charge = replace(TOKENS, maximum=D("50000"))
    plan = Plan("pro", "JPY", "month", (charge,))
    lines = closing(plan, SHORT, {"tokens": "40000"}, pricing=Pricing(currency="JPY"))
    assert amounts(lines) == [("tokens", D("40000")), ("maximum:tokens", D("-12581"))]


def test_each_segment_is_capped_under_its_own_terms() -> None:
    # April (30 days), the cap drops from 500 to 200 on April 11: 500 × 10/30 = 166.67 over 300 of usage
    # (-133.33), then 200 × 20/30 = 133.33 over 100 (no cap line)
    at = local_midnight
    zone = UTC
    high = Plan("high", "EUR", "month", (TOKENS,))
    low = Plan("low", "EUR", "month", (replace(TOKENS, maximum=D("200.00")),))
    terms = (Terms(at(date(2026, 4, 1), zone), high), Terms(at(date(2026, 4, 11), zone), low, "prorate"))
    schedule = Schedule.build(date(2026, 4, 1), None, "month", "UTC", anchor_day=1)
    period = schedule.periods_until(utc(2026, 5, 2))[0]
    lines = rate_cut(terms, Cut(period.end, period, None), [{"tokens": Usage(D(300), 3)},
                                                             {"tokens": Usage(D(100), 1)}], EUR)
    assert amounts(lines) == [("tokens", D("300.00")), ("maximum:tokens", D("-133.33")), ("tokens", D("100.00"))]
    assert lines[1].service_end == utc(2026, 4, 11)


# ---------------------------------------------------------------- properties

money = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)
starts = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 28))


@settings(max_examples=60, deadline=None)
@given(quantity=money, maximum=money, start=starts, anchor=st.integers(1, 31))
def test_a_cap_never_raises_and_bills_at_most_the_prorated_cap(quantity: Decimal, maximum: Decimal, start: date,
                                                              anchor: int) -> None:
    schedule = Schedule.build(start, None, "month", "UTC", anchor_day=anchor)
    period = schedule.periods_until(utc(2027, 3, 1))[0]
    plan = Plan("pro", "EUR", "month", (replace(TOKENS, maximum=maximum),))
    cut = Cut(period.end, period, None)
    lines = rate_cut(plan, cut, {"tokens": Usage(quantity, 1)}, EUR)
    uncapped = rate_cut(Plan("pro", "EUR", "month", (replace(TOKENS, maximum=None),)), cut,
                        {"tokens": Usage(quantity, 1)}, EUR)
    billed = sum((line.amount for line in lines), D(0))
    before = sum((line.amount for line in uncapped), D(0))
    assert D(0) <= billed <= before  # never raises, never negative
    assert billed <= quantize(period.prorate(maximum), "EUR")  # at most the prorated cap, rounded once
    assert billed == min(before, quantize(period.prorate(maximum), "EUR"))
    assert all(line.amount < 0 for line in lines if line.kind == "maximum")


@settings(max_examples=60, deadline=None)
@given(tokens=money, calls=money, plan_cap=st.none() | money, minimum=st.none() | money)
def test_without_a_cap_nothing_changes_and_a_plan_cap_bounds_its_charges(tokens: Decimal, calls: Decimal,
                                                                        plan_cap: Decimal | None,
                                                                        minimum: Decimal | None) -> None:
    period = FULL.periods_until(utc(2026, 3, 1))[0]
    cut = Cut(period.end, period, None)
    usage = {"tokens": Usage(tokens, 1), "calls": Usage(calls * 2, 1)}
    plain = Plan("pro", "EUR", "month", (FEE, replace(TOKENS, maximum=None), CALLS), minimum=minimum)
    lines = rate_cut(plain, cut, usage, EUR)
    assert all(line.kind != "maximum" for line in lines)
    assert sum((line.amount for line in lines if line.kind == "usage"), D(0)) == tokens + calls
    if plan_cap is None:
        return
    capped = rate_cut(replace(plain, maximum=PlanCap(plan_cap)), cut, usage, EUR)
    usage_after = sum((line.amount for line in capped if line.kind in ("usage", "maximum")), D(0))
    assert usage_after == min(tokens + calls, plan_cap)
    total = sum((line.amount for line in capped), D(0))
    assert total <= sum((line.amount for line in lines), D(0))
