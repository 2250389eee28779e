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
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import wraps
from typing import ParamSpec, TypeVar

from ..domain.money import display_price
from .model import DocumentError, DocumentLine, InvoiceView, Party
from .rules import within_r120_slack

P = ParamSpec("P")
R = TypeVar("R")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
INVOICE_TYPE = "380"  # commercial invoice
CREDIT_NOTE_TYPE = "381"
UNIT_CODE = "C62"  # "one": ratecard's quantities are counts of the charge's unit
MAX_DIGITS = 2  # EN 16931 writes every amount with at most two decimals (BR-DEC-*, UBL-DT-01)


@dataclass(frozen=True)
class EInvoiceLine:
    position: str  # the line's position; "3.2" for the second e-invoice line of line 3's tiers
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
    """An amount with exactly the currency's digits (stored amounts already have them); zero unsigned."""
    return f"{_unsigned_zero(amount).quantize(Decimal(1).scaleb(-digits)):f}"


def number_text(value: Decimal) -> str:
    """A quantity or price in plain decimal notation (no exponent), trailing zeros dropped; zero unsigned."""
    return f"{_unsigned_zero(value).normalize():f}"


def _unsigned_zero(value: Decimal) -> Decimal:
    """0 for -0: a credit note negates what ratecard stores, and a zero negated is written "-0.00",
    which the EN 16931 rules do not read as zero (BR-Z-09, BR-S-08)."""
    return abs(value) if value == 0 else value


def sign(view: InvoiceView) -> Decimal:
    return Decimal(-1) if view.is_credit_note else Decimal(1)


@wide_decimals
def einvoice_lines(view: InvoiceView) -> list[EInvoiceLine]:
    factor = sign(view)
    unit = Decimal(1).scaleb(-view.digits)
    lines = []
    for line in view.lines:
        split = tier_lines(line, factor, unit)
        if split:
            lines += split
            continue
        net = line.amount * factor
        quantity = line.quantity * factor
        price = line.unit_amount
        note = None
        if _states(quantity, price, net, unit):
            # the price the PDF shows (an average to 6 decimals or 6 significant digits) when it
            # states the net amount too; which lines are stated by their price does not change
            shown = display_price(price, view.digits)
            price = shown if _states(quantity, shown, net, unit) else price
        else:
            # a tiered, prorated or minimum line: its unit price is no factor of its amount (or
            # rounds to it by more than R120's 0.02, as yen do), so it is stated as one unit (minus
            # one for a credit) at the amount
            note = f"{number_text(line.quantity)} × {line.description}" if line.quantity != 1 else None
            quantity = Decimal(1) if net >= 0 else Decimal(-1)
            price = abs(net)
        lines.append(EInvoiceLine(str(line.position), line.code, line.description, note, quantity, price, net,
                                  line.service_start, max(line.service_end, line.service_start)))
    return lines


def _states(quantity: Decimal, price: Decimal, net: Decimal, unit: Decimal) -> bool:
    """Whether quantity × price states the net amount: it rounds to it in the currency's digits and
    stays within R120's slack of it, with a price that is not negative (BR-27)."""
    stated = quantity * price
    return price >= 0 and stated.quantize(unit) == net and within_r120_slack(stated, net)


def tier_lines(line: DocumentLine, factor: Decimal, unit: Decimal) -> list[EInvoiceLine]:
    """A tiered line as one e-invoice line per tier: its units at the tier's price, and the tier's
    flat amount as a line of its own (quantity 1). Each net is quantity × price rounded to the
    currency's digits (PEPPOL-EN16931-R120); when those nets do not add up to the line's stored
    amount exactly, one is further than R120's 0.02 from its quantity × price (a yen rounded), or a
    price is negative (BR-27), none (the line is stated as one unit at its amount)."""
    rows: list[tuple[str, Decimal, Decimal]] = []  # (name, quantity, price)
    for part in line.tiers:
        units = f"{number_text(part.first_unit)}–{number_text(part.last_unit)}"
        if part.quantity != 0 and (part.unit_amount != 0 or part.flat_amount == 0):
            rows.append((f"{line.description} (tier {part.tier}: units {units})", part.quantity * factor,
                         part.unit_amount))
        if part.flat_amount != 0:
            flat = part.flat_amount * factor
            rows.append((f"{line.description} (tier {part.tier}: flat amount)", Decimal(1) if flat >= 0 else Decimal(-1),
                         abs(flat)))
    if not rows or any(price < 0 for _, _, price in rows):
        return []
    nets = [(quantity * price).quantize(unit, rounding=ROUND_HALF_UP) for _, quantity, price in rows]
    if sum(nets, Decimal(0)) != line.amount * factor or \
            not all(within_r120_slack(quantity * price, net) for (_, quantity, price), net in zip(rows, nets, strict=True)):
        return []
    end = max(line.service_end, line.service_start)
    return [EInvoiceLine(f"{line.position}.{index}", line.code, name, None, quantity, price, net, line.service_start,
                         end)
            for index, ((name, quantity, price), net) in enumerate(zip(rows, nets, strict=True), start=1)]


def tax_category(view: InvoiceView) -> TaxCategory:
    rate = view.taxes[0].rate if view.taxes else Decimal(0)
    if rate > 0:
        return TaxCategory("S", rate)
    seller, buyer = view.seller, view.buyer
    if buyer.tax_id and buyer.country and seller.country and buyer.country != seller.country:
        return TaxCategory("AE", Decimal(0), "Reverse charge")
    return TaxCategory("Z", Decimal(0))


def check_ready(view: InvoiceView) -> None:
    """Refuse, with a sentence, what EN 16931 cannot state: a draft, amounts in a currency with three
    decimals or more (BHD, KWD, …), or parties without what it requires."""
    if view.is_draft:
        raise DocumentError(f"{view.number} is a {view.status} invoice: e-invoices are issued for final invoices "
                            "only (finalize it first: `ratecard invoices finalize " + view.number + "`)")
    if view.digits > MAX_DIGITS:
        raise DocumentError(f"{view.number} is in {view.currency}, whose amounts have {view.digits} decimals: "
                            f"EN 16931 states amounts with at most {MAX_DIGITS} (BR-DEC-09 to BR-DEC-23), so it has "
                            "no e-invoice; its PDF is not affected")
    _need(view.seller, "billing entity", view.entity.code, "country (an address)", view.seller.country)
    _need(view.seller, "billing entity", view.entity.code, "tax_id (the seller's VAT identifier)", view.seller.tax_id)
    _need(view.buyer, "customer", view.buyer.reference or "", "country (or an address)", view.buyer.country)


def _need(party: Party, what: str, name: str, field: str, value: object) -> None:
    if not value:
        raise DocumentError(f"{what} {name!r} has no {field}: an EN 16931 e-invoice requires it; add it to the "
                            "catalog and apply it")
