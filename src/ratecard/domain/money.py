"""Money as exact Decimals, ISO 4217 minor units and the two rounding modes.

Amounts are never floats: they are parsed from decimal strings, computed exactly,
and rounded once at the line (and once for tax).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from functools import cache

from babel.numbers import get_currency_precision, list_currencies

ROUNDING_MODES = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}

# Exact intermediate arithmetic: 50 significant digits is far beyond any bill.
EXACT_PRECISION = 50


class MoneyError(ValueError):
    """A value that is not a valid decimal amount."""


# ISO 4217 codes with no minor unit ("N.A."): precious metals, fund and bond units, the testing code
# and "no currency" (and CLDR's codes of the same kind). An invoice cannot be rounded in them.
NO_MINOR_UNIT = frozenset({"XAG", "XAU", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA", "XTS", "XXX",
                           "XAD", "XEU", "XFO", "XFU", "XRE"})


@cache
def known_currencies() -> frozenset[str]:
    """The codes an invoice can be in: CLDR's currencies less those without a minor unit."""
    return frozenset(list_currencies()) - NO_MINOR_UNIT


def is_currency(code: str) -> bool:
    return isinstance(code, str) and code in known_currencies()


# Babel reports CLDR's display digits, which differ from ISO 4217's minor units for these
# currencies (CLDR rounds HUF, IDR, COP, ... to whole units and IQD to 0). ISO 4217 wins.
ISO_4217_MINOR_UNITS = {
    "AFN": 2, "ALL": 2, "COP": 2, "HUF": 2, "IDR": 2, "IQD": 3, "IRR": 2, "KPW": 2, "LAK": 2,
    "LBP": 2, "MGA": 2, "MMK": 2, "MRO": 2, "SLL": 2, "SOS": 2, "STD": 2, "SYP": 2, "YER": 2,
}  # fmt: skip


@cache
def minor_units(currency: str) -> int:
    """Digits after the decimal point for a currency, per ISO 4217 (EUR 2, JPY 0, KWD 3)."""
    if not is_currency(currency):
        raise MoneyError(f"unknown currency {currency!r}")
    if currency in ISO_4217_MINOR_UNITS:
        return ISO_4217_MINOR_UNITS[currency]
    return get_currency_precision(currency)


def to_decimal(value: object) -> Decimal:
    """Parse a decimal amount from a string or int. Floats are refused: they are not exact."""
    if isinstance(value, bool):
        raise MoneyError(f"{value!r} is not a decimal number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError(f"{value!r} is not a decimal number") from None
    else:
        raise MoneyError(f"{value!r} is not a decimal string")
    if not result.is_finite():
        raise MoneyError(f"{value!r} is not a finite number")
    return result


# the context quantize rounds in (the default context with EXACT_PRECISION digits), built once:
# entering a localcontext per amount cost more than the rounding itself
_EXACT_CONTEXT = Context(prec=EXACT_PRECISION)


@cache
def _minor_exponent(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def quantize(amount: Decimal, currency: str, rounding: str = "half_up") -> Decimal:
    """Round an exact amount to the currency's minor unit. The only place money is rounded."""
    result = amount.quantize(_minor_exponent(currency), rounding=ROUNDING_MODES[rounding], context=_EXACT_CONTEXT)
    # -0.004 rounds to zero, not to "-0.00"
    return result.copy_abs() if result.is_zero() else result


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of a currency: 0.01 EUR, 1 JPY, 0.001 KWD."""
    return Decimal(1).scaleb(-minor_units(currency))


def format_decimal(value: Decimal) -> str:
    """A decimal as a plain string without exponent ("1E+3" -> "1000", "0E-8" -> "0")."""
    if value == 0:
        # keep the scale of money amounts ("0.00") but not of exact zeros from arithmetic
        return "0" if value.as_tuple().exponent < -6 else f"{value:f}"
    text = f"{value:f}"
    return text


def normalize(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation."""
    if value == 0:
        return Decimal(0)
    normalized = value.normalize()
    if normalized.as_tuple().exponent > 0:
        normalized = normalized.quantize(Decimal(1))
    return normalized


# A unit price as people read it (documents, the console, the CLI); never computed with.
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


def display_price_in(price: Decimal, currency: str) -> Decimal:
    """display_price at the currency's minor units (2 for a code that is not a currency)."""
    return display_price(price, minor_units(currency) if is_currency(currency) else 2)
