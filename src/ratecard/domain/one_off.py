"""The money of a one-off invoice (lines written by hand): each line rounded once, as quantity x unit
amount, and the invoice's tax computed from the rounded lines like any invoice's. A one-off line's
amount, on a one-off invoice or as a subscription's one-off charge, is held to the bound of every
price ratecard stores (domain.numbers: below 1e20), not only its quantity and unit amount."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Context, Decimal

from .invoice import Totals
from .money import EXACT_PRECISION, quantize
from .numbers import MAX_DIGITS, MAX_MAGNITUDE, shown_number
from .tax import invoice_tax

# the exact arithmetic every price is computed in (domain.money.EXACT_PRECISION digits)
_EXACT = Context(prec=EXACT_PRECISION)
# a product of two numbers inside the price bound, exact (38 digits each: at most 76)
_PRODUCT = Context(prec=2 * MAX_DIGITS)
LINE_AMOUNT_LIMIT = Decimal(10) ** (MAX_MAGNITUDE + 1)  # 1e20, as every price and quantity


def line_amount_problem(quantity: Decimal, unit_amount: Decimal) -> str | None:
    """Why a one-off line's amount, quantity x unit amount, is out of range (a sentence naming both
    and the product), or None. Two factors inside their bounds can still make an amount no bill has
    (999999999999 x 999999999999 is about 1e24)."""
    product = _PRODUCT.multiply(quantity, unit_amount)
    if abs(product) < LINE_AMOUNT_LIMIT:
        return None
    return (f"{shown_number(quantity)} x {shown_number(unit_amount)} = {shown_number(product)} is out of range "
            f"(a line's amount, quantity x unit amount, is below 1e{MAX_MAGNITUDE + 1}, as every price is)")


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
