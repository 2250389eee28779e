"""Exclusive tax at the customer's rate, rounded once per invoice or once per line."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from .money import quantize

TAX_ROUNDINGS = ("invoice", "line")


def line_taxes(
    amounts: Sequence[Decimal], rate_percent: Decimal, currency: str, rounding: str
) -> list[Decimal]:
    """Each line's tax rounded on its own (tax_rounding: line)."""
    return [quantize(amount * rate_percent / 100, currency, rounding) for amount in amounts]


def invoice_tax(
    amounts: Sequence[Decimal],
    rate_percent: Decimal,
    currency: str,
    rounding: str = "half_up",
    tax_rounding: str = "invoice",
) -> Decimal:
    """The tax of an invoice whose lines are already rounded amounts."""
    if tax_rounding == "line":
        # start from 0 with the currency's digits, so no lines still gives "0.00"
        return sum(line_taxes(amounts, rate_percent, currency, rounding), quantize(Decimal(0), currency))
    if tax_rounding != "invoice":
        raise ValueError(f"unknown tax rounding {tax_rounding!r}")
    subtotal = sum(amounts, Decimal(0))
    return quantize(subtotal * rate_percent / 100, currency, rounding)
