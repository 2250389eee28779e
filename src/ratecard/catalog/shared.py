"""One object for each repeated value of a large catalog.

Every customer of a catalog read from JSON carries its own "NL", "EUR" and Decimal("21"), every
subscription its own plan code and start date: 100,000 customers hold 100,000 copies of each.
Specs built through SharedValues hold one.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TypeVar

Value = TypeVar("Value")


class SharedValues:
    """Equal immutable values as one object. Only values whose equality means the same value are
    shared: strings and plain dates by equality, decimals by their text (21 and 21.00 are equal but
    not the same amount); anything else (a datetime: equal instants in two offsets) is kept as is."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[tuple, object] = {}

    def __call__(self, value: Value) -> Value:
        kind = type(value)
        if kind is str or kind is date:
            key = (kind, value)
        elif kind is Decimal:
            key = (kind, str(value))
        else:
            return value
        return self._seen.setdefault(key, value)  # type: ignore[return-value]
