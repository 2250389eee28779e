"""The parts of a tiered price: what each tier of a graduated, volume or stairstep charge adds to
a line, so an invoice can show how its amount was reached (docs/billing.md, "Tiers on the invoice").

A part's amount is exact, like `price_usage`'s: the parts of a line add up to its exact price, and
the line's amount is that sum rounded once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, localcontext

from .money import EXACT_PRECISION
from .pricing import ZERO, Charge, Tier, tier_for

_FIELDS = ("tier", "above", "last_unit", "quantity", "unit_amount", "flat_amount", "amount")


@dataclass(frozen=True)
class TierPart:
    """One tier's share of a line: units above `above` up to `last_unit` (inclusive), `quantity` of
    them priced at `unit_amount`, plus the tier's `flat_amount`; `tier` counts from 1."""

    tier: int
    above: Decimal
    last_unit: Decimal
    quantity: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    amount: Decimal  # exact: quantity × unit_amount + flat_amount

    @property
    def first_unit(self) -> Decimal:
        """The first unit the part holds: 1,001 above 1,000 when units are whole; otherwise the
        bound itself (the part holds what is above it)."""
        whole = self.above == self.above.to_integral_value() and self.last_unit == self.last_unit.to_integral_value()
        return self.above + 1 if whole else self.above


def tier_parts(charge: Charge, quantity: Decimal) -> tuple[TierPart, ...]:
    """The parts of a tiered charge's price for a quantity: one per tier holding units for
    `graduated` and `graduated_percentage` (a tier's rate as its unit amount: 1% is 0.01); the one
    tier the total falls in for `volume` (every unit at its price, plus its flat amount) and
    `stairstep` (its flat amount). No parts for other models or zero usage."""
    if charge.model not in ("graduated", "volume", "stairstep", "graduated_percentage") or quantity <= 0 \
            or not charge.tiers:
        return ()
    with localcontext() as context:
        context.prec = EXACT_PRECISION  # the same exact arithmetic as price_usage
        if charge.model == "graduated":
            return _graduated(charge.tiers, quantity)
        if charge.model == "graduated_percentage":
            # a tier's rate is its price per unit of the amount: 1% is 0.01
            return _graduated(tuple(Tier(t.up_to, t.rate / 100, t.flat_amount) for t in charge.tiers), quantity)
        index, tier = _reached(charge.tiers, quantity)
        above = charge.tiers[index - 2].up_to or ZERO if index > 1 else ZERO
        unit = tier.unit_amount if charge.model == "volume" else ZERO
        return (TierPart(index, above, quantity, quantity, unit, tier.flat_amount, quantity * unit + tier.flat_amount),)


def _graduated(tiers: tuple[Tier, ...], quantity: Decimal) -> tuple[TierPart, ...]:
    parts = []
    lower = ZERO
    for index, tier in enumerate(tiers, start=1):
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        units = upper - lower
        parts.append(TierPart(index, lower, upper, units, tier.unit_amount, tier.flat_amount,
                              units * tier.unit_amount + tier.flat_amount))
        if tier.up_to is None:
            break
        lower = tier.up_to
    return tuple(parts)


def _reached(tiers: tuple[Tier, ...], quantity: Decimal) -> tuple[int, Tier]:
    tier = tier_for(tiers, quantity)
    return tiers.index(tier) + 1, tier


def parts_json(parts: tuple[TierPart, ...]) -> str | None:
    """The parts as stored with an invoice line: JSON, numbers as plain decimal text; None without parts."""
    if not parts:
        return None
    return json.dumps([{name: (f"{value:f}" if isinstance(value, Decimal) else value)
                        for name, value in ((name, getattr(part, name)) for name in _FIELDS)} for part in parts],
                      separators=(",", ":"))


def parts_from_json(text: str | None) -> tuple[TierPart, ...]:
    """The parts of a stored line (none for a line stored without them, or before they were kept)."""
    if not text:
        return ()
    return tuple(TierPart(int(row["tier"]), *(Decimal(row[name]) for name in _FIELDS[1:])) for row in json.loads(text))
