"""Exact decimal arithmetic for SQLite, which has none: roll-up rows keep their numbers as decimal
text there, and the roll-ups' upsert merges them with these functions (registered on every
connection); PostgreSQL's numeric does the same natively."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext
from typing import Any

from ..domain.dimensions import plain_number
from ..domain.rollups import EXACT_PRODUCT_DIGITS


def _add(left: str | None, right: str | None) -> str | None:
    if left is None or right is None:
        return left if right is None else right
    with localcontext() as ctx:
        ctx.prec = EXACT_PRODUCT_DIGITS
        return format(Decimal(left) + Decimal(right), "f")


def _least(left: str | None, right: str | None) -> str | None:
    if left is None or right is None:
        return left if right is None else right
    return left if Decimal(left) <= Decimal(right) else right


def _greatest(left: str | None, right: str | None) -> str | None:
    if left is None or right is None:
        return left if right is None else right
    return left if Decimal(left) >= Decimal(right) else right


_WIDE = Context(prec=EXACT_PRODUCT_DIGITS)  # as domain.rollups.Partial adds


class _Sum:
    """ratecard_sum(json number text): the exact sum of JSON numbers as the roll-ups keep it (each
    value plain, as domain.rollups.Partial adds them), as decimal text; NULL over no value."""

    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, text: str | None) -> None:
        if text is None:
            return
        number = plain_number(Decimal(text))
        self.total = number if self.total is None else _WIDE.add(self.total, number)

    def finalize(self) -> str | None:
        return None if self.total is None else format(self.total, "f")


def register(raw: Any) -> None:
    raw.create_aggregate("ratecard_sum", 1, _Sum)
    raw.create_function("ratecard_add", 2, _add, deterministic=True)
    raw.create_function("ratecard_least", 2, _least, deterministic=True)
    raw.create_function("ratecard_greatest", 2, _greatest, deterministic=True)
