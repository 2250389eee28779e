"""Usage billed before its period ends: threshold invoices and usage charges billed in advance.

At each local midnight inside a period, the usage of the period so far is priced charge by charge
(each line computed exactly, rounded once, as at the period's end: tiers never reset). What a
charge has not yet been invoiced for is its price so far less what the period's earlier cuts
billed for it. A cut is made at that midnight when

- threshold: the amounts not yet invoiced, over every usage charge, add up to the threshold or
  more (the subscription's `invoice_threshold`, else the plan's): every charge with an amount not
  yet invoiced is billed, lines of kind `threshold`. So after a threshold invoice, the next one
  comes when the usage since reaches the threshold again;
- otherwise, advance: a usage charge with `timing: advance` has an amount not yet invoiced above
  zero: each such charge is billed, lines of kind `usage_advance`.

The invoice closing the period bills each charge's price for the whole period less what the
period's early cuts billed for it, so the period's invoices add up to the price of its total usage.

`anchors`: instants of the period's early invoices that are final. They stand whatever the usage
says today (a late event moves no final invoice): no cut is made before the last of them other
than at them, and each of them bills what is not yet invoiced at its instant (a late event before
it then shows as a difference the invoice run corrects), at the prices it was finalized with
(`anchor_terms`: like any final invoice, a later price edit does not reach back into it; the
closing invoice then bills the period at today's prices less what was billed). `skipped`:
instants of voided early invoices, where no cut is made again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from decimal import Decimal

from .aggregation import Usage
from .instants import to_micros
from .invoice import Line
from .money import quantize
from .periods import Period
from .pricing import Charge, price_usage
from .rating import Cut, Plan, Pricing, _pricing
from .terms import Segment, Terms, segments, terms_at

THRESHOLD = "threshold"
USAGE_ADVANCE = "usage_advance"
EARLY_KINDS = frozenset({THRESHOLD, USAGE_ADVANCE})


@dataclass(frozen=True)
class EarlyPlan:
    """A period's early cuts (in time order) and, per (segment number, charge code), what they
    billed in all (only the charges they billed something for)."""

    cuts: tuple[Cut, ...]
    billed: tuple[tuple[int, str, Decimal], ...]


# aggregations whose usage over [a, c) follows from their usage over [a, b) and over [b, c)
JOINED = frozenset({"count", "sum", "max", "min"})


def join(aggregation: str, before: Usage, after: Usage) -> Usage:
    """The usage of two consecutive windows as one (an aggregation in JOINED). A window without
    events has no maximum or minimum: the other window's stands."""
    if aggregation not in JOINED:
        raise ValueError(f"{aggregation} usage is not joined from parts")
    if after.events == 0 and aggregation in ("max", "min"):
        return before
    if before.events == 0 and aggregation in ("max", "min"):
        return after
    events = before.events + after.events
    if aggregation == "max":
        return Usage(max(before.quantity, after.quantity), events)
    if aggregation == "min":
        return Usage(min(before.quantity, after.quantity), events)
    return Usage(before.quantity + after.quantity, events)


def bills_early(plans: Sequence[Plan], threshold: Decimal | None = None) -> bool:
    """Whether a subscription on these plans bills usage inside its periods."""
    return threshold is not None or any(
        plan.threshold is not None or any(charge.is_usage and charge.timing == "advance" for charge in plan.charges)
        for plan in plans)


def early_instants(period: Period, until: datetime) -> list[datetime]:
    """The local midnights strictly inside the period, up to `until` (inclusive)."""
    zone = period.start.tzinfo
    day = period.start.date() + timedelta(days=1)
    result = []
    while True:
        moment = datetime.combine(day, time(0), tzinfo=zone)
        if moment >= period.end or moment > until:
            return result
        if moment > period.start:
            result.append(moment)
        day += timedelta(days=1)


def early_windows(terms: Sequence[Terms], period: Period, moment: datetime) -> list[tuple[int, Segment, datetime]]:
    """The usage windows priced at `moment`: (segment number, segment, end) for each segment of the
    period that started before it, clipped to it."""
    return [(number, part, min(part.end, moment)) for number, part in enumerate(segments(terms, period))
            if part.start < moment]


@dataclass(frozen=True)
class _Owed:
    number: int
    part: Segment
    end: datetime
    charge: Charge
    usage: Usage
    unit_amount: Decimal
    so_far: Decimal  # the price of the usage so far, rounded
    before: Decimal  # billed by the period's earlier cuts

    @property
    def due(self) -> Decimal:
        return self.so_far - self.before


def plan_early(terms: Sequence[Terms], period: Period, instants: Sequence[datetime],
               snapshots: Sequence[Mapping[int, Mapping[str, Usage]]], pricing: Pricing, *,
               threshold: Decimal | None = None, anchors: Set[datetime] = frozenset(),
               skipped: Set[datetime] = frozenset(),
               anchor_terms: Mapping[datetime, Sequence[Terms]] | None = None) -> EarlyPlan:
    """The early cuts of one period. `snapshots[i]`: the usage from the start of each segment (by
    number, see early_windows) up to `instants[i]`. `threshold`: the subscription's, which wins
    over the plans'."""
    billed: dict[tuple[int, str], Decimal] = {}
    inside = [moment for moment in anchors if period.start < moment < period.end]
    last_anchor = max(inside) if inside else None
    cuts = []
    for moment, snapshot in zip(instants, snapshots, strict=True):
        if moment in skipped or (last_anchor is not None and moment < last_anchor and moment not in anchors):
            continue
        priced = (anchor_terms or {}).get(moment)
        if priced is None or len(priced) != len(terms):
            priced = terms  # the terms of its catalog version, when they line up with today's
        owed = _owed(terms, priced, period, moment, snapshot, billed, pricing)
        limit = threshold if threshold is not None else \
            terms[terms_at(terms, moment - timedelta(microseconds=1))].plan.threshold  # type: ignore[attr-defined]
        kind = THRESHOLD
        if limit is not None and sum((item.due for item in owed), Decimal(0)) >= limit:
            picked = [item for item in owed if item.due != 0]
        else:
            picked = [item for item in owed if item.charge.timing == "advance" and item.due > 0]
            kind = USAGE_ADVANCE
            if not picked and moment in anchors:
                picked, kind = [item for item in owed if item.due != 0], THRESHOLD
        if not picked:
            continue
        for item in picked:
            billed[(item.number, item.charge.code)] = item.so_far
        cuts.append(Cut(moment, None, None, early=tuple(_line(item, kind) for item in picked),
                        early_period=period))
    return EarlyPlan(tuple(cuts), tuple((number, code, amount) for (number, code), amount in sorted(billed.items())
                                        if amount != 0))


def _owed(terms: Sequence[Terms], priced: Sequence[Terms], period: Period, moment: datetime,
          snapshot: Mapping[int, Mapping[str, Usage]], billed: Mapping[tuple[int, str], Decimal],
          pricing: Pricing) -> list[_Owed]:
    """Each usage charge's price so far and what was billed for it, under `priced`'s plans."""
    result = []
    for number, part, end in early_windows(terms, period, moment):
        plan = priced[part.index].plan
        usage = snapshot.get(number, {})
        for charge in plan.charges:  # type: ignore[attr-defined]
            if not charge.is_usage:
                continue
            measured = usage.get(charge.meter or "", Usage.zero())
            with _pricing(charge.code, measured.quantity):
                price = price_usage(charge, measured.quantity, measured.events)
                amount = quantize(price.amount, pricing.currency, pricing.rounding)
            result.append(_Owed(number, part, end, charge, measured, price.unit_amount, amount,
                                billed.get((number, charge.code), Decimal(0))))
    return result


def _line(item: _Owed, kind: str) -> Line:
    name = item.charge.description or item.charge.code
    label = "usage so far" if kind == THRESHOLD else "usage billed in advance"
    description = f"{name} ({label}: {item.so_far}"
    description += f", less {item.before} invoiced earlier)" if item.before else ")"
    return Line(code=item.charge.code, description=description, service_start=item.part.start,
                service_end=item.end, quantity=item.usage.quantity, unit_amount=item.unit_amount,
                amount=item.due, kind=kind)


def with_early(cuts: Sequence[Cut], plans: Mapping[int, EarlyPlan]) -> list[Cut]:
    """A subscription's calendar cuts with its early cuts (`plans` by period start, µs): each
    closing cut of a planned period deducts what the period's early cuts billed, and an early cut
    at the instant of a calendar cut (a change invoiced at once) is merged into it."""
    if not plans:
        return list(cuts)
    extra = {to_micros(cut.boundary): cut for plan in plans.values() for cut in plan.cuts}
    result = []
    for cut in cuts:
        if cut.closing is not None:
            plan = plans.get(to_micros(cut.closing.start))
            if plan is not None and plan.billed:
                cut = replace(cut, billed_early=plan.billed)
        early = extra.pop(to_micros(cut.boundary), None)
        if early is not None:
            cut = replace(cut, early=early.early, early_period=early.early_period)
        result.append(cut)
    result += extra.values()
    result.sort(key=lambda cut: cut.boundary)
    return result
