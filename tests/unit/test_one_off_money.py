"""The money of a one-off invoice: each line rounded once, the tax on the rounded lines."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ratecard.domain.one_off import line_amount, one_off_totals

AMOUNTS = st.decimals(min_value=Decimal("-100000"), max_value=Decimal("100000"), places=4)
QUANTITIES = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("10000"), places=4)
RATES = st.decimals(min_value=Decimal("0"), max_value=Decimal("30"), places=2)


def test_hand_computed() -> None:
    assert line_amount(Decimal("3"), Decimal("120.005"), "EUR") == Decimal("360.02")  # 360.015 half up
    assert line_amount(Decimal("3"), Decimal("120.005"), "EUR", "half_even") == Decimal("360.02")  # 360.015 -> even 2
    assert line_amount(Decimal("2.5"), Decimal("0.3"), "JPY") == Decimal("1")  # 0.75 yen -> 1
    totals = one_off_totals([Decimal("360.02"), Decimal("99.99")], Decimal("19"), "EUR")
    assert (totals.subtotal, totals.tax, totals.total) == (Decimal("460.01"), Decimal("87.40"), Decimal("547.41"))
    per_line = one_off_totals([Decimal("0.05"), Decimal("0.05")], Decimal("10"), "EUR", tax_rounding="line")
    assert (per_line.tax, per_line.total) == (Decimal("0.02"), Decimal("0.12"))
    assert f"{one_off_totals([], Decimal('19'), 'EUR').total:f}" == "0.00"


@given(quantity=QUANTITIES, unit=AMOUNTS)
def test_a_line_is_its_exact_price_rounded_once_to_the_cent(quantity: Decimal, unit: Decimal) -> None:
    amount = line_amount(quantity, unit, "EUR")
    assert amount == amount.quantize(Decimal("0.01"))
    assert abs(amount - quantity * unit) <= Decimal("0.005")


@given(amounts=st.lists(AMOUNTS.map(lambda a: a.quantize(Decimal("0.01"))), max_size=30), rate=RATES,
       tax_rounding=st.sampled_from(("invoice", "line")))
def test_total_is_the_sum_of_the_lines_plus_tax(amounts: list[Decimal], rate: Decimal, tax_rounding: str) -> None:
    totals = one_off_totals(amounts, rate, "EUR", tax_rounding=tax_rounding)
    assert totals.subtotal == sum(amounts, Decimal(0))
    assert totals.total == totals.subtotal + totals.tax
    # rounded once per invoice: within half a cent of the exact tax; per line: half a cent per line
    slack = Decimal("0.005") * (1 if tax_rounding == "invoice" else max(len(amounts), 1))
    assert abs(totals.tax - totals.subtotal * rate / 100) <= slack


def test_a_line_past_28_digits_is_rounded_once_from_its_exact_product() -> None:
    # 1.000000000003 x 17222222222.333333333333 = 17222222222.384999999999999999999999 exactly:
    # 17222222222.38, where a product rounded to Python's 28 default digits first (…385) gave .39
    assert line_amount(Decimal("1.000000000003"), Decimal("17222222222.333333333333"), "EUR") == \
        Decimal("17222222222.38")


def test_the_subtotal_keeps_every_cent_of_large_lines() -> None:
    amounts = [Decimal("1" + "0" * 24 + ".00")] * 200 + [Decimal("0.01")]
    assert one_off_totals(amounts, Decimal(0), "EUR").subtotal == Decimal("2" + "0" * 26 + ".01")


def test_a_service_date_at_the_end_of_time_is_refused_with_its_field() -> None:
    # 9999-12-31T23:59:59-12:00 is year 10000 in UTC: its date in the customer's zone cannot be
    # written (a 500 before); it is refused naming the field, like any out-of-range value
    from datetime import datetime, timedelta, timezone

    import pytest

    from ratecard.services.errors import InvalidInput
    from ratecard.services.one_off_invoices import line_input

    late = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-12)))
    with pytest.raises(InvalidInput) as refused:
        line_input(description="Set-up", unit_amount="10", service_start=late)
    assert refused.value.field == "start_at"
    assert line_input(description="Set-up", unit_amount="10",
                      service_start=datetime(2026, 1, 1, tzinfo=UTC)).unit_amount == Decimal("10")
