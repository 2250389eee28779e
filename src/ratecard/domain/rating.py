"""(subscription plan, period, usage) -> invoice lines and totals. The one way to price.

Invoices are cut at period boundaries: the invoice at boundary t holds the advance flat
fees of the period starting at t and the arrears lines (arrears flat fees, usage, its caps, the
minimum true-up) of the period ending at t. A period's amount: charge model → charge cap → plan
cap → minimum → discounts → tax (domain/caps.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from .aggregation import Usage
from .caps import PlanCap, cap_lines
from .dimensions import MAX_GROUPS, Group, Split, group_text
from .discounts import Discount, discount_amounts, discount_lines, discount_takes
from .invoice import Line, Totals, totals
from .money import EXACT_PRECISION, quantize
from .periods import Period, Schedule
from .pricing import Charge, price_usage
from .tax import invoice_tax
from .terms import INVOICE_NOW, Basis, Segment, Terms, prorations, segments, terms_at
from .tiers import tier_parts


class RatingError(ValueError):
    """A line whose amount cannot be computed exactly: the quantity times the price leaves the
    range exact pricing works in (domain.money.EXACT_PRECISION digits). Names the charge."""

    def __init__(self, charge: str, quantity: Decimal | None) -> None:
        self.charge = charge
        self.quantity = quantity
        shown = f"quantity {quantity:.6E} " if quantity is not None else ""
        super().__init__(f"charge {charge!r}: {shown}gives an amount beyond the {EXACT_PRECISION} digits pricing "
                         "computes exactly; check the charge's price and the meter's events")


class TooManyGroups(RatingError):
    """A charge priced per dimension whose events make more groups in one period than a charge may
    have lines (domain.dimensions.MAX_GROUPS): a property holding ids that differ per event, say."""

    def __init__(self, charge: str, count: int, group_by: Sequence[str]) -> None:
        self.charge = charge
        self.quantity = None
        ValueError.__init__(self, f"charge {charge!r}: the events make {count} (filter, group) lines in one period, "
                                  f"more than the {MAX_GROUPS} a charge may have; check the values of "
                                  f"{', '.join(group_by)} in the meter's events")


class _pricing:  # noqa: N801 - used as `with _pricing(code):`, like the generator it replaced
    """Decimal arithmetic of one line: its failure becomes a RatingError naming the line.
    (A class: an invoice run enters one per line, and a generator-based context manager costs
    several times more per entry.)"""

    __slots__ = ("charge", "quantity")

    def __init__(self, charge: str, quantity: Decimal | None = None) -> None:
        self.charge = charge
        self.quantity = quantity

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, traceback: object) -> bool:
        if kind is not None and issubclass(kind, ArithmeticError):
            # decimal's InvalidOperation/Overflow: never a library message to the user
            raise RatingError(self.charge, self.quantity) from None
        return False


@dataclass(frozen=True)
class Plan:
    code: str
    currency: str
    interval: str
    charges: tuple[Charge, ...]
    minimum: Decimal | None = None
    name: str | None = None
    maximum: PlanCap | None = None  # a cap on the period's usage (charges' own caps: Charge.maximum)
    # a subscription's discounts and coupons, each with the end of its periods resolved
    discounts: tuple[Discount, ...] = ()
    # the subscription's quantity (seats): every flat fee is billed this many times
    quantity: Decimal = Decimal(1)

    # an invoice for the period so far when the usage not yet invoiced reaches it (domain.early)
    threshold: Decimal | None = None


@dataclass(frozen=True)
class OneOff:
    """A charge billed once, on the subscription's first invoice cut at or after `at` (a set-up
    fee, professional services): `quantity` × `amount`, never discounted, taxed like any line."""

    code: str
    amount: Decimal
    at: datetime  # local, aware
    quantity: Decimal = Decimal(1)
    description: str | None = None


@dataclass(frozen=True)
class Cut:
    """One invoice's place in time: the boundary, the period it closes and the one it opens.

    A cut at a change of terms made with `invoice_now` closes and opens nothing: it `settles`
    the period the change falls in (the proration of its fees billed in advance).

    A cut inside a period at a local midnight may bill the period's usage so far (`early`, its
    lines computed by domain.early from the usage up to the cut); the cut closing that period
    then bills its usage less what those cuts billed (`billed_early`)."""

    boundary: datetime
    closing: Period | None
    opening: Period | None
    settles: Period | None = None
    early: tuple[Line, ...] = ()
    early_period: Period | None = None
    # (segment number in the closing period, charge code, amount billed by the period's early cuts)
    billed_early: tuple[tuple[int, str, Decimal], ...] = ()


@dataclass(frozen=True)
class Pricing:
    """How amounts are rounded and taxed for one invoice."""

    currency: str
    rounding: str = "half_up"
    tax_rate: Decimal = Decimal(0)
    tax_rounding: str = "invoice"


def invoice_cuts(schedule: Schedule, until: datetime, terms: Sequence[Terms] = ()) -> list[Cut]:
    """Every cut at a boundary <= until: the subscription's start, then each period's end, and
    the instant of every change of terms made with invoice_now inside a period."""
    periods = schedule.periods_until(until)
    cuts: list[Cut] = []
    if not periods:
        return cuts
    cuts.append(Cut(periods[0].start, None, periods[0]))
    for index, period in enumerate(periods):
        for item in terms[1:]:
            if item.proration == INVOICE_NOW and period.start < item.start < period.end and item.start <= until:
                cuts.append(Cut(item.start, None, None, settles=period))
        if period.end > until:
            break
        following = periods[index + 1] if index + 1 < len(periods) else None
        if following is not None and following.start != period.end:
            following = None
        cuts.append(Cut(period.end, period, following))
    return cuts


def as_terms(plan: Plan | Sequence[Terms], cut: Cut) -> Sequence[Terms]:
    """One plan for the whole subscription is terms that never change."""
    if isinstance(plan, Plan):
        first = cut.opening or cut.closing or cut.settles
        start = first.start if first is not None else cut.boundary
        return (Terms(start, plan),)
    return plan


def rate_cut(plan: Plan | Sequence[Terms], cut: Cut, usage: Mapping[str, Usage] | Sequence[Mapping[str, Usage]],
             pricing: Pricing, *, basis: Mapping[str, Basis] | None = None, end_prorated: bool = True,
             one_offs: Sequence[OneOff] = (), cache: dict | None = None) -> list[Line]:
    """The lines of the invoice at one cut.

    `usage`: meter code -> usage, one mapping per segment of the closing period (a single mapping
    when its terms do not change inside it). `basis`: what the closing period's opening invoice
    billed in advance, when it is final (otherwise it is what the opening computes now).
    `end_prorated`: a subscription ending inside a period credits the unused part of its fees.
    `one_offs`: the subscription's one-off charges; those due at this cut are billed last.
    `cache`: a dict the caller keeps for many cuts priced from the same plan objects (an invoice
    run): the lines that do not depend on usage (fees, their prorations, the opening's discounts)
    are computed once per (terms, period, pricing) and shared; the lines are the same."""
    terms = as_terms(plan, cut)
    shared = _Shared(cache, terms, pricing, end_prorated)
    lines: list[Line] = []
    if cut.opening is not None:
        lines += shared.get("opening", cut.opening, lambda: _opening(terms, cut.opening, pricing, end_prorated))
    if cut.settles is not None:
        settled = basis if basis is not None else basis_of(terms, cut.settles, pricing, end_prorated)
        settling = proration_lines(terms, cut.settles, settled, pricing, end_prorated)
        now = [line for line, when in settling if when == cut.boundary]
        # the period's discount takes from what this cut bills too (the rest of a period after a trial)
        lines += now + _settled_discounts(terms, cut.settles, now, pricing, _advance_lines(cut.settles, settled),
                                          settling, cut.boundary)
    lines += cut.early  # the usage so far, billed inside its period (domain.early)
    if cut.closing is not None:
        period = cut.closing
        parts = segments(terms, period)
        measured = _per_segment(usage, len(parts))
        closing: list[Line] = []
        early: list[Line] = []  # what the period's early cuts billed, per segment and charge
        for number, (part, part_usage) in enumerate(zip(parts, measured, strict=True)):
            piece = Period(part.start, part.end, period.full_start, period.full_end)
            before = {code: amount for at, code, amount in cut.billed_early if at == number}
            plan_in_force = terms[part.index].plan
            closing += shared.get("arrears", (piece, part.index),
                                  lambda: flat_lines(plan_in_force, piece, "arrears", pricing))  # noqa: B023
            used = usage_lines(plan_in_force, piece, part_usage, pricing, before)
            with _pricing("maximum"):  # caps come after the charge models, before the minimum
                closing += used + cap_lines(plan_in_force.charges, plan_in_force.maximum, piece, used,
                                            pricing.currency, pricing.rounding)
            early += [Line(code, "", part.start, part.end, Decimal(1), amount, amount, "usage")
                      for code, amount in before.items()]
        if basis is not None:
            billed, settling = basis, proration_lines(terms, period, basis, pricing, end_prorated)
        else:
            billed, settling = shared.get("settling", period, lambda: _settling(terms, period, pricing, end_prorated))
        closing += [line for line, when in settling if when is None]
        spent = (sum((item.amount for item in billed.values()), Decimal(0))
                 + sum((line.amount for line, _ in settling), Decimal(0))
                 + sum((line.amount for line in (*closing, *early) if line.kind in ("arrears", "usage", "maximum")),
                       Decimal(0)))
        minimum = minimum_line(terms, parts, period, spent, pricing)
        if minimum is not None:
            closing.append(minimum)
        advance = _advance_lines(period, billed)
        lines += closing + _settled_discounts(terms, period, closing, pricing, advance, settling, None, early)
    return lines + one_off_lines(one_offs, terms, cut, pricing)


def _opening(terms: Sequence[Terms], period: Period, pricing: Pricing, end_prorated: bool) -> tuple[Line, ...]:
    """The lines a period's opening bills: its fees in advance, then their discounts."""
    opened = opening_lines(terms, period, pricing, end_prorated)
    return (*opened, *_discounts(terms, period, opened, pricing))


def _settling(terms: Sequence[Terms], period: Period, pricing: Pricing, end_prorated: bool
              ) -> tuple[dict[str, Basis], list[tuple[Line, datetime | None]]]:
    """What the period's opening bills in advance (from today's terms) and its prorations."""
    billed = basis_of(terms, period, pricing, end_prorated)
    return billed, proration_lines(terms, period, billed, pricing, end_prorated)


class _Same:
    """A key part equal only to the same object (a plan of the catalog being billed): hashing the
    plan itself walks all its charges and tiers, every time."""

    __slots__ = ("item",)

    def __init__(self, item: object) -> None:
        self.item = item

    def __hash__(self) -> int:
        return id(self.item)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.item is self.item


class _Shared:
    """rate_cut's lines that depend only on the terms, a period and the pricing, computed once per
    cache. The key holds the terms' plans by identity (it keeps them alive, so an id is never reused
    for another plan while the cache lives), their starts and prorations, the pricing and the period;
    the values are never changed by their users (rate_cut copies them into its own lists)."""

    __slots__ = ("cache", "terms")

    def __init__(self, cache: dict | None, terms: Sequence[Terms], pricing: Pricing, end_prorated: bool) -> None:
        self.cache = cache
        self.terms = None if cache is None else (
            tuple((item.start, _Same(item.plan), item.proration) for item in terms), pricing, end_prorated)

    def get(self, what: str, period: object, compute: Callable[[], Any]) -> Any:
        if self.cache is None:
            return compute()
        key = (what, period, self.terms)
        found = self.cache.get(key)
        if found is None:
            if len(self.cache) >= SHARED_LIMIT:  # plans of their own (overrides) share nothing: bounded
                self.cache.clear()
            found = self.cache[key] = compute()
        return found


SHARED_LIMIT = 20_000


def previous_boundary(terms: Sequence[Terms], cut: Cut) -> datetime | None:
    """The boundary of the cut before this one on the subscription's calendar (None: the first cut):
    the start of the period it closes or settles, or a later change invoiced at once inside it."""
    period = cut.closing or cut.settles
    if period is None:
        return None
    earlier = [item.start for item in terms[1:]
               if item.proration == INVOICE_NOW and period.start < item.start < cut.boundary]
    return max([period.start, *earlier])


def one_off_lines(one_offs: Sequence[OneOff], terms: Sequence[Terms], cut: Cut, pricing: Pricing) -> list[Line]:
    """The one-off charges due at a cut: `at` after the previous cut's boundary and at or before
    this one's (the first cut takes every one due at or before it)."""
    if not one_offs or (cut.early_period is not None and cut.closing is None and cut.opening is None
                        and cut.settles is None):
        return []  # a cut for the usage so far bills usage only: one-offs wait for the next regular cut
    after = previous_boundary(terms, cut)
    lines = []
    for item in one_offs:
        if item.at > cut.boundary or (after is not None and item.at <= after):
            continue
        with _pricing(item.code, item.quantity):
            amount = quantize(item.amount * item.quantity, pricing.currency, pricing.rounding)
        lines.append(Line(code=item.code, description=item.description or item.code, service_start=item.at,
                          service_end=item.at, quantity=item.quantity, unit_amount=item.amount, amount=amount,
                          kind="one_off"))
    return lines


def _discounts(terms: Sequence[Terms], period: Period, lines: Sequence[Line], pricing: Pricing,
               earlier: Sequence[Line] = (), undiscounted: Sequence[Line] = ()) -> list[Line]:
    """The discounts of the terms in force at the period's start, after the minimum, before tax."""
    discounts = terms[terms_at(terms, period.start)].plan.discounts
    with _pricing("discount"):
        return discount_lines(discounts, period.start, period.end, lines, pricing.currency, pricing.rounding,
                              earlier, undiscounted)


def _advance_lines(period: Period, billed: Mapping[str, Basis]) -> list[Line]:
    """The fees in advance a period's opening invoice billed, as lines (what its discount took from)."""
    return [Line(code, "", period.start, item.service_end, Decimal(1), item.unit_amount, item.amount, "advance")
            for code, item in billed.items()]


def _settled_discounts(terms: Sequence[Terms], period: Period, lines: Sequence[Line], pricing: Pricing,
                       advance: Sequence[Line], settling: Sequence[tuple[Line, datetime | None]],
                       until: datetime | None, undiscounted: Sequence[Line] = ()) -> list[Line]:
    """The discounts on one invoice of a period holding `lines` of it: the period's discount is
    taken once over all its invoices, the opening's fees in advance (`advance`), the invoices cut at
    once inside it (`settling`: those before `until` are earlier invoices; every one for the
    closing invoice, until None) and the closing one."""
    moments = sorted({when for _, when in settling if when is not None and (until is None or when < until)})
    if not moments:
        return _discounts(terms, period, lines, pricing, advance, undiscounted)
    discounts = terms[terms_at(terms, period.start)].plan.discounts
    if not discounts:
        return []
    with _pricing("discount"):
        taken = discount_amounts(discounts, advance, pricing.currency, pricing.rounding)  # the opening's
        earlier = list(advance)
        for moment in moments:  # each invoice cut at once took what the period's discount had left
            part = [line for line, when in settling if when == moment]
            takes = discount_takes(discounts, part, pricing.currency, pricing.rounding, earlier, taken=taken)
            taken = [before + take for before, take in zip(taken, takes, strict=True)]
            earlier += part
        return discount_lines(discounts, period.start, period.end, lines, pricing.currency, pricing.rounding,
                              earlier, undiscounted, taken)


def _per_segment(usage: Mapping[str, Usage] | Sequence[Mapping[str, Usage]], count: int) -> Sequence[Mapping[str, Usage]]:
    if isinstance(usage, Mapping):
        if count != 1:
            raise ValueError("a period whose terms change needs its usage per segment")
        return [usage]
    if len(usage) != count:
        raise ValueError(f"usage for {len(usage)} segments, the period has {count}")
    return usage


def opening_lines(terms: Sequence[Terms], period: Period, pricing: Pricing, end_prorated: bool) -> list[Line]:
    """The fees billed in advance for a period, under the terms in force at its start. Ending
    without proration bills the period's full fee (the service still ends at the end)."""
    charged = period
    if not end_prorated and period.end < period.full_end:
        charged = Period(period.start, period.full_end, period.full_start, period.full_end)
    return flat_lines(terms[terms_at(terms, period.start)].plan, period, "advance", pricing, charged)


def basis_of(terms: Sequence[Terms], period: Period, pricing: Pricing, end_prorated: bool) -> dict[str, Basis]:
    """What the period's opening bills in advance, computed from today's terms."""
    plan = terms[terms_at(terms, period.start)].plan
    return {line.code: Basis(line.unit_amount * line.quantity, line.amount, line.service_end, plan.code)
            for line in opening_lines(terms, period, pricing, end_prorated)}


def proration_lines(terms: Sequence[Terms], period: Period, basis: Mapping[str, Basis], pricing: Pricing,
                    end_prorated: bool) -> list[tuple[Line, datetime | None]]:
    """The credits and charges settling a period's fees in advance against its terms, each with
    the instant of the invoice_now cut that carries it (None: the period's closing cut)."""

    def advance_fees(index: int) -> dict[str, tuple[Decimal, str]]:
        plan = terms[index].plan
        name = plan.name or plan.code
        if plan.quantity != 1:
            name = f"{plan.quantity} × {name}"
        return {charge.code: (charge.amount * plan.quantity, name) for charge in plan.charges
                if not charge.is_usage and charge.timing == "advance"}

    result = []
    for item in prorations(terms, period, basis, advance_fees, end_prorated):
        with _pricing(item.code):
            amount = quantize(item.exact, pricing.currency, pricing.rounding)
        result.append((Line(code=item.code, description=item.description, service_start=item.start,
                            service_end=item.end, quantity=Decimal(1), unit_amount=amount, amount=amount,
                            kind="proration"), item.settled_at))
    return result


def flat_lines(plan: Plan, period: Period, timing: str, pricing: Pricing, charged: Period | None = None) -> list[Line]:
    """Flat fees of one timing for a period (`charged`: the period the amount is prorated over,
    when it differs from the service period), each `plan.quantity` times (seats)."""
    charged = charged or period
    lines = []
    for charge in plan.charges:
        if charge.is_usage or charge.timing != timing:
            continue
        with _pricing(charge.code):
            exact = charged.prorate(charge.amount * plan.quantity)
            amount = quantize(exact, pricing.currency, pricing.rounding)
        description = charge.description or charge.code
        if not charged.is_full and charged.days != charged.full_days:
            description += f" (prorated {charged.days}/{charged.full_days} days)"
        lines.append(
            Line(
                code=charge.code,
                description=description,
                service_start=period.start,
                service_end=period.end,
                quantity=plan.quantity,
                unit_amount=charge.amount,
                amount=amount,
                kind=timing,
            )
        )
    return lines


def usage_lines(
    plan: Plan, period: Period, usage: Mapping[str, Usage], pricing: Pricing,
    billed_early: Mapping[str, Decimal] | None = None,
) -> list[Line]:
    """One line per usage charge for the period's usage; a charge the period's early cuts billed
    part of (`billed_early`, by code) bills the period's price less what they billed."""
    lines = []
    for charge in plan.charges:
        if not charge.is_usage:
            continue
        if charge.is_split:
            lines += split_lines(charge, period, usage.get(charge.usage_key), pricing)
            continue
        measured = usage.get(charge.meter or "", Usage.zero())
        with _pricing(charge.code, measured.quantity):
            price = price_usage(charge, measured.quantity, measured.events, measured.values)
            amount = quantize(price.amount, pricing.currency, pricing.rounding)
            parts = tier_parts(charge, measured.quantity)
        description = charge.description or charge.code
        before = (billed_early or {}).get(charge.code)
        if before:
            # the tiers of the whole period priced it; the line bills the rest, without its tiers
            description += f" ({amount} for the period, less {before} invoiced earlier)"
            amount, parts = amount - before, ()
        lines.append(
            Line(
                code=charge.code,
                description=description,
                service_start=period.start,
                service_end=period.end,
                quantity=measured.quantity,
                unit_amount=price.unit_amount,
                amount=amount,
                kind="usage",
                tiers=parts,
            )
        )
    return lines


def split_lines(charge: Charge, period: Period, measured: Usage | None, pricing: Pricing) -> list[Line]:
    """A charge priced per dimension: a line per (filter, group) with usage, each priced on its own
    (its own tiers) at its filter's price, the default last at the charge's own. A filter (or the
    default) with no usage in the period has one line at quantity 0, without a group."""
    parts = dict(measured.parts) if isinstance(measured, Split) else {}
    if len(parts) > MAX_GROUPS:
        raise TooManyGroups(charge.code, len(parts), charge.group_by)
    base = replace(charge, filters=(), group_by=())
    choices = [(item.code, item.price, item.description or item.code) for item in charge.filters]
    choices.append((None, base, None))
    by_filter: dict[str | None, list[tuple[Group, Usage]]] = {}
    for (code, group), part in parts.items():  # in dimension_order: groups sorted within each filter
        by_filter.setdefault(code, []).append((group, part))
    lines = []
    name = charge.description or charge.code
    for code, price, label in choices:
        for group, part in by_filter.get(code) or [(None, Usage.zero())]:
            with _pricing(charge.code, part.quantity):
                priced = price_usage(price, part.quantity, part.events)
                amount = quantize(priced.amount, pricing.currency, pricing.rounding)
                tiers = tier_parts(price, part.quantity)
            grouped = group is not None and bool(charge.group_by)
            shown = ", ".join(item for item in (label, group_text(charge.group_by, group) if grouped else None)
                              if item)
            lines.append(Line(
                code=charge.code,
                description=f"{name} ({shown})" if shown else name,
                service_start=period.start,
                service_end=period.end,
                quantity=part.quantity,
                unit_amount=priced.unit_amount,
                amount=amount,
                kind="usage",
                tiers=tiers,
                filter=code,
                group=tuple(zip(charge.group_by, group, strict=True)) if grouped and group is not None else None,
            ))
    return lines


def minimum_line(terms: Sequence[Terms], parts: Sequence[Segment], period: Period, spent: Decimal,
                 pricing: Pricing) -> Line | None:
    """A true-up line when what the period was billed (its fees in advance as billed, their
    prorations, its arrears and usage after caps) adds up to less than its minimum. The minimum is prorated
    by days like a fee, per segment under the terms in force."""
    required = Decimal(0)
    shown = None
    full = Decimal(period.full_days) if period.full_days else Decimal(1)
    whole = len(parts) == 1 and (period.is_full or period.days == period.full_days)
    for part in parts:
        minimum = terms[part.index].plan.minimum
        if minimum is None or minimum <= 0:
            continue
        shown = minimum
        with _pricing("minimum"):
            required += minimum if whole else minimum * Decimal(part.days) / full
    if shown is None:
        return None
    with _pricing("minimum"):
        amount = quantize(required - spent, pricing.currency, pricing.rounding)
    if amount <= 0:
        return None
    return Line(
        code="minimum",
        description=f"Minimum spend true-up ({shown} {pricing.currency})",
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
