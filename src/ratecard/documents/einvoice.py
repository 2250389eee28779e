"""What UBL and CII share: an invoice's figures as EN 16931 states them.

EN 16931 states a credit note's amounts as positive numbers (the document type says it credits),
where ratecard stores a credit note's lines and totals negated; each line's quantity and price are
chosen so that quantity × price = the line's net amount (PEPPOL-EN16931-R120), with a price that is
never negative (BR-27)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from functools import wraps
from typing import ParamSpec, TypeVar

from .model import DocumentError, InvoiceView, Party

P = ParamSpec("P")
R = TypeVar("R")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
INVOICE_TYPE = "380"  # commercial invoice
CREDIT_NOTE_TYPE = "381"
UNIT_CODE = "C62"  # "one": ratecard's quantities are counts of the charge's unit


@dataclass(frozen=True)
class EInvoiceLine:
    position: int
    code: str
    name: str
    note: str | None  # the quantity metered, when the line is stated as one unit at its amount
    quantity: Decimal
    price: Decimal
    net: Decimal
    start: date
    end: date


@dataclass(frozen=True)
class TaxCategory:
    code: str  # S standard rate, Z zero rated, AE reverse charge
    rate: Decimal
    exemption_reason: str | None = None


def xml_text(text: str) -> str:
    """The text without the characters XML 1.0 cannot carry (a catalog description may hold them)."""
    return _NOT_XML.sub("", text)


WIDE = 100  # digits of decimal arithmetic here: stored amounts reach 40 digits, and nothing may round them


def wide_decimals(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with WIDE-digit decimal arithmetic (sums and products never round)."""
    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext() as context:
            context.prec = WIDE
            return function(*args, **kwargs)
    return wrapper


@wide_decimals
def amount_text(amount: Decimal, digits: int) -> str:
    """An amount with exactly the currency's digits (stored amounts already have them)."""
    return f"{amount.quantize(Decimal(1).scaleb(-digits)):f}"


def number_text(value: Decimal) -> str:
    """A quantity or price in plain decimal notation (no exponent), trailing zeros dropped."""
    return f"{value.normalize():f}"


def sign(view: InvoiceView) -> Decimal:
    return Decimal(-1) if view.is_credit_note else Decimal(1)


@wide_decimals
def einvoice_lines(view: InvoiceView) -> list[EInvoiceLine]:
    factor = sign(view)
    unit = Decimal(1).scaleb(-view.digits)
    lines = []
    for line in view.lines:
        net = line.amount * factor
        quantity = line.quantity * factor
        price = line.unit_amount
        note = None
        if price < 0 or (quantity * price).quantize(unit) != net:
            # a tiered, prorated or minimum line: its unit price is no factor of its amount, so
            # it is stated as one unit (minus one for a credit) at the amount
            note = f"{number_text(line.quantity)} × {line.description}" if line.quantity != 1 else None
            quantity = Decimal(1) if net >= 0 else Decimal(-1)
            price = abs(net)
        lines.append(EInvoiceLine(line.position, line.code, line.description, note, quantity, price, net,
                                  line.service_start, max(line.service_end, line.service_start)))
    return lines


def tax_category(view: InvoiceView) -> TaxCategory:
    rate = view.taxes[0].rate if view.taxes else Decimal(0)
    if rate > 0:
        return TaxCategory("S", rate)
    seller, buyer = view.seller, view.buyer
    if buyer.tax_id and buyer.country and seller.country and buyer.country != seller.country:
        return TaxCategory("AE", Decimal(0), "Reverse charge")
    return TaxCategory("Z", Decimal(0))


def check_ready(view: InvoiceView) -> None:
    """Refuse, with a sentence, what EN 16931 cannot state: a draft, or parties without what it requires."""
    if view.is_draft:
        raise DocumentError(f"{view.number} is a {view.status} invoice: e-invoices are issued for final invoices "
                            "only (finalize it first: `ratecard invoices finalize " + view.number + "`)")
    _need(view.seller, "billing entity", view.entity.code, "country (an address)", view.seller.country)
    _need(view.seller, "billing entity", view.entity.code, "tax_id (the seller's VAT identifier)", view.seller.tax_id)
    _need(view.buyer, "customer", view.buyer.reference or "", "country (or an address)", view.buyer.country)


def _need(party: Party, what: str, name: str, field: str, value: object) -> None:
    if not value:
        raise DocumentError(f"{what} {name!r} has no {field}: an EN 16931 e-invoice requires it; add it to the "
                            "catalog and apply it")
