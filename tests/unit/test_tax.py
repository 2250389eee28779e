"""Tax (docs/billing.md): exclusive, at the customer's rate, rounded once per invoice or per line."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.invoice import Line, totals
from ratecard.domain.money import minor_unit, minor_units, quantize
from ratecard.domain.tax import TAX_ROUNDINGS, invoice_tax, line_taxes

D = Decimal


def amounts(*values: str) -> list[Decimal]:
    return [D(v) for v in values]


def test_tax_roundings() -> None:
    assert set(TAX_ROUNDINGS) == {"invoice", "line"}


def test_invoice_and_line_rounding_differ_at_19_percent() -> None:
    lines = amounts("0.50", "0.50", "0.50")
    # line:    each 0.50 × 19% = 0.095 -> 0.10; 3 × 0.10 = 0.30
    # invoice: 1.50 × 19% = 0.285 -> 0.29
    assert line_taxes(lines, D(19), "EUR", "half_up") == amounts("0.10", "0.10", "0.10")
    assert invoice_tax(lines, D(19), "EUR", "half_up", "line") == D("0.30")
    assert invoice_tax(lines, D(19), "EUR", "half_up", "invoice") == D("0.29")


def test_invoice_and_line_rounding_differ_at_10_percent() -> None:
    lines = amounts("0.05", "0.05", "0.05")
    # line:    0.005 -> 0.01 each -> 0.03 ; invoice: 0.15 × 10% = 0.015 -> 0.02
    assert invoice_tax(lines, D(10), "EUR", "half_up", "line") == D("0.03")
    assert invoice_tax(lines, D(10), "EUR", "half_up", "invoice") == D("0.02")


def test_tax_uses_the_billing_entitys_rounding_mode() -> None:
    lines = amounts("0.50", "0.50", "0.50")
    # half_even: invoice 0.285 -> 0.28 (8 is even) ; lines 0.095 -> 0.10 (9 is odd -> up) -> 0.30
    assert invoice_tax(lines, D(19), "EUR", "half_even", "invoice") == D("0.28")
    assert invoice_tax(lines, D(19), "EUR", "half_even", "line") == D("0.30")


def test_tax_in_a_zero_decimal_currency() -> None:
    lines = amounts("105", "105")
    # line: 105 × 10% = 10.5 -> 11 each -> 22 JPY ; invoice: 210 × 10% = 21 JPY
    assert invoice_tax(lines, D(10), "JPY", "half_up", "line") == D(22)
    assert invoice_tax(lines, D(10), "JPY", "half_up", "invoice") == D(21)


def test_tax_in_a_three_decimal_currency() -> None:
    # 12.345 KWD × 5% = 0.61725 -> 0.617
    assert str(invoice_tax(amounts("12.345"), D(5), "KWD")) == "0.617"


def test_default_is_half_up_on_the_invoice_subtotal() -> None:
    # 100.00 + 19.99 = 119.99 ; × 19% = 22.7981 -> 22.80
    assert invoice_tax(amounts("100.00", "19.99"), D(19), "EUR") == D("22.80")


def test_zero_rate_and_no_lines() -> None:
    assert str(invoice_tax(amounts("10.00"), D(0), "EUR")) == "0.00"
    assert invoice_tax([], D(19), "EUR") == 0
    assert invoice_tax([], D(19), "EUR", tax_rounding="line") == 0


def test_fractional_rates() -> None:
    # 7.7% (Swiss VAT) on 99.90 = 7.6923 -> 7.69
    assert invoice_tax(amounts("99.90"), D("7.7"), "CHF") == D("7.69")


def test_unknown_tax_rounding_is_refused() -> None:
    with pytest.raises(ValueError):
        invoice_tax(amounts("1.00"), D(19), "EUR", "half_up", "document")


def test_total_is_subtotal_plus_tax() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t1 = datetime(2026, 2, 1, tzinfo=UTC)
    lines = [
        Line("base", "base", t0, t1, D(1), D("49.00"), D("49.00"), "advance"),
        Line("calls", "calls", t0, t1, D(12345), D("0.0001"), D("1.23"), "usage"),
    ]
    # subtotal 50.23 ; 19% = 9.5437 -> 9.54 ; total 59.77
    tax = invoice_tax([line.amount for line in lines], D(19), "EUR")
    result = totals(lines, tax)
    assert (result.subtotal, result.tax, result.total) == (D("50.23"), D("9.54"), D("59.77"))


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

CURRENCIES = st.sampled_from(["EUR", "JPY", "KWD", "CLF"])
RATES = st.one_of(st.sampled_from([D(0), D(7), D("7.7"), D(19), D(20), D(21), D(25)]),
                  st.integers(0, 3000).map(lambda n: D(n) / 100))  # fmt: skip
MODES = st.sampled_from(["half_up", "half_even"])


@st.composite
def invoice_lines(draw: st.DrawFn, currency: str) -> list[Decimal]:
    exact = draw(st.lists(st.integers(-(10**8), 10**8).map(lambda n: D(n) / 1000), max_size=12))
    return [quantize(value, currency) for value in exact]


@settings(max_examples=200, deadline=None)
@given(st.data(), CURRENCIES, RATES, MODES)
def test_line_and_invoice_tax_differ_by_at_most_half_a_minor_unit_per_line(
    data: st.DataObject, currency: str, rate: Decimal, mode: str
) -> None:
    lines = data.draw(invoice_lines(currency))
    by_invoice = invoice_tax(lines, rate, currency, mode, "invoice")
    by_line = invoice_tax(lines, rate, currency, mode, "line")
    for tax in (by_invoice, by_line):
        assert tax.as_tuple().exponent == -minor_units(currency)
    # each rounding moves at most half a minor unit: n line roundings + 1 invoice rounding
    assert abs(by_invoice - by_line) <= minor_unit(currency) * (len(lines) + 1) / 2
    # invoice rounding is the subtotal's exact tax, rounded once
    assert by_invoice == quantize(sum(lines, D(0)) * rate / 100, currency, mode)
    assert by_line == sum((quantize(a * rate / 100, currency, mode) for a in lines), D(0))
