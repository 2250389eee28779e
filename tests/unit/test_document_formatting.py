"""Amounts and dates on documents as the billing entity's locale writes them, with the currency's digits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ratecard.documents.formatting import Formatter

NBSP = ("\xa0", "\u202f")


def plain(text: str) -> str:
    for space in NBSP:
        text = text.replace(space, " ")
    return text


@pytest.mark.parametrize(("locale", "currency", "digits", "amount", "expected"), [
    ("de_DE", "EUR", 2, "1234.56", "1.234,56 €"),
    ("de_DE", "EUR", 2, "-5", "-5,00 €"),
    ("en_US", "USD", 2, "1234.56", "$1,234.56"),
    ("fr_FR", "EUR", 2, "1234.5", "1 234,50 €"),
    ("en_US", "JPY", 0, "1235", "¥1,235"),
    ("en_US", "BHD", 3, "1.5", "BHD1.500"),  # CLDR writes a code without a space in en_US
])
def test_money_in_the_locale_with_the_currencys_digits(locale: str, currency: str, digits: int, amount: str,
                                                        expected: str) -> None:
    assert plain(Formatter.for_locale(locale, currency, digits).money(Decimal(amount))) == expected


def test_dates_quantities_and_unit_prices() -> None:
    german = Formatter.for_locale("de_DE", "EUR", 2)
    assert german.day(date(2026, 11, 26)) == "26.11.2026"
    assert german.quantity(Decimal("21234")) == "21.234"
    assert german.price(Decimal("0.0001")) == "0,0001 EUR"  # a unit price keeps its digits
    assert german.price(Decimal("49")) == "49,00 EUR"  # and has at least the currency's
    assert Formatter.for_locale("en_US", "USD", 2).day(date(2026, 11, 26)) == "Nov 26, 2026"
