"""Invoice totals in the currency's minor unit, as Stripe takes amounts (cents: 178.50 EUR is 17850)."""

from __future__ import annotations

from decimal import Decimal

from ..domain.money import minor_units

MAX_MINOR = 99_999_999  # Stripe's largest amount for a charge (999,999.99 in a two-decimal currency)


class AmountError(ValueError):
    pass


def to_minor(amount: Decimal, currency: str, *, stripe_limit: bool = True) -> int:
    """The exact number of minor units; an amount with more decimals than the currency has, or
    (with `stripe_limit`) beyond what Stripe can charge, is refused rather than rounded."""
    scaled = amount.scaleb(minor_units(currency))
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{amount} {currency} is not a whole number of minor units")
    value = int(scaled)
    if stripe_limit and abs(value) > MAX_MINOR:
        raise AmountError(f"{amount} {currency} is more than Stripe charges at once")
    return value


def from_minor(value: int, currency: str) -> Decimal:
    return Decimal(value).scaleb(-minor_units(currency))
