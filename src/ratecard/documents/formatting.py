"""Amounts, quantities and dates as the billing entity's locale writes them (Babel).

Unit prices are shown, never computed with: a line's stored unit amount can be an exact average
(amount ÷ quantity, kept to 12 decimals), and printing all of them (0,035186488388 €) tells a
reader nothing the line's amount does not. display_price is the rule documents follow."""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal

PRICE_DECIMALS = 6  # a unit price shows at most this many decimals...
PRICE_SIGNIFICANT = 6  # ...or this many significant digits, when that keeps more (a price below 0.1)


def display_price(price: Decimal, digits: int) -> Decimal:
    """A unit price as a document shows it: the decimals it needs (trailing zeros dropped), at least
    the currency's `digits`, at most PRICE_DECIMALS, or PRICE_SIGNIFICANT significant digits where
    that keeps more; rounded half up beyond. Catalog prices (0.05, 0.0001, 0.00000775) are shown
    exactly; an average such as 5.00 / 142.1 = 0.035186488388 shows as 0.0351865."""
    with localcontext() as context:
        context.prec = 100  # stored figures reach 40 digits; nothing but the display rounding may round
        if not price.is_finite() or price == 0:
            return Decimal(0).scaleb(-digits)
        exponent = price.normalize().as_tuple().exponent
        needed = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        cap = max(PRICE_DECIMALS, PRICE_SIGNIFICANT - 1 - price.adjusted())
        shown = max(digits, min(needed, cap))
        return price.quantize(Decimal(1).scaleb(-shown), rounding=ROUND_HALF_UP)


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
        exponent = amount.normalize().as_tuple().exponent
        shown = max(self.digits, -exponent if isinstance(exponent, int) else 0)
        number = format_decimal(amount, format=_fixed(shown), locale=self.locale, numbering_system="latn")
        return f"{number} {self.currency}"

    def quantity(self, value: Decimal) -> str:
        exponent = value.normalize().as_tuple().exponent
        shown = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        return format_decimal(value, format=_fixed(shown), locale=self.locale, numbering_system="latn")

    def percent(self, rate: Decimal) -> str:
        return f"{self.quantity(rate)} %"

    def day(self, value: date | None) -> str:
        return format_date(value, format="medium", locale=self.locale) if value is not None else ""


def _fixed(digits: int) -> str:
    return "#,##0" + ("." + "0" * digits if digits else "")

