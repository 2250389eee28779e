"""Charge models: what a quantity costs, exactly, before any rounding.

Tier semantics (docs/billing.md): `up_to` is inclusive; a tier covers
(previous up_to, up_to]; `up_to=None` is unbounded and last. Zero usage bills zero in
every usage model.

A percentage charge with free units or per-transaction bounds is priced event by event
(`percentage_per_event`): it needs each event's value, in order, not only their sum.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, localcontext
from functools import cached_property

from .money import EXACT_PRECISION

USAGE_MODELS = ("per_unit", "graduated", "volume", "stairstep", "package", "percentage", "graduated_percentage")
CHARGE_MODELS = ("flat", *USAGE_MODELS)
TIERED_MODELS = frozenset({"graduated", "volume", "stairstep"})
ZERO = Decimal(0)


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None
    unit_amount: Decimal = ZERO
    flat_amount: Decimal = ZERO
    rate: Decimal = ZERO  # graduated_percentage, in percent of the amount inside the tier


@dataclass(frozen=True)
class Charge:
    """One priced item of a plan. Fields not used by `model` stay at their defaults."""

    code: str
    model: str
    meter: str | None = None
    timing: str = "arrears"  # flat fees: advance | arrears; usage is always arrears
    description: str | None = None
    amount: Decimal = ZERO  # flat
    unit_amount: Decimal = ZERO  # per_unit
    tiers: tuple[Tier, ...] = field(default_factory=tuple)
    package_size: Decimal = Decimal(1)
    package_amount: Decimal = ZERO
    free_units: Decimal = ZERO
    rate: Decimal = ZERO  # percentage, in percent
    fixed_amount: Decimal = ZERO  # percentage, per matching event
    # percentage, priced event by event when any is set (None and 0 mean none of the allowance)
    free_units_per_events: int | None = None  # the period's first N events are free
    free_units_per_total_aggregation: Decimal | None = None  # the period's first X of the amount is free
    per_transaction_min_amount: Decimal | None = None  # each event's fee at least this
    per_transaction_max_amount: Decimal | None = None  # each event's fee at most this
    maximum: Decimal | None = None  # a usage charge's cap per period (domain/caps.py)
    # prices per dimension (domain.dimensions): the events each filter matches are priced on their own
    # at its price, the others at this charge's own; group_by prices each distinct value tuple on its own
    filters: tuple[ChargeFilter, ...] = ()
    group_by: tuple[str, ...] = ()

    @property
    def is_usage(self) -> bool:
        return self.model != "flat"

    @property
    def per_event(self) -> bool:
        """Whether the charge is priced from each event's value: a percentage charge with free
        units or per-transaction bounds."""
        return self.model == "percentage" and bool(
            self.free_units_per_events or self.free_units_per_total_aggregation
            or self.per_transaction_min_amount is not None or self.per_transaction_max_amount is not None)

    @property
    def is_split(self) -> bool:
        """Whether its usage is measured per dimension (filters or group_by)."""
        return bool(self.filters or self.group_by)

    @cached_property
    def usage_key(self) -> str:
        """What its usage is looked up by: the meter's code, or for a charge priced per dimension a
        key naming the meter and the dimensions (charges splitting a meter alike share it)."""
        meter = self.meter or ""
        if not self.is_split:
            return meter
        shape = [[[item.code, [[key, sorted(values)] for key, values in item.match]] for item in self.filters],
                 list(self.group_by)]
        return meter + SPLIT_MARK + json.dumps(shape, separators=(",", ":"), ensure_ascii=False)


SPLIT_MARK = "\x1f"  # between the meter's code and the dimensions in a usage key (no code holds it)


@dataclass(frozen=True)
class ChargeFilter:
    """One of a charge's filters: the events whose every `match` property has one of its values (by
    text form, domain.json_values) are priced at `price` (the charge with the filter's fields laid over)."""

    code: str
    match: tuple[tuple[str, frozenset[str]], ...]  # property -> the text forms it takes, sorted by property
    price: Charge
    description: str | None = None


@dataclass(frozen=True)
class Price:
    """An exact amount and the unit price to show beside the quantity."""

    amount: Decimal
    unit_amount: Decimal


class MissingValues(ValueError):
    """A charge priced event by event was given a period's sum without its events' values."""


def price_usage(charge: Charge, quantity: Decimal, events: int = 0,
                values: Sequence[Decimal] | None = None) -> Price:
    """The exact price of a usage charge for one period's aggregated quantity.

    `values`: each event's value in the period's order (timestamp, then arrival), which a charge
    priced event by event (Charge.per_event) needs whenever the period has events."""
    # exact: the default 28-digit context would round long products before the one rounding
    with localcontext() as ctx:
        ctx.prec = EXACT_PRECISION
        return _price_usage(charge, quantity, events, values)


def _price_usage(charge: Charge, quantity: Decimal, events: int, values: Sequence[Decimal] | None) -> Price:
    model = charge.model
    if model == "per_unit":
        return Price(quantity * charge.unit_amount, charge.unit_amount)
    if model == "percentage":
        if quantity == 0 and events == 0:
            return Price(ZERO, ZERO)
        if charge.per_event:
            if values is None:
                raise MissingValues(f"charge {charge.code!r} is priced event by event and needs each event's value")
            amount = percentage_per_event(charge, values)
        else:
            amount = quantity * charge.rate / 100 + charge.fixed_amount * events
        return Price(amount, _average(amount, quantity))
    if quantity <= 0:
        # zero usage bills zero, including volume/stairstep tiers that carry a flat amount
        return Price(ZERO, _zero_unit(charge))
    if model == "graduated":
        amount = graduated(charge.tiers, quantity)
        return Price(amount, _average(amount, quantity))
    if model == "graduated_percentage":
        amount = graduated_percentage(charge.tiers, quantity)
        return Price(amount, _average(amount, quantity))
    if model == "volume":
        tier = tier_for(charge.tiers, quantity)
        return Price(quantity * tier.unit_amount + tier.flat_amount, tier.unit_amount)
    if model == "stairstep":
        amount = tier_for(charge.tiers, quantity).flat_amount
        return Price(amount, _average(amount, quantity))
    if model == "package":
        amount = package(charge, quantity)
        return Price(amount, _average(amount, quantity))
    raise ValueError(f"charge {charge.code!r}: {model!r} is not a usage model")


def graduated(tiers: Sequence[Tier], quantity: Decimal) -> Decimal:
    """Each tier's units at its unit_amount, plus the flat_amount of every tier holding units."""
    total = ZERO
    lower = ZERO
    for tier in tiers:
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        total += (upper - lower) * tier.unit_amount + tier.flat_amount
        if tier.up_to is None:
            break
        lower = tier.up_to
    return total


def graduated_percentage(tiers: Sequence[Tier], quantity: Decimal) -> Decimal:
    """Each tier's share of the amount at its rate (percent), plus the flat_amount of every tier
    holding any of it: `graduated` with rate / 100 as each tier's unit amount."""
    return graduated([Tier(tier.up_to, tier.rate / 100, tier.flat_amount) for tier in tiers], quantity)


def percentage_per_event(charge: Charge, values: Sequence[Decimal]) -> Decimal:
    """A percentage charge priced event by event, in the period's order (docs/billing.md).

    Free units first: while they last, an event of value 0 or more is free (no rate, no fixed
    fee) and uses one of `free_units_per_events` and its value of `free_units_per_total_aggregation`.
    They end at whichever allowance runs out first: after the N-th free event, or once the free
    amount is used up exactly, the next events are billed in full; the event whose value passes
    what is left of the free amount is billed on the part above it (plus its fixed fee). An event
    of negative value (a refund) is never free and uses no allowance. Every billed event's fee,
    value × rate / 100 + fixed_amount, is then held inside [per_transaction_min_amount,
    per_transaction_max_amount]; a free event stays at zero."""
    rate = charge.rate / 100
    free_events = charge.free_units_per_events or None
    free_amount = charge.free_units_per_total_aggregation or None
    lowest, highest = charge.per_transaction_min_amount, charge.per_transaction_max_amount
    freeing = free_events is not None or free_amount is not None
    used = 0
    total = ZERO
    for value in values:
        billed = value
        if freeing and value >= 0:
            if free_amount is not None and value > free_amount:
                billed, freeing = value - free_amount, False
            else:
                used += 1
                if free_amount is not None:
                    free_amount -= value
                # either allowance used up ends the free units
                freeing = not ((free_events is not None and used >= free_events) or free_amount == 0)
                continue
        fee = billed * rate + charge.fixed_amount
        if lowest is not None and fee < lowest:
            fee = lowest
        if highest is not None and fee > highest:
            fee = highest
        total += fee
    return total


def tier_for(tiers: Sequence[Tier], quantity: Decimal) -> Tier:
    """The tier a total falls in: the first whose inclusive upper bound holds it."""
    for tier in tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            return tier
    # validated catalogs end with an unbounded tier; past the last bound, the last tier applies
    return tiers[-1]


def package(charge: Charge, quantity: Decimal) -> Decimal:
    billable = max(quantity - charge.free_units, ZERO)
    packages = (billable / charge.package_size).to_integral_value(rounding=ROUND_CEILING)
    return packages * charge.package_amount


def _average(amount: Decimal, quantity: Decimal) -> Decimal:
    """Unit price shown for models without a single one: amount / quantity, 12 places at most."""
    if quantity == 0:
        return ZERO
    average = (amount / quantity).quantize(Decimal("1e-12"))
    return average.normalize() if average != 0 else ZERO


def _zero_unit(charge: Charge) -> Decimal:
    if charge.model == "volume" and charge.tiers:
        return charge.tiers[0].unit_amount
    return ZERO
