"""Subscriptions that change inside a period: which terms price which part, and the proration
of fees billed in advance (Stripe's default, by whole days).

A subscription's terms are a list of plans, each in force from an instant until the next. A
billing period is cut into segments, one per set of terms. Usage and fees billed in arrears are
priced per segment under its own terms. A fee billed in advance was billed once, at the period's
start, under the terms then (its *basis*); when the terms change inside the period the unused
part of the basis is credited and the remaining part of the new fee charged, each by days:
`fee × segment days / full period days`, each line rounded once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .periods import Period, _whole_days

PRORATE = "prorate"
NO_PRORATION = "none"
INVOICE_NOW = "invoice_now"


@dataclass(frozen=True)
class Terms:
    """A plan in force from `start` (local, aware) until the next terms.

    `proration` says how the change *to* these terms settles fees billed in advance for the
    period it falls in: prorate (credit and charge on the period's closing invoice), none (the
    period keeps the fee it was billed; the new fee starts with the next period) or invoice_now
    (the credit and charge on an invoice cut at the change)."""

    start: datetime
    plan: object  # domain.rating.Plan (typed loosely: rating imports this module)
    proration: str = NO_PRORATION


@dataclass(frozen=True)
class Segment:
    """The part [start, end) of a period under one set of terms (`index` into the terms)."""

    start: datetime
    end: datetime
    index: int

    @property
    def days(self) -> int:
        return _whole_days(self.start, self.end)


@dataclass(frozen=True)
class Basis:
    """What a period's opening invoice billed for one fee in advance: the fee for a full
    period (`unit_amount`), the amount billed, and the end of the service it covered."""

    unit_amount: Decimal
    amount: Decimal
    service_end: datetime
    # the plan the subscription was on when it was billed: a later edit of that plan's price is
    # not a change of terms (it applies from the next period), a different plan is
    plan_code: str | None = None


def terms_at(terms: Sequence[Terms], moment: datetime) -> int:
    """The index of the terms in force at `moment` (the first ones before they start)."""
    found = 0
    for index, item in enumerate(terms):
        if item.start <= moment:
            found = index
    return found


def segments(terms: Sequence[Terms], period: Period) -> list[Segment]:
    """The period cut at every change of terms inside it, in order."""
    first = terms_at(terms, period.start)
    cuts = [period.start] + [item.start for item in terms[first + 1:] if period.start < item.start < period.end]
    bounds = cuts + [period.end]
    return [Segment(bounds[i], bounds[i + 1], first + i) for i in range(len(cuts))]


def fee_terms(terms: Sequence[Terms], period: Period, index: int) -> int:
    """The terms whose fees in advance apply to a segment: a change made without proration
    leaves the period's fees as they were (its new fees start with the next period)."""
    while index > 0 and terms[index].start > period.start and terms[index].proration == NO_PRORATION:
        index -= 1
    return index


def settled_at(terms: Sequence[Terms], segment: Segment, period: Period) -> datetime | None:
    """The instant of the invoice cut at once for a segment's proration (invoice_now), if any."""
    item = terms[segment.index]
    if segment.start > period.start and item.start == segment.start and item.proration == INVOICE_NOW:
        return segment.start
    return None


@dataclass(frozen=True)
class Proration:
    """One proration amount before rounding, with the segment it belongs to."""

    code: str
    description: str
    start: datetime
    end: datetime
    exact: Decimal
    settled_at: datetime | None  # an invoice_now cut's instant, else the period's closing cut


AdvanceFees = Callable[[int], Mapping[str, tuple[Decimal, str]]]


def prorations(terms: Sequence[Terms], period: Period, basis: Mapping[str, Basis], advance_fees: AdvanceFees,
               end_prorated: bool) -> list[Proration]:
    """Credits and charges that settle the period's fees in advance against its terms.

    `advance_fees(index)` -> {charge code: (full-period fee, description)} of terms[index].
    `basis`: what the opening billed per charge code. `end_prorated`: the subscription ends inside
    the period and the unused part after its end is credited (False when it ends without proration).
    """
    full = Decimal(period.full_days) if period.full_days else Decimal(1)
    result: list[Proration] = []
    parts = segments(terms, period)
    opening = terms_at(terms, period.start)
    codes = list(basis)
    for part in parts:
        for code in advance_fees(fee_terms(terms, period, part.index)):
            if code not in codes:
                codes.append(code)
    for code in codes:
        billed = basis.get(code)
        billed_fee = billed.unit_amount if billed is not None else None
        covered = _covered(billed, period) if billed is not None else period.start
        for part in parts:
            index = fee_terms(terms, period, part.index)
            if index == opening and billed is not None and billed.plan_code in (None, _code(terms[index])):
                # the terms the opening billed under: what it billed stands, and days it did not
                # cover (an end moved later) are charged at the fee it billed
                if billed_fee and covered < part.end:
                    begin = max(part.start, covered)
                    added = Decimal(_whole_days(begin, part.end))
                    result.append(Proration(code, f"Added time from {_day(begin)} (prorated {added}/{full} days)",
                                            begin, part.end, billed_fee * added / full,
                                            settled_at(terms, part, period)))
                continue
            fee, name = advance_fees(index).get(code, (None, None))
            if fee == billed_fee:
                continue
            when = settled_at(terms, part, period)
            days = Decimal(part.days)
            if billed is not None and billed_fee and part.start < covered:
                until = min(part.end, covered)
                unused = Decimal(_whole_days(part.start, until))
                result.append(Proration(code, f"Unused time from {_day(part.start)} (prorated {unused}/{full} days)",
                                        part.start, until, -billed_fee * unused / full, when))
            if fee:
                result.append(Proration(code, f"Remaining time on {name} from {_day(part.start)} "
                                              f"(prorated {days}/{full} days)", part.start, part.end,
                                        fee * days / full, when))
        # the terms in force at the end, when the opening billed the fee at zero under others (a free trial)
        at_end = fee_terms(terms, period, parts[-1].index) if parts else opening
        free_then = billed is not None and not billed_fee and at_end != opening
        if (billed is None or free_then) and not end_prorated and period.end < period.full_end:
            # an end without proration keeps the period's fee up to its full end; when the opening
            # billed none (the period did not exist then: the end was moved later), the days after
            # the end are charged at the fee of the terms in force at the period's start; when it
            # billed it at zero under terms that ended before the end (a trial), at the fee in force
            # at the end
            fee, name = advance_fees(at_end if free_then else opening).get(code, (None, None))
            if fee:
                tail = Decimal(_whole_days(period.end, period.full_end))
                result.append(Proration(code, f"Rest of the period on {name} after the end on {_day(period.end)} "
                                              f"(prorated {tail}/{full} days)", period.end, period.full_end,
                                        fee * tail / full, None))
        if billed is not None and billed_fee and end_prorated and covered > period.end:
            unused = Decimal(_whole_days(period.end, covered))
            result.append(Proration(code, f"Unused time after the end on {_day(period.end)} "
                                          f"(prorated {unused}/{full} days)", period.end, covered,
                                    -billed_fee * unused / full, None))
    return result


def _covered(billed: Basis, period: Period) -> datetime:
    """Up to when the fee billed in advance paid for the period: a whole fee pays for the full period
    (even when the service was cut short by an end without proration), a prorated one up to its
    service end."""
    if billed.amount == billed.unit_amount:
        return max(period.full_end, billed.service_end)
    return billed.service_end


def _code(item: Terms) -> str | None:
    return getattr(item.plan, "code", None)


def _day(moment: datetime) -> str:
    return moment.date().isoformat()

