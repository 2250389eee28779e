"""The parts of a tiered price (docs/billing.md, "Tiers on the invoice"): hand-computed examples and
the properties that tie them to the price itself."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.pricing import Charge, Tier, price_usage
from ratecard.domain.tiers import TierPart, parts_from_json, parts_json, tier_parts

D = Decimal
TABLE = (Tier(D(1000), D(0)), Tier(D(10000), D("0.002"), D("5.00")), Tier(None, D("0.001")))


def charge(model: str, table: tuple[Tier, ...] = TABLE) -> Charge:
    return Charge(code="api", model=model, meter="calls", tiers=table)


def test_graduated_12500_units_one_part_per_tier_holding_units() -> None:
    # 1,000 × 0 = 0; 9,000 × 0.002 + 5.00 = 23.00; 2,500 × 0.001 = 2.50; total 25.50
    parts = tier_parts(charge("graduated"), D(12500))
    assert parts == (
        TierPart(1, D(0), D(1000), D(1000), D(0), D(0), D(0)),
        TierPart(2, D(1000), D(10000), D(9000), D("0.002"), D("5.00"), D("23.000")),
        TierPart(3, D(10000), D(12500), D(2500), D("0.001"), D(0), D("2.500")),
    )
    assert sum(part.amount for part in parts) == price_usage(charge("graduated"), D(12500)).amount == D("25.5")
    assert [part.first_unit for part in parts] == [D(1), D(1001), D(10001)]


def test_graduated_stops_at_the_tier_the_quantity_reaches() -> None:
    parts = tier_parts(charge("graduated"), D(1000))
    assert parts == (TierPart(1, D(0), D(1000), D(1000), D(0), D(0), D(0)),)


def test_volume_is_the_one_tier_the_total_falls_in_with_all_units() -> None:
    # 12,500 falls in tier 3: 12,500 × 0.001 = 12.50, no flat amount
    assert tier_parts(charge("volume"), D(12500)) == (
        TierPart(3, D(10000), D(12500), D(12500), D("0.001"), D(0), D("12.500")),)
    # 5,000 falls in tier 2: 5,000 × 0.002 + 5.00 = 15.00
    assert tier_parts(charge("volume"), D(5000)) == (
        TierPart(2, D(1000), D(5000), D(5000), D("0.002"), D("5.00"), D("15.000")),)


def test_stairstep_is_the_flat_amount_of_the_tier_reached() -> None:
    stairs = (Tier(D(10), D(0), D(5)), Tier(D(100), D(0), D(20)), Tier(None, D(0), D(50)))
    assert tier_parts(charge("stairstep", stairs), D(42)) == (TierPart(2, D(10), D(42), D(42), D(0), D(20), D(20)),)


@pytest.mark.parametrize("model", ["graduated", "volume", "stairstep"])
def test_zero_usage_has_no_parts(model: str) -> None:
    assert tier_parts(charge(model), D(0)) == ()


@pytest.mark.parametrize("model", ["per_unit", "package", "percentage"])
def test_models_without_tiers_have_no_parts(model: str) -> None:
    assert tier_parts(Charge(code="c", model=model, meter="m", unit_amount=D(1)), D(10)) == ()


def test_fractional_units_start_at_the_bound() -> None:
    part = tier_parts(charge("graduated", (Tier(D("0.5"), D(1)), Tier(None, D(2)))), D("1.25"))[1]
    assert (part.above, part.last_unit, part.quantity, part.amount) == (D("0.5"), D("1.25"), D("0.75"), D("1.50"))
    assert part.first_unit == D("0.5")  # not whole units: the part holds what is above 0.5


def test_parts_survive_their_json_exactly() -> None:
    parts = tier_parts(charge("graduated"), D("12500.0001"))
    text = parts_json(parts)
    assert text is not None and "E" not in text  # plain decimal text, never an exponent
    assert parts_from_json(text) == parts
    assert parts_json(()) is None and parts_from_json(None) == ()


MONEY = st.builds(lambda n, k: D(n).scaleb(-k), st.integers(0, 10**6), st.integers(0, 6))
QUANTITY = st.builds(lambda n, k: D(n).scaleb(-k), st.integers(0, 10**9), st.integers(0, 4))


@st.composite
def tier_tables(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(set(draw(st.lists(st.integers(1, 10**6), min_size=0, max_size=5))))
    rows = sorted({D(b) / draw(st.sampled_from([1, 10, 100])) for b in bounds})
    return (*[Tier(b, draw(MONEY), draw(MONEY)) for b in rows], Tier(None, draw(MONEY), draw(MONEY)))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["graduated", "volume", "stairstep"]), tier_tables(), QUANTITY)
def test_the_parts_add_up_to_the_price(model: str, table: tuple[Tier, ...], quantity: Decimal) -> None:
    parts = tier_parts(charge(model, table), quantity)
    assert sum((part.amount for part in parts), D(0)) == price_usage(charge(model, table), quantity).amount
    for part in parts:
        assert part.amount == part.quantity * part.unit_amount + part.flat_amount
        assert part.above < part.last_unit <= quantity
    if model == "graduated":
        assert sum((part.quantity for part in parts), D(0)) == quantity
        assert [part.tier for part in parts] == list(range(1, len(parts) + 1))
    else:
        assert len(parts) == (1 if quantity > 0 else 0)
    assert parts_from_json(parts_json(parts)) == parts
