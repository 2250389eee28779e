"""Discounts (docs/billing.md#discounts): after the minimum, before tax, per billing period,
never below zero."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.aggregation import Usage
from ratecard.domain.discounts import Discount, discount_amounts, discount_lines
from ratecard.domain.invoice import Line
from ratecard.domain.periods import Schedule
from ratecard.domain.pricing import Charge
from ratecard.domain.rating import Plan, Pricing, invoice_cuts, invoice_totals, rate_cut

D = Decimal
EUR = Pricing(currency="EUR", rounding="half_up", tax_rate=D(21))
FEE = Charge(code="fee", model="flat", amount=D("100.00"), timing="arrears")
CALLS = Charge(code="calls", model="per_unit", meter="calls", unit_amount=D("0.50"))
SCHEDULE = Schedule.build(date(2026, 1, 1), None, "month", "UTC", anchor_day=1)


def utc(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


def invoices(plan: Plan, until: datetime, calls: int = 100) -> list[tuple[list[Line], object]]:
    """Every invoice up to `until` with `calls` calls (50.00) in each period."""
    result = []
    for cut in invoice_cuts(SCHEDULE, until):
        lines = rate_cut(plan, cut, {"calls": Usage(D(calls), calls)} if cut.closing else {}, EUR)
        if lines:
            result.append((lines, invoice_totals(lines, EUR)))
    return result


def test_ten_percent_for_three_periods_before_tax() -> None:
    # fee 100.00 + usage 50.00 = 150.00; 10% = -15.00 for Jan, Feb, Mar (until Apr 1), none in April
    plan = Plan("pro", "EUR", "month", (FEE, CALLS),
                discounts=(Discount("launch", percent_off=D(10), until=utc(2026, 4, 1)),))
    priced = invoices(plan, utc(2026, 5, 1))
    assert len(priced) == 4
    for lines, totals in priced[:3]:
        assert [(line.code, line.kind, line.amount) for line in lines][-1] == ("discount:launch", "discount",
                                                                             D("-15.00"))
        # tax 21% of 135.00 = 28.35
        assert (totals.subtotal, totals.tax, totals.total) == (D("135.00"), D("28.35"), D("163.35"))
    april, totals = priced[3]
    assert all(line.kind != "discount" for line in april)
    assert (totals.subtotal, totals.tax, totals.total) == (D("150.00"), D("31.50"), D("181.50"))
    assert priced[0][0][-1].description == "launch: 10% off"


def test_amount_off_larger_than_the_invoice_is_capped() -> None:
    plan = Plan("pro", "EUR", "month", (FEE, CALLS), discounts=(Discount("credit", amount_off=D("200.00")),))
    lines, totals = invoices(plan, utc(2026, 2, 1))[0]
    assert lines[-1].amount == D("-150.00") and lines[-1].description == "credit: 200.00 EUR off"
    assert (totals.subtotal, totals.tax, totals.total) == (D("0.00"), D("0.00"), D("0.00"))


def test_charge_discount_takes_only_from_its_charge() -> None:
    # 50% off calls: -25.00; an amount of 80.00 off calls is capped at the 50.00 of calls
    half = Plan("pro", "EUR", "month", (FEE, CALLS), discounts=(Discount("half", percent_off=D(50), charge="calls"),))
    assert invoices(half, utc(2026, 2, 1))[0][0][-1].amount == D("-25.00")
    capped = Plan("pro", "EUR", "month", (FEE, CALLS),
                  discounts=(Discount("eighty", amount_off=D(80), charge="calls", description="Calls credit"),))
    line = invoices(capped, utc(2026, 2, 1))[0][0][-1]
    assert (line.amount, line.description) == (D("-50.00"), "Calls credit: 80 EUR off calls")


def test_discount_comes_after_the_minimum() -> None:
    # usage 50.00, minimum 120.00 -> true-up 70.00; 10% of 120.00 = -12.00
    plan = Plan("pro", "EUR", "month", (CALLS,), minimum=D("120.00"),
                discounts=(Discount("ten", percent_off=D(10)),))
    lines, totals = invoices(plan, utc(2026, 2, 1))[0]
    assert [(line.code, line.amount) for line in lines] == [("calls", D("50.00")), ("minimum", D("70.00")),
                                                             ("discount:ten", D("-12.00"))]
    assert totals.subtotal == D("108.00")


def test_amount_off_is_taken_once_per_period_across_its_two_invoices() -> None:
    # fee 100.00 in advance on the invoice opening January, usage 50.00 on the one closing it:
    # 120.00 off January takes 100.00 at the opening and the remaining 20.00 at the close
    advance = Charge(code="fee", model="flat", amount=D("100.00"), timing="advance")
    plan = Plan("pro", "EUR", "month", (advance, CALLS),
                discounts=(Discount("welcome", amount_off=D("120.00"), until=utc(2026, 2, 1)),))
    opening, closing = [lines for lines, _ in invoices(plan, utc(2026, 2, 1))]
    assert [(line.code, line.amount) for line in opening] == [("fee", D("100.00")), ("discount:welcome",
                                                                                       D("-100.00"))]
    january = [line for line in closing if line.service_start == utc(2026, 1, 1)]
    assert [(line.code, line.amount) for line in january] == [("calls", D("50.00")), ("discount:welcome",
                                                                                       D("-20.00"))]
    # February's fee, on the same invoice, starts after the discount ended
    assert [line.code for line in closing if line.service_start == utc(2026, 2, 1)] == ["fee"]


def test_percent_across_two_invoices_is_rounded_once_per_period() -> None:
    # 12.5% of 100.01 (advance) = 12.50125 -> 12.50; of 100.01 + 0.03 = 12.505 -> 12.51: the close takes 0.01
    advance = Line("fee", "fee", utc(2026, 1, 1), utc(2026, 2, 1), D(1), D("100.01"), D("100.01"), "advance")
    usage = Line("calls", "calls", utc(2026, 1, 1), utc(2026, 2, 1), D(3), D("0.01"), D("0.03"), "usage")
    off = (Discount("x", percent_off=D("12.5")),)
    assert discount_lines(off, utc(2026, 1, 1), utc(2026, 2, 1), [advance], "EUR")[0].amount == D("-12.50")
    assert discount_lines(off, utc(2026, 1, 1), utc(2026, 2, 1), [usage], "EUR", earlier=[advance])[0].amount \
        == D("-0.01")


def test_amount_off_is_not_prorated_in_a_short_period() -> None:
    # Jan 15 -> Feb 1: fee 100.00 x 17/31 = 54.84, 100 calls 50.00; 20.00 off is taken whole
    short = Schedule.build(date(2026, 1, 15), None, "month", "UTC", anchor_day=1)
    plan = Plan("pro", "EUR", "month", (FEE, CALLS), discounts=(Discount("twenty", amount_off=D("20.00")),))
    cut = invoice_cuts(short, utc(2026, 2, 1))[1]
    lines = rate_cut(plan, cut, {"calls": Usage(D(100), 100)}, EUR)
    assert [(line.code, line.amount) for line in lines] == [("fee", D("54.84")), ("calls", D("50.00")),
                                                             ("discount:twenty", D("-20.00"))]


def test_discounts_apply_in_order_to_what_is_left() -> None:
    lines = [Line("fee", "fee", utc(2026, 1, 1), utc(2026, 2, 1), D(1), D("100.00"), D("100.00"), "arrears")]
    off = (Discount("a", amount_off=D("30.00")), Discount("b", percent_off=D(50)), Discount("c", amount_off=D(99)))
    # 30.00, then 50% of the 70.00 left, then what is left: 35.00
    assert discount_amounts(off, lines, "EUR") == [D("30.00"), D("35.00"), D("35.00")]


amounts = st.decimals(min_value=D(0), max_value=D("100000"), places=2)
percents = st.decimals(min_value=D("0.01"), max_value=D(100), places=2)
discounts = st.lists(
    st.builds(lambda kind, value, charge, number: Discount(f"d{number}", percent_off=value if kind else None,
                                                          amount_off=None if kind else value, charge=charge),
              st.booleans(), st.one_of(percents, amounts.filter(lambda value: value > 0)),
              st.sampled_from([None, "a", "b"]), st.integers(0, 99)),
    max_size=4, unique_by=lambda discount: discount.code)


def _line(code: str, amount: Decimal, kind: str = "usage") -> Line:
    return Line(code, code, utc(2026, 1, 1), utc(2026, 2, 1), D(1), amount, amount, kind)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), amounts), min_size=0, max_size=5),
       st.lists(st.tuples(st.sampled_from(["a", "b"]), amounts), max_size=2), discounts)
def test_discounts_never_make_a_charge_or_an_invoice_negative(closing: list, opening: list,
                                                              offs: list[Discount]) -> None:
    earlier = [_line(code, amount, "advance") for code, amount in opening]
    lines = [_line(code, amount) for code, amount in closing]
    for invoice, before in ((earlier, ()), (lines, earlier)):
        taken = discount_lines(offs, utc(2026, 1, 1), utc(2026, 2, 1), invoice, "EUR", earlier=before)
        # discounts never raise an amount, and never take more than the invoice holds
        assert all(line.amount <= 0 and line.kind == "discount" for line in taken)
        assert sum((line.amount for line in [*invoice, *taken]), D(0)) >= 0
        # a charge's own discounts never take more than the charge billed on this invoice
        for code in ("a", "b"):
            own = {off.line_code for off in offs if off.charge == code}
            billed = sum((line.amount for line in invoice if line.code == code), D(0))
            assert billed + sum((line.amount for line in taken if line.code in own), D(0)) >= 0
    # over the period, its two invoices never take more than the period billed
    both = discount_lines(offs, utc(2026, 1, 1), utc(2026, 2, 1), earlier, "EUR") + \
        discount_lines(offs, utc(2026, 1, 1), utc(2026, 2, 1), lines, "EUR", earlier=earlier)
    assert sum((line.amount for line in [*earlier, *lines, *both]), D(0)) >= 0
    # a single discount is taken once per period: an amount off at most once, a percentage to the cent
    if len(offs) == 1 and offs[0].charge is None:
        assert -sum((line.amount for line in both), D(0)) == discount_amounts(offs, [*earlier, *lines], "EUR")[0]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["advance", "arrears"]), amounts, st.integers(0, 10_000), st.one_of(st.none(), amounts),
       discounts, st.integers(1, 4))
def test_rated_invoices_with_discounts_never_go_negative_or_up(timing: str, fee: Decimal, calls: int,
                                                               minimum: Decimal | None, offs: list[Discount],
                                                               periods: int) -> None:
    charges = (Charge(code="a", model="flat", amount=fee, timing=timing),
               Charge(code="b", model="per_unit", meter="calls", unit_amount=D("0.37")))
    until = utc(2026, 1 + periods, 1)
    plain = Plan("pro", "EUR", "month", charges, minimum=minimum)
    offered = Plan("pro", "EUR", "month", charges, minimum=minimum,
                   discounts=tuple(Discount(off.code, off.percent_off, off.amount_off, off.charge, utc(2026, 3, 1))
                                   for off in offs))
    short = Schedule.build(date(2026, 1, 10), None, "month", "UTC", anchor_day=1)
    for cut in invoice_cuts(short, until):
        usage = {"calls": Usage(D(calls), calls)} if cut.closing else {}
        before, after = rate_cut(plain, cut, usage, EUR), rate_cut(offered, cut, usage, EUR)
        # the same lines, plus discounts that only take away, never below zero
        assert [line for line in after if line.kind != "discount"] == before
        taken = [line.amount for line in after if line.kind == "discount"]
        assert all(amount < 0 for amount in taken)
        assert 0 <= invoice_totals(after, EUR).total <= invoice_totals(before, EUR).total
        # nothing is discounted from March on
        assert all(line.service_start < utc(2026, 3, 1) for line in after if line.kind == "discount")
