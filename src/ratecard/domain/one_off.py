"""The money of a one-off invoice (lines written by hand): each line rounded once, as quantity x unit
amount, and the invoice's tax computed from the rounded lines like any invoice's."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from .invoice import Totals
from .money import quantize
from .tax import invoice_tax


def line_amount(quantity: Decimal, unit_amount: Decimal, currency: str, rounding: str = "half_up") -> Decimal:
    """quantity x unit amount, exact, then rounded once to the currency's minor unit."""
    return quantize(quantity * unit_amount, currency, rounding)


def one_off_totals(amounts: Sequence[Decimal], tax_rate: Decimal, currency: str, rounding: str = "half_up",
                   tax_rounding: str = "invoice") -> Totals:
    """Subtotal (the sum of the rounded lines), tax (rounded once per invoice or per line, as the
    billing entity says) and total; no lines is 0.00 throughout."""
    tax = invoice_tax(amounts, tax_rate, currency, rounding, tax_rounding)
    subtotal = sum(amounts, quantize(Decimal(0), currency))
    return Totals(subtotal, tax, subtotal + tax)
