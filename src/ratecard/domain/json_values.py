"""How meters see the JSON value of an event property: one rule, which both stores follow.

- null (or a missing property) is no value: no aggregation counts it.
- true and false are never numbers: true is not 1.
- Numbers are equal by value: 1, 1.0, 1.00 and 1e0 are one number.
- unique_count tells apart values of different types ("1" is not 1, "true" is not true); two
  objects are the same value when they hold the same keys with the same values (in any order),
  two arrays when they hold the same values in the same order.
- A filter compares the text form of a value (`text_form`): a string as written, true/false as
  "true"/"false", a number in its plain decimal form (no exponent, no trailing zeros: 1.50 is
  "1.5", 1e2 is "100"). So a filter value 1 takes the number 1 and the CSV text "1", not "1.0".
  Objects and arrays have no text form and pass no filter.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from decimal import Decimal

# the text a number has when it is written in its plain decimal form
PLAIN_NUMBER = re.compile(r"0|-?[1-9][0-9]*(?:\.[0-9]*[1-9])?|-?0\.[0-9]*[1-9]")


def number_text(value: int | float | Decimal) -> str:
    """A number's plain decimal form: no exponent, no trailing zeros, no sign on zero."""
    if type(value) is int:
        return str(value)
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    text = format(number, "f")  # "f" never rounds, whatever the context's precision
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def is_number(value: object) -> bool:
    """A JSON number (true and false are not)."""
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def text_form(value: object) -> str | None:
    """What a filter compares: None for null, objects and arrays (they pass no filter)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return number_text(value)  # type: ignore[arg-type]
    if isinstance(value, str):
        return value
    return None


def is_plain_text(text: str) -> bool:
    """True when only a string can have this text form: not a number's, not true/false, and not
    starting like an object or array (which a store may show as their JSON text)."""
    return not (text in ("true", "false") or text[:1] in ("{", "[") or PLAIN_NUMBER.fullmatch(text))


def unique_key(value: object) -> Hashable:
    """Equal keys for the values unique_count counts once (see the module docstring)."""
    if isinstance(value, bool):
        return ("b", value)
    if is_number(value):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)  # type: ignore[arg-type]
        if number.is_finite():
            return ("n", number)  # Decimal equality and hash are by value: 1 == 1.00
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, dict):
        return ("o", frozenset((key, unique_key(inner)) for key, inner in value.items()))
    if isinstance(value, (list, tuple)):
        return ("a", tuple(unique_key(inner) for inner in value))
    if value is None:
        return ("z",)
    return ("s", str(value))


def canonical(value: object) -> object:
    """The value as a JSON document with one spelling per unique_key: every value tagged with its
    type, numbers in their plain form, objects' keys sorted by the encoder."""
    if isinstance(value, bool):
        return ["b", value]
    if is_number(value):
        return ["n", number_text(value)]  # type: ignore[arg-type]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, dict):
        return ["o", {str(key): canonical(inner) for key, inner in value.items()}]
    if isinstance(value, (list, tuple)):
        return ["a", [canonical(inner) for inner in value]]
    return ["z"]
