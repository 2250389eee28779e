"""Money (docs/billing.md): exact decimals, ISO 4217 minor units, half_up / half_even, one rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.money import (
    MoneyError,
    format_decimal,
    is_currency,
    minor_unit,
    minor_units,
    normalize,
    quantize,
    to_decimal,
)

D = Decimal

# ISO 4217 (list one) minor units. Several of these differ from CLDR's display digits
# (HUF, IDR, COP, IQD, ...): billing follows ISO 4217.
ISO_4217_DIGITS = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "JPY": 0,
    "KRW": 0,
    "ISK": 0,
    "CLP": 0,
    "VND": 0,
    "XOF": 0,
    "KWD": 3,
    "BHD": 3,
    "JOD": 3,
    "OMR": 3,
    "TND": 3,
    "LYD": 3,
    "IQD": 3,
    "CLF": 4,
    "UYW": 4,
    "HUF": 2,
    "IDR": 2,
    "COP": 2,
    "AFN": 2,
    "ALL": 2,
    "IRR": 2,
    "LAK": 2,
    "LBP": 2,
    "MGA": 2,
    "MMK": 2,
    "SOS": 2,
    "SYP": 2,
    "YER": 2,
    "KPW": 2,
}

CURRENCIES = st.sampled_from(sorted(ISO_4217_DIGITS))
MODES = st.sampled_from(["half_up", "half_even"])
# exact amounts of any scale: n × 10^-k
EXACT_AMOUNTS = st.builds(lambda n, k: D(n).scaleb(-k), st.integers(-(10**15), 10**15), st.integers(0, 15))
SETTINGS = settings(max_examples=200, deadline=None)


# ---------------------------------------------------------------------------------------------
# ISO 4217 minor units
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "digits"), sorted(ISO_4217_DIGITS.items()))
def test_minor_units_are_iso_4217(currency: str, digits: int) -> None:
    assert minor_units(currency) == digits


def test_minor_unit_is_the_smallest_amount() -> None:
    # EUR 2 digits -> 0.01; JPY 0 -> 1; KWD 3 -> 0.001
    assert minor_unit("EUR") == D("0.01")
    assert minor_unit("JPY") == D("1")
    assert minor_unit("KWD") == D("0.001")


@pytest.mark.parametrize("code", ["EURO", "eur", "", "ZZZ", None, 978])
def test_unknown_currency_is_refused(code: object) -> None:
    assert not is_currency(code)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        minor_units(code)  # type: ignore[arg-type]


def test_known_currencies() -> None:
    assert is_currency("EUR") and is_currency("JPY") and is_currency("KWD")


# ---------------------------------------------------------------------------------------------
# Rounding: half_up vs half_even, to the currency's digits
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "half_up", "half_even"),
    [
        # 2.345 EUR: the 3rd decimal is exactly 5 -> half_up 2.35, half_even to the even 4 -> 2.34
        ("2.345", "EUR", "2.35", "2.34"),
        # 0.125: half_up 0.13, half_even 0.12 (2 is even)
        ("0.125", "EUR", "0.13", "0.12"),
        # 0.135: both 0.14 (4 is already even)
        ("0.135", "EUR", "0.14", "0.14"),
        # not a tie: 2.3451 is above the half -> both 2.35; 2.3449 below -> both 2.34
        ("2.3451", "EUR", "2.35", "2.35"),
        ("2.3449", "EUR", "2.34", "2.34"),
        # JPY has no minor unit: 2.5 -> 3 / 2 ; 3.5 -> 4 / 4
        ("2.5", "JPY", "3", "2"),
        ("3.5", "JPY", "4", "4"),
        ("1234.5", "JPY", "1235", "1234"),
        # KWD has 3 digits: 1.0005 -> 1.001 / 1.000 ; 1.0015 -> 1.002 / 1.002
        ("1.0005", "KWD", "1.001", "1.000"),
        ("1.0015", "KWD", "1.002", "1.002"),
        # negative amounts (credits) round symmetrically: half_up goes away from zero
        ("-2.345", "EUR", "-2.35", "-2.34"),
        # an amount with fewer digits is padded, never changed: 5 EUR -> 5.00
        ("5", "EUR", "5.00", "5.00"),
        ("5", "KWD", "5.000", "5.000"),
    ],
)
def test_quantize_half_up_and_half_even(amount: str, currency: str, half_up: str, half_even: str) -> None:
    up = quantize(D(amount), currency, "half_up")
    even = quantize(D(amount), currency, "half_even")
    # compare the string too: the scale (number of digits) is part of the result
    assert str(up) == half_up
    assert str(even) == half_even


def test_default_rounding_is_half_up() -> None:
    assert quantize(D("2.345"), "EUR") == D("2.35")


def test_rounding_to_zero_is_never_negative_zero() -> None:
    # -0.004 EUR rounds to zero; an invoice must never print "-0.00"
    assert str(quantize(D("-0.004"), "EUR")) == "0.00"
    assert str(quantize(D("-0.4"), "JPY", "half_even")) == "0"


def test_unknown_rounding_mode_is_refused() -> None:
    with pytest.raises((KeyError, ValueError)):
        quantize(D("1"), "EUR", "banker")


# ---------------------------------------------------------------------------------------------
# Parsing: decimal strings and ints only, never floats
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("49.00", "49.00"),  # the scale is kept
        ("0.002", "0.002"),
        ("-3.5", "-3.5"),
        ("1e3", "1E+3"),
        (5, "5"),
        (D("1.10"), "1.10"),
    ],
)
def test_to_decimal_accepts_strings_ints_decimals(value: object, expected: str) -> None:
    result = to_decimal(value)
    assert isinstance(result, Decimal)
    assert str(result) == expected


def test_to_decimal_is_exact() -> None:
    # the float classic: 0.1 + 0.2 != 0.3, but as decimals it is exactly 0.3
    assert to_decimal("0.1") + to_decimal("0.2") == to_decimal("0.3")


@pytest.mark.parametrize("value", [0.1, 1.0, 2.5, float("nan"), float("inf")])
def test_to_decimal_refuses_floats(value: float) -> None:
    with pytest.raises(MoneyError):
        to_decimal(value)


@pytest.mark.parametrize(
    "value", [True, False, None, [], {}, "", "abc", "1,5", "1.2.3", "NaN", "Infinity", "-inf", D("NaN"), D("sNaN")]
)
def test_to_decimal_refuses_non_numbers(value: object) -> None:
    with pytest.raises(MoneyError):
        to_decimal(value)


def test_money_error_is_a_value_error() -> None:
    assert issubclass(MoneyError, ValueError)


# ---------------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("1E+3"), "1000"),
        (D("0E-8"), "0"),
        (D("0.00"), "0.00"),
        (D("12.50"), "12.50"),
        (D("0.0001"), "0.0001"),
        (D("-7.25"), "-7.25"),
    ],
)
def test_format_decimal_never_uses_exponents(value: Decimal, text: str) -> None:
    assert format_decimal(value) == text


@pytest.mark.parametrize(
    ("value", "text"), [(D("1.500"), "1.5"), (D("1E+3"), "1000"), (D("0.000"), "0"), (D("100"), "100")]
)
def test_normalize(value: Decimal, text: str) -> None:
    assert str(normalize(value)) == text
    assert normalize(value) == value


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(EXACT_AMOUNTS, CURRENCIES, MODES)
def test_quantized_amount_has_exactly_the_currency_digits(amount: Decimal, currency: str, mode: str) -> None:
    rounded = quantize(amount, currency, mode)
    assert rounded.as_tuple().exponent == -minor_units(currency)


@SETTINGS
@given(EXACT_AMOUNTS, CURRENCIES, MODES)
def test_rounding_happens_once_quantize_is_idempotent(amount: Decimal, currency: str, mode: str) -> None:
    once = quantize(amount, currency, mode)
    twice = quantize(once, currency, mode)
    assert twice == once
    assert str(twice) == str(once)


@SETTINGS
@given(EXACT_AMOUNTS, CURRENCIES, MODES)
def test_rounding_error_is_at_most_half_a_minor_unit(amount: Decimal, currency: str, mode: str) -> None:
    assert abs(quantize(amount, currency, mode) - amount) <= minor_unit(currency) / 2


@SETTINGS
@given(EXACT_AMOUNTS, CURRENCIES)
def test_half_up_and_half_even_differ_only_on_exact_ties(amount: Decimal, currency: str) -> None:
    up = quantize(amount, currency, "half_up")
    even = quantize(amount, currency, "half_even")
    if up != even:
        # the exact amount sits exactly half way between two minor units
        assert abs(up - amount) == minor_unit(currency) / 2
        assert abs(even - amount) == minor_unit(currency) / 2


@SETTINGS
@given(EXACT_AMOUNTS, CURRENCIES, MODES)
def test_quantize_is_odd_symmetric(amount: Decimal, currency: str, mode: str) -> None:
    # a credit rounds like the matching charge: q(-x) == -q(x)
    assert quantize(-amount, currency, mode) == -quantize(amount, currency, mode)


@SETTINGS
@given(EXACT_AMOUNTS)
def test_to_decimal_round_trips_decimal_strings(amount: Decimal) -> None:
    assert to_decimal(str(amount)) == amount
    assert to_decimal(format_decimal(amount)) == amount


@SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_to_decimal_refuses_every_float(value: float) -> None:
    with pytest.raises(MoneyError):
        to_decimal(value)


@SETTINGS
@given(st.integers(-(10**30), 10**30))
def test_to_decimal_accepts_every_int(value: int) -> None:
    assert to_decimal(value) == value
