"""Money as exact Decimals, ISO 4217 minor units and the two rounding modes.

Amounts are never floats: they are parsed from decimal strings, computed exactly,
and rounded once at the line (and once for tax).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from functools import cache

from babel.numbers import get_currency_precision, list_currencies

from .numbers import shown_number

ROUNDING_MODES = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}

# Exact intermediate arithmetic: 50 significant digits is far beyond any bill.
EXACT_PRECISION = 50


class MoneyError(ValueError):
    """A value that is not a valid decimal amount (the message names it and says why)."""


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


# A number written as text (a catalog value, an import's cell, a request's field, a CLI option)
# has one syntax, JSON's number: ASCII digits, an optional leading '-', an optional fraction with
# digits on both sides of the point, an optional exponent; no '+', no spaces around it, no leading
# zeros (YAML reads 010 as 8), no '_', no other digits. docs/security/numbers.md says why.
DECIMAL_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE]([+-]?[0-9]+))?")
MAX_DECIMAL_TEXT = 100  # characters (bound before reading); 53 write any number inside the bound plainly
MAX_EXPONENT = 999_999  # a written exponent beyond the default decimal context's is refused unread
# The bound a number read from text meets unless its caller holds it to a bound of its own (such
# as domain.numbers.number_problem): its value stays where the exact arithmetic holds it, at most
# EXACT_PRECISION significant digits, none past the EXACT_PRECISION-th decimal place, below
# 10^EXACT_PRECISION (trailing zeros, which change no value, do not count), and it is written with
# an exponent within ±MAX_WRITTEN_EXPONENT, which any such value written in MAX_DECIMAL_TEXT
# characters meets: 1e400000, 1E-999999 or 0E-999999 would cost a million digits once written
# out or rounded to a currency.
MAX_WRITTEN_EXPONENT = MAX_DECIMAL_TEXT + EXACT_PRECISION
DECIMAL_BOUND = (f"at most {EXACT_PRECISION} significant digits, none past the {EXACT_PRECISION}th decimal "
                 f"place, and below 1e{EXACT_PRECISION}")
_SYNTAX = "write digits with an optional leading '-', '.' and exponent, such as 12.50, -3 or 1.5e6"

Bound = Callable[[Decimal], "str | None"]


def exact_problem(number: Decimal) -> str | None:
    """Why a finite number is outside the exact arithmetic's bound (a sentence), or None."""
    _, digits, exponent = number.as_tuple()
    if not -MAX_WRITTEN_EXPONENT <= exponent <= MAX_WRITTEN_EXPONENT:  # type: ignore[operator]
        return f"{shown_number(number)} is out of range ({DECIMAL_BOUND})"
    if number:
        zeros = len(digits) - len(bytes(digits).rstrip(b"\0"))  # trailing zeros
        if (len(digits) - zeros > EXACT_PRECISION or exponent + zeros < -EXACT_PRECISION  # type: ignore[operator]
                or number.adjusted() >= EXACT_PRECISION):
            return f"{shown_number(number)} is out of range ({DECIMAL_BOUND})"
    return None


def to_decimal(value: object, bound: Bound | None = exact_problem) -> Decimal:
    """The one parser of a decimal number given by a user: a string in the syntax of DECIMAL_TEXT,
    an int or a Decimal, inside `bound` (a function saying why a number is outside, or None;
    exact_problem unless the caller holds the number to its own). Anything else is refused with
    MoneyError, whose message names the value and says what to write instead. Floats are refused:
    they are not exact."""
    if isinstance(value, bool):
        raise MoneyError(f"{value!r} is not a decimal number (true and false are not numbers)")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(f"{value!r} is not a decimal number (NaN and infinities are not numbers)")
        result = value
    elif isinstance(value, int):
        if value.bit_length() > 4 * MAX_DECIMAL_TEXT:  # more digits than text may have: refused unread
            raise MoneyError(f"{_shown(value)} is out of range (a number has at most {MAX_DECIMAL_TEXT} digits)")
        result = Decimal(value)
    elif isinstance(value, str):
        result = _parsed(value)
    else:
        raise MoneyError(f"{_shown(value)} is not a decimal number written as a string")
    problem = bound(result) if bound is not None else None
    if problem is not None:
        raise MoneyError(problem)
    return result


def _parsed(text: str) -> Decimal:
    if len(text) > MAX_DECIMAL_TEXT:
        raise MoneyError(f"{_shown(text)} is not a decimal number (a number is at most {MAX_DECIMAL_TEXT} characters)")
    match = DECIMAL_TEXT.fullmatch(text)
    if match is None:
        raise MoneyError(f"{_shown(text)} is not a decimal number ({_syntax_problem(text)})")
    written = match.group(1)
    if written is not None and abs(int(written)) > MAX_EXPONENT:  # Decimal cannot even read some
        raise MoneyError(f"{_shown(text)} is out of range (written with an exponent beyond ±{MAX_EXPONENT})")
    return Decimal(text)


def _syntax_problem(text: str) -> str:
    """Why `text` is not in DECIMAL_TEXT's syntax, as specifically as a user can act on."""
    bare = text.strip()
    if not bare:
        return "it is empty"
    if bare != text:
        return "no spaces around a number"
    if not text.isascii():
        if not any(c.isdigit() for c in text):
            return _SYNTAX
        # the same digits in ASCII, when every other character is: what the user meant, to write
        # instead when that is a number; else what is wrong with it too (not "write 007")
        ascii_digits = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)
        if not ascii_digits.isascii():
            return "only the digits 0-9 (ASCII)"
        if DECIMAL_TEXT.fullmatch(ascii_digits):
            return f"only the digits 0-9 (ASCII): write {ascii_digits}"
        return f"only the digits 0-9 (ASCII), and {_syntax_problem(ascii_digits)}"
    if "_" in text:
        return "no '_' between digits: write 1000, not 1_000"
    if text.startswith("+"):
        return "no '+' sign: write 5, not +5"
    if text.lstrip("+-").lower() in ("nan", "snan", "inf", "infinity"):
        return "NaN and infinities are not numbers"
    if re.fullmatch(r"-?0[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", text):
        return "no leading zeros: write 7, not 007"
    if re.fullmatch(r"-?(?:[0-9]+\.|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", text):
        return "digits on both sides of '.': write 0.5 and 5.0, not .5 and 5."
    if re.fullmatch(r"-?[0-9]+(?:[, ][0-9]+)+(?:\.[0-9]+)?", text):
        return "no ',' or space between digits, and '.' as the decimal point: write 1000, not 1,000; 1.5, not 1,5"
    return _SYNTAX


def _shown(value: object) -> str:
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else f"{text[:45]}…{text[-12:]}"
    if isinstance(value, int | Decimal):
        return shown_number(value)
    return f"a {type(value).__name__}"


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


def significant_decimals(value: Decimal) -> int:
    """How many decimals the value needs to show every digit it has, trailing zeros dropped
    (5.000000000000 -> 0, 2501.250 -> 2, 1E+3 -> 0): the rule of every quantity people read."""
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


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
        needed = significant_decimals(price)
        cap = max(PRICE_DECIMALS, PRICE_SIGNIFICANT - 1 - price.adjusted())
        shown = max(digits, min(needed, cap))
        return price.quantize(Decimal(1).scaleb(-shown), rounding=ROUND_HALF_UP)


def display_price_in(price: Decimal, currency: str) -> Decimal:
    """display_price at the currency's minor units (2 for a code that is not a currency)."""
    return display_price(price, minor_units(currency) if is_currency(currency) else 2)
