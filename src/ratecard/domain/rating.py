"""(subscription plan, period, usage) -> invoice lines and totals. The one way to price.

Invoices are cut at period boundaries: the invoice at boundary t holds the advance flat
fees of the period starting at t and the arrears lines (arrears flat fees, usage, the
minimum true-up) of the period ending at t.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .aggregation import Usage
from .invoice import Line, Totals, totals
from .money import EXACT_PRECISION, quantize
from .periods import Period, Schedule
from .pricing import Charge, price_usage
from .tax import invoice_tax


class RatingError(ValueError):
    """A line whose amount cannot be computed exactly: the quantity times the price leaves the
    range exact pricing works in (domain.money.EXACT_PRECISION digits). Names the charge."""

    def __init__(self, charge: str, quantity: Decimal | None) -> None:
        self.charge = charge
        self.quantity = quantity
        shown = f"quantity {quantity:.6E} " if quantity is not None else ""
        super().__init__(f"charge {charge!r}: {shown}gives an amount beyond the {EXACT_PRECISION} digits pricing "
                         "computes exactly; check the charge's price and the meter's events")


@contextmanager
def _pricing(charge: str, quantity: Decimal | None = None) -> Iterator[None]:
    """Decimal arithmetic of one line: its failure becomes a RatingError naming the line."""
    try:
        yield
    except ArithmeticError:  # decimal's InvalidOperation/Overflow: never a library message to the user
        raise RatingError(charge, quantity) from None


@dataclass(frozen=True)
class Plan:
    code: str
    currency: str
    interval: str
    charges: tuple[Charge, ...]
    minimum: Decimal | None = None
    name: str | None = None


@dataclass(frozen=True)
class Cut:
    """One invoice's place in time: the boundary, the period it closes and the one it opens."""

    boundary: datetime
    closing: Period | None
    opening: Period | None


@dataclass(frozen=True)
class Pricing:
    """How amounts are rounded and taxed for one invoice."""

    currency: str
    rounding: str = "half_up"
    tax_rate: Decimal = Decimal(0)
    tax_rounding: str = "invoice"


def invoice_cuts(schedule: Schedule, until: datetime) -> list[Cut]:
    """Every cut at a boundary <= until: the subscription's start, then each period's end."""
    periods = schedule.periods_until(until)
    cuts: list[Cut] = []
    if not periods:
        return cuts
    cuts.append(Cut(periods[0].start, None, periods[0]))
    for index, period in enumerate(periods):
        if period.end > until:
            break
        following = periods[index + 1] if index + 1 < len(periods) else None
        if following is not None and following.start != period.end:
            following = None
        cuts.append(Cut(period.end, period, following))
    return cuts


def rate_cut(plan: Plan, cut: Cut, usage: Mapping[str, Usage], pricing: Pricing) -> list[Line]:
    """The lines of the invoice at one cut. `usage` maps meter code -> the closing period's usage."""
    lines: list[Line] = []
    if cut.opening is not None:
        lines += flat_lines(plan, cut.opening, "advance", pricing)
    if cut.closing is not None:
        lines += flat_lines(plan, cut.closing, "arrears", pricing)
        lines += usage_lines(plan, cut.closing, usage, pricing)
        minimum = minimum_line(plan, cut.closing, lines, pricing)
        if minimum is not None:
            lines.append(minimum)
    return lines


def flat_lines(plan: Plan, period: Period, timing: str, pricing: Pricing) -> list[Line]:
    lines = []
    for charge in plan.charges:
        if charge.is_usage or charge.timing != timing:
            continue
        with _pricing(charge.code):
            exact = period.prorate(charge.amount)
            amount = quantize(exact, pricing.currency, pricing.rounding)
        description = charge.description or charge.code
        if not period.is_full and period.days != period.full_days:
            description += f" (prorated {period.days}/{period.full_days} days)"
        lines.append(
            Line(
                code=charge.code,
                description=description,
                service_start=period.start,
                service_end=period.end,
                quantity=Decimal(1),
                unit_amount=charge.amount,
                amount=amount,
                kind=timing,
            )
        )
    return lines


def usage_lines(
    plan: Plan, period: Period, usage: Mapping[str, Usage], pricing: Pricing
) -> list[Line]:
    lines = []
    for charge in plan.charges:
        if not charge.is_usage:
            continue
        measured = usage.get(charge.meter or "", Usage.zero())
        with _pricing(charge.code, measured.quantity):
            price = price_usage(charge, measured.quantity, measured.events)
            amount = quantize(price.amount, pricing.currency, pricing.rounding)
        lines.append(
            Line(
                code=charge.code,
                description=charge.description or charge.code,
                service_start=period.start,
                service_end=period.end,
                quantity=measured.quantity,
                unit_amount=price.unit_amount,
                amount=amount,
                kind="usage",
            )
        )
    return lines


def minimum_line(
    plan: Plan, period: Period, closing_lines: Sequence[Line], pricing: Pricing
) -> Line | None:
    """A true-up line when the period's lines add up to less than the plan's minimum.

    The period's lines are its advance flat fees (billed at its start, recomputed here by
    the same function) and its arrears lines. A short period's minimum is prorated like a
    flat fee.
    """
    if plan.minimum is None or plan.minimum <= 0:
        return None
    period_lines = flat_lines(plan, period, "advance", pricing)
    period_lines += [line for line in closing_lines if line.service_start == period.start]
    with _pricing("minimum"):
        spent = sum((line.amount for line in period_lines), Decimal(0))
        shortfall = period.prorate(plan.minimum) - spent
        amount = quantize(shortfall, pricing.currency, pricing.rounding)
    if amount <= 0:
        return None
    return Line(
        code="minimum",
        description=f"Minimum spend true-up ({plan.minimum} {pricing.currency})",
        service_start=period.start,
        service_end=period.end,
        quantity=Decimal(1),
        unit_amount=amount,
        amount=amount,
        kind="minimum",
    )


def invoice_totals(lines: Sequence[Line], pricing: Pricing) -> Totals:
    with _pricing("tax"):
        tax = invoice_tax(
            [line.amount for line in lines],
            pricing.tax_rate,
            pricing.currency,
            pricing.rounding,
            pricing.tax_rounding,
        )
        return totals(lines, tax)
