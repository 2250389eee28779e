"""Caps (`maximum`): the most a usage charge, or a plan's usage, bills in one period.

Order of application for a period's amount: charge model → charge cap → plan cap → minimum →
discounts → tax. A cap is prorated like a flat fee, by whole days of a short period
(`maximum × days / days_in_full_period`), and applied per segment when the terms change inside
the period (each segment is capped by the terms in force in it, over its own usage). The prorated
cap is rounded once, to the currency's minor unit: what a capped charge bills is exactly that
rounded cap, and its invoice shows the usage line at its full amount followed by a cap line of
kind `maximum` taking off the excess (a negative amount). A cap never raises an amount and never
takes more than the excess: the capped amount is never negative.

Caps apply to usage charges only: a fee is a fixed price, and a fee billed in advance sits on
another invoice than the period's usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .invoice import Line
from .money import quantize
from .periods import Period
from .pricing import Charge

CHARGE_CAP_PREFIX = "maximum:"  # a charge cap's line code: maximum:<charge code>
PLAN_CAP = "maximum"  # the plan cap's line code
KIND = "maximum"


@dataclass(frozen=True)
class PlanCap:
    """At most `amount` per period over the usage charges named in `charges` (empty: every usage
    charge of the plan), after their own caps."""

    amount: Decimal
    charges: tuple[str, ...] = ()


def charge_of(line: Line) -> str | None:
    """The charge a line bills for: its own code, or the capped charge's for a charge cap line."""
    if line.kind == KIND:
        return line.code[len(CHARGE_CAP_PREFIX):] if line.code.startswith(CHARGE_CAP_PREFIX) else None
    return line.code


def capped(billed: Decimal, maximum: Decimal, period: Period, currency: str, rounding: str) -> Decimal:
    """What `billed` becomes under a cap of `maximum` per full period over `period`."""
    return min(billed, quantize(period.prorate(maximum), currency, rounding))


def cap_lines(charges: Sequence[Charge], plan_cap: PlanCap | None, period: Period, lines: Sequence[Line],
              currency: str, rounding: str = "half_up") -> list[Line]:
    """The cap lines of one period (or segment) for its usage `lines` under one plan's terms:
    each capped charge's line, then the plan's."""
    result: list[Line] = []
    usage = [line for line in lines if line.kind == "usage"]
    for charge in charges:
        if charge.maximum is None or not charge.is_usage:
            continue
        billed = sum((line.amount for line in usage if line.code == charge.code), Decimal(0))
        line = _cap_line(CHARGE_CAP_PREFIX + charge.code, charge.description or charge.code, billed, charge.maximum,
                         period, currency, rounding)
        if line is not None:
            result.append(line)
    if plan_cap is not None:
        covered = set(plan_cap.charges) or {charge.code for charge in charges if charge.is_usage}
        billed = sum((line.amount for line in (*usage, *result) if charge_of(line) in covered), Decimal(0))
        line = _cap_line(PLAN_CAP, "usage" if not plan_cap.charges else ", ".join(plan_cap.charges), billed,
                         plan_cap.amount, period, currency, rounding)
        if line is not None:
            result.append(line)
    return result


def _cap_line(code: str, name: str, billed: Decimal, maximum: Decimal, period: Period, currency: str,
              rounding: str) -> Line | None:
    excess = billed - capped(billed, maximum, period, currency, rounding)
    if excess <= 0:
        return None
    description = f"Maximum {maximum} {currency} per period on {name}"
    if not period.is_full and period.days != period.full_days:
        limit = quantize(period.prorate(maximum), currency, rounding)
        description += f" (prorated {period.days}/{period.full_days} days: {limit} {currency})"
    return Line(code=code, description=description, service_start=period.start, service_end=period.end,
                quantity=Decimal(1), unit_amount=-excess, amount=-excess, kind=KIND)
