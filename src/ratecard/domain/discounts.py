"""Discounts: a percentage or an amount off the lines of one billing period, never below zero.

A discount applies after the charge models, the caps and the minimum, before tax. It takes from
the lines of one period (all of them, or one charge's with its cap line), each discount from what
the previous ones left, and never takes more than they add up to: a line, a charge or a period is
never made negative.

A period's lines may sit on two invoices: its fees in advance on the invoice that opens it, the
rest (arrears fees, usage, prorations, the minimum) on the one that closes it. The discount of
the period is computed once over all of them; the opening invoice takes its share of the fees
in advance, the closing invoice the rest. So an amount off is taken once per period, and a
percentage is rounded once per period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .caps import CHARGE_CAP_PREFIX
from .invoice import Line
from .money import quantize

# lines that are not billed services: never discounted
NOT_DISCOUNTED = frozenset({"discount", "adjustment", "credit_note", "correction"})
LINE_PREFIX = "discount:"


@dataclass(frozen=True)
class Discount:
    """`percent_off` (0 < p <= 100) or `amount_off` (> 0, in the plan's currency) off the lines of
    each period starting before `until` (None: forever), of one `charge` or of every charge."""

    code: str
    percent_off: Decimal | None = None
    amount_off: Decimal | None = None
    charge: str | None = None
    until: datetime | None = None
    description: str | None = None

    @property
    def line_code(self) -> str:
        """The code of its invoice lines: stable, so corrections compare them period by period."""
        return LINE_PREFIX + self.code

    def covers(self, line: Line) -> bool:
        return (line.kind not in NOT_DISCOUNTED
                and (self.until is None or line.service_start < self.until)
                and (self.charge is None or line.code in (self.charge, CHARGE_CAP_PREFIX + self.charge)))

    def label(self, currency: str) -> str:
        off = f"{self.percent_off.normalize():f}% off" if self.percent_off is not None \
            else f"{self.amount_off} {currency} off"
        where = f" {self.charge}" if self.charge is not None else ""
        return f"{self.description or self.code}: {off}{where}"


def discount_amounts(discounts: Sequence[Discount], lines: Sequence[Line], currency: str,
                     rounding: str = "half_up") -> list[Decimal]:
    """What each discount takes off `lines` (the lines of one period), in order, each from what
    the ones before it left; every amount is rounded and never negative."""
    return _take(discounts, lines, [None] * len(discounts), currency, rounding)


def _take(discounts: Sequence[Discount], lines: Sequence[Line], wanted: Sequence[Decimal | None], currency: str,
          rounding: str) -> list[Decimal]:
    """Each discount's take off `lines`: `wanted` (None: its own percentage or amount), at most
    what the covered lines, and all the lines, still hold after the discounts before it. A negative
    `wanted` is a reversal of what earlier invoices of the period took, at most what the covered
    lines credit."""
    left = [line.amount for line in lines]
    taken = []
    for discount, want in zip(discounts, wanted, strict=True):
        covered = [index for index, line in enumerate(lines) if discount.covers(line)]
        base = max(min(sum((left[index] for index in covered), Decimal(0)), sum(left, Decimal(0))), Decimal(0))
        if want is not None:
            take = want
        elif discount.percent_off is not None:
            take = quantize(base * discount.percent_off / 100, currency, rounding)
        else:
            # an amount on a line: rounded once to the currency's minor unit (0.005 EUR takes 0.01)
            take = quantize(discount.amount_off or Decimal(0), currency, rounding)
        if take < 0:
            # the period's lines shrank after an earlier invoice took its share (fewer seats, a
            # downgrade credited): give back the difference, but never more than this invoice's
            # covered lines credit, so a reversal only ever reduces a credit, never charges
            credited = sum((left[index] for index in covered), Decimal(0))
            take = max(take, min(credited, Decimal(0)))
        else:
            take = min(take, base)
        rest = take
        for index in covered:  # what is taken is gone for the next discount (a reversal: back)
            share = min(max(left[index], Decimal(0)), rest) if rest >= 0 else max(min(left[index], Decimal(0)), rest)
            left[index] -= share
            rest -= share
        taken.append(take)
    return taken


def discount_takes(discounts: Sequence[Discount], lines: Sequence[Line], currency: str, rounding: str = "half_up",
                   earlier: Sequence[Line] = (), undiscounted: Sequence[Line] = (),
                   taken: Sequence[Decimal] | None = None) -> list[Decimal]:
    """What each discount takes off `lines`, one invoice's lines of a period (see discount_lines).
    `taken`: what each discount took off `earlier` on the period's earlier invoices, when that is
    not simply its share of them. When the period's lines shrank since (an invoice of credits),
    the take is negative: the part of the earlier discount those credits no longer earn."""
    wanted: list[Decimal | None] = [None] * len(discounts)
    if earlier or undiscounted or taken is not None:
        whole = discount_amounts(discounts, [*earlier, *undiscounted, *lines], currency, rounding)
        before = list(taken) if taken is not None else discount_amounts(discounts, earlier, currency, rounding)
        wanted = [total - already for total, already in zip(whole, before, strict=True)]
    return _take(discounts, lines, wanted, currency, rounding)


def discount_lines(discounts: Sequence[Discount], start: datetime, end: datetime, lines: Sequence[Line],
                   currency: str, rounding: str = "half_up", earlier: Sequence[Line] = (),
                   undiscounted: Sequence[Line] = (), taken: Sequence[Decimal] | None = None) -> list[Line]:
    """The discount lines of the period [start, end) on one invoice holding `lines` of it.

    `earlier`: the period's lines on the invoices before this one (the fees in advance of the one
    that opened it, as billed; what an invoice cut at once inside it settled), which took their
    share of each discount there (`taken`, when given): this invoice takes the rest.
    `undiscounted`: the period's usage billed inside it (threshold invoices, usage billed in
    advance), which took no discount there: this invoice takes the period's discount for them
    too, as far as its own lines hold it."""
    if not discounts:
        return []
    result = []
    takes = discount_takes(discounts, lines, currency, rounding, earlier, undiscounted, taken)
    for discount, take in zip(discounts, takes, strict=True):
        if take == 0:
            continue
        label = discount.label(currency) if take > 0 else f"{discount.label(currency)} (given back on credited lines)"
        result.append(Line(code=discount.line_code, description=label, service_start=start,
                           service_end=end, quantity=Decimal(1), unit_amount=-take, amount=-take, kind="discount"))
    return result
