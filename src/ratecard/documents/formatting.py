"""Amounts, quantities and dates as the billing entity's locale writes them (Babel).

Unit prices are shown, never computed with: a line's stored unit amount can be an exact average
(amount ÷ quantity, kept to 12 decimals), and printing all of them (0,035186488388 €) tells a
reader nothing the line's amount does not. display_price (domain.money) is the rule documents, the
console and the CLI follow."""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal

from ..domain.money import display_price, significant_decimals


@dataclass(frozen=True)
class Formatter:
    locale: Locale
    currency: str
    digits: int  # the currency's minor units: every amount shows exactly these

    @classmethod
    def for_locale(cls, name: str, currency: str, digits: int) -> Formatter:
        return cls(Locale.parse(name), currency, digits)

    def money(self, amount: Decimal) -> str:
        """1.234,56 € in de_DE, $1,234.56 in en_US: the locale's pattern with the currency's digits
        (ratecard's minor units, which CLDR's own digits do not always match)."""
        pattern = copy(self.locale.currency_formats["standard"])
        pattern.frac_prec = (self.digits, self.digits)
        return pattern.apply(amount, self.locale, currency=self.currency, currency_digits=False,
                             numbering_system="latn")

    def price(self, amount: Decimal) -> str:
        """A unit price by display_price's rule (0.0001 per call as it is, an average to 6 decimals or
        6 significant digits), at least the currency's digits."""
        return self.exact(display_price(amount, self.digits))

    def exact(self, amount: Decimal) -> str:
        """Every digit the figure has, at least the currency's: a tier part's unrounded amount."""
        shown = max(self.digits, significant_decimals(amount))
        number = format_decimal(amount, format=_fixed(shown), locale=self.locale, numbering_system="latn")
        return f"{number} {self.currency}"

    def quantity(self, value: Decimal) -> str:
        return format_decimal(value, format=_fixed(significant_decimals(value)), locale=self.locale, numbering_system="latn")

    def percent(self, rate: Decimal) -> str:
        return f"{self.quantity(rate)} %"

    def day(self, value: date | None) -> str:
        return format_date(value, format="medium", locale=self.locale) if value is not None else ""


def _fixed(digits: int) -> str:
    return "#,##0" + ("." + "0" * digits if digits else "")

