"""The money of a one-off invoice (lines written by hand): each line rounded once, as quantity x unit
amount, and the invoice's tax computed from the rounded lines like any invoice's."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Context, Decimal

from .invoice import Totals
from .money import EXACT_PRECISION, quantize
from .tax import invoice_tax

# the exact arithmetic every price is computed in (domain.money.EXACT_PRECISION digits)
_EXACT = Context(prec=EXACT_PRECISION)


def line_amount(quantity: Decimal, unit_amount: Decimal, currency: str, rounding: str = "half_up") -> Decimal:
    """quantity x unit amount, exact, then rounded once to the currency's minor unit (the product
    is taken in pricing's exact precision: Python's 28 default digits would round it first)."""
    return quantize(_EXACT.multiply(quantity, unit_amount), currency, rounding)


def one_off_totals(amounts: Sequence[Decimal], tax_rate: Decimal, currency: str, rounding: str = "half_up",
                   tax_rounding: str = "invoice") -> Totals:
    """Subtotal (the sum of the rounded lines), tax (rounded once per invoice or per line, as the
    billing entity says) and total; no lines is 0.00 throughout."""
    tax = invoice_tax(amounts, tax_rate, currency, rounding, tax_rounding)
    subtotal = quantize(Decimal(0), currency)
    for amount in amounts:  # exact: a sum in 28 digits drops the cents of very large lines
        subtotal = _EXACT.add(subtotal, amount)
    return Totals(subtotal, tax, _EXACT.add(subtotal, tax))
