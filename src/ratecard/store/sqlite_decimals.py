"""Exact decimal arithmetic for SQLite, which has none: roll-up rows keep their numbers as decimal
text there, and the roll-ups' upsert merges them with these functions (registered on every
connection); PostgreSQL's numeric does the same natively."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

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


def register(raw: Any) -> None:
    raw.create_function("ratecard_add", 2, _add, deterministic=True)
    raw.create_function("ratecard_least", 2, _least, deterministic=True)
    raw.create_function("ratecard_greatest", 2, _greatest, deterministic=True)
