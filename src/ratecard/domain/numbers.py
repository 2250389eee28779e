"""The one bound on a number an event may carry, whatever the path it comes in by.

Every numeric property value (the meter's field or any other, nested too) holds at most
MAX_DIGITS significant digits and, unless it is zero, 10^-MAX_MAGNITUDE <= |value| < 10^(MAX_MAGNITUDE + 1);
a zero is written with an exponent of at most ±ZERO_EXPONENT (0E-20000 is refused).

Why these numbers (docs/security/numbers.md has the long form):
- 38 digits is the widest exact decimal the usual producers write (SQL DECIMAL(38), Arrow and
  Parquet decimal128); |value| < 10^20 holds every real usage figure with room to spare.
- Pricing works in 50-digit contexts (domain.money.EXACT_PRECISION): a sum of up to 10^12 such
  values is below 10^32, times a unit price below 10^15 stays below 10^47, so rounding to the
  currency's minor unit (at most 3 places) never leaves the context's 50 digits.
- PostgreSQL's numeric (inside jsonb too) takes at most 131072 digits before the point and 16383
  after: 1e131072 or 1e-16384 is refused by the database, which used to lose a whole batch. The
  bound keeps every value far inside, so a value the checks accept is one the store takes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

MAX_DIGITS = 38
MAX_MAGNITUDE = 19  # the decimal exponent of the leading digit lies in [-19, 19]
ZERO_EXPONENT = MAX_DIGITS + MAX_MAGNITUDE  # 0.000…0 with as many places as the smallest value can have
UPPER = 10 ** (MAX_MAGNITUDE + 1)  # an integer's magnitude stays below this
BOUND_TEXT = f"at most {MAX_DIGITS} significant digits and 1e-{MAX_MAGNITUDE} <= |value| < 1e{MAX_MAGNITUDE + 1}"


def number_problem(value: int | float | Decimal) -> str | None:
    """Why a number is outside the bound (a sentence for the user), or None when it is inside."""
    kind = type(value)
    if kind is int:
        return None if -UPPER < value < UPPER else f"{shown_number(value)} is out of range ({BOUND_TEXT})"
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            return "must be a finite number"
        value = Decimal(repr(value))
    elif kind is not Decimal:
        value = Decimal(value)
    if not value.is_finite():
        return "must be a finite number"
    if not value:
        # zero's value is in range, but its written exponent is stored too (as jsonb numeric on
        # PostgreSQL, whose scale stops at 16383): 0E-20000 would lose the whole batch there
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and abs(exponent) > ZERO_EXPONENT:
            return (f"{shown_number(value)} is out of range (a zero may be written with an exponent of at most "
                    f"±{ZERO_EXPONENT})")
        return None
    digits = len(value.as_tuple().digits)
    if digits > MAX_DIGITS or abs(value.adjusted()) > MAX_MAGNITUDE:
        return f"{shown_number(value)} is out of range ({BOUND_TEXT})"
    return None


# a whole number a catalog holds as a JSON integer: 64 bits, signed (the bound above lets an
# event's integer reach 1e20, which a stored catalog could not hold)
WHOLE_LIMIT = 2**63


def whole_number_problem(value: Any) -> str | None:
    """Why an integer of a catalog (a feature's number, a filter's value) cannot be stored as
    written, or None; anything else is not this function's to judge. Quoted, the same number is
    a decimal string, which a feature reads as its number and a filter compares in the same text
    form."""
    if type(value) is int and not -WHOLE_LIMIT <= value < WHOLE_LIMIT:
        return (f"{shown_number(value)} is out of range for a whole number (-{WHOLE_LIMIT} to {WHOLE_LIMIT - 1}): "
                "write it in quotes, as a decimal string")
    return None


def out_of_bound(properties: dict[str, Any]) -> tuple[str, str] | None:
    """The first numeric value anywhere in an event's properties that is outside the bound:
    (its path, such as `note` or `meta.deep.1`, and why); None when every number is inside."""
    # the import's hot path: strings and small integers are passed over without a call
    for key, value in properties.items():
        kind = type(value)
        if kind is str or kind is bool or value is None or (kind is int and -UPPER < value < UPPER):
            continue
        found = _first_problem(str(key), value)
        if found is not None:
            return found
    return None


def _first_problem(path: str, value: Any) -> tuple[str, str] | None:
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        kind = type(item)
        if kind is int or kind is Decimal or kind is float:
            problem = number_problem(item)
            if problem is not None:
                return where, problem
        elif kind is dict:
            stack.extend((f"{where}.{key}", inner) for key, inner in reversed(item.items()))
        elif kind is list:
            stack.extend((f"{where}.{index}", item[index]) for index in range(len(item) - 1, -1, -1))
    return None


def shown_number(value: int | Decimal) -> str:
    if type(value) is int and value.bit_length() > 256:  # str() of a huge int is slow, even refused
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}…{text[-12:]}"
