"""Invoices and lines as values, their totals, and the legal state transitions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .tiers import TierPart

STATUSES = ("draft", "final", "void")
# draft -> final | void. Final is immutable: differences go through a correction, not an edit.
TRANSITIONS = {"draft": frozenset({"final", "void"}), "final": frozenset(), "void": frozenset()}


class InvoiceStateError(ValueError):
    """A transition the invoice's state does not allow."""


def check_transition(current: str, target: str) -> None:
    if current not in TRANSITIONS:
        raise InvoiceStateError(f"unknown invoice status {current!r}")
    if target not in TRANSITIONS[current]:
        raise InvoiceStateError(f"an invoice in status {current} cannot become {target}")


@dataclass(frozen=True)
class Line:
    """One invoice line with its own service period [service_start, service_end)."""

    code: str
    description: str
    service_start: datetime
    service_end: datetime
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal  # rounded to the currency's minor unit
    kind: str  # advance | arrears | usage | maximum | minimum | proration | discount | adjustment | ...
    tiers: tuple[TierPart, ...] = ()  # a tiered usage line's parts (exact amounts adding up to its price)
    # a charge priced per dimension: the filter the line prices (None: the default price, or no filters)
    # and its group, (property, value) in group_by's order (None: no group_by, or no usage at all)
    filter: str | None = None
    group: tuple[tuple[str, str | None], ...] | None = None


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def totals(lines: Sequence[Line], tax: Decimal) -> Totals:
    # the tax is already rounded: 0 × tax is a zero with the currency's digits ("0.00"),
    # so an invoice without lines still has a subtotal of "0.00", not "0"
    subtotal = sum((line.amount for line in lines), (tax * 0).copy_abs())
    return Totals(subtotal, tax, subtotal + tax)
