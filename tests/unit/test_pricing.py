"""Charge models (docs/billing.md) with public worked examples (Lago, Kill Bill) and properties."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.money import quantize
from ratecard.domain.pricing import (
    CHARGE_MODELS,
    USAGE_MODELS,
    Charge,
    Tier,
    graduated,
    price_usage,
    tier_for,
)

D = Decimal


def tiers(*rows: tuple) -> tuple[Tier, ...]:
    """(up_to, unit_amount[, flat_amount]) rows; up_to None is unbounded."""
    out = []
    for row in rows:
        up_to, unit = row[0], row[1]
        flat = row[2] if len(row) > 2 else "0"
        out.append(Tier(None if up_to is None else D(str(up_to)), D(unit), D(flat)))
    return tuple(out)


def charge(model: str, **fields: object) -> Charge:
    return Charge(code="c", model=model, meter="m", **fields)


def exact(value_fn: Callable[[], Decimal]) -> Decimal:
    """Evaluate with 200 significant digits: the exact value of a product or sum."""
    with localcontext() as ctx:
        ctx.prec = 200
        return value_fn()


def amount(c: Charge, quantity: str | int, events: int = 0) -> Decimal:
    return price_usage(c, D(str(quantity)), events).amount


# ---------------------------------------------------------------------------------------------
# graduated (Lago's example; Kill Bill ALL_TIER)
# ---------------------------------------------------------------------------------------------

LAGO_GRADUATED = charge("graduated", tiers=tiers((100, "1"), (200, "0.50"), (None, "0.10")))


def test_lago_graduated_example() -> None:
    # $1 for units 0-100, $0.50 for 101-200, $0.10 above: 250 units
    # = 100 × 1 + 100 × 0.50 + 50 × 0.10 = 100 + 50 + 5 = $155
    assert amount(LAGO_GRADUATED, 250) == D("155")


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("100", "100"),  # 100 × 1: exactly 100 stays in tier 1
        ("101", "100.50"),  # 100 × 1 + 1 × 0.50
        ("200", "150"),  # 100 + 100 × 0.50
        ("100.5", "100.25"),  # decimal quantity: 100 × 1 + 0.5 × 0.50
        ("0.5", "0.5"),
    ],
)
def test_graduated_tier_bounds_are_inclusive(quantity: str, expected: str) -> None:
    assert amount(LAGO_GRADUATED, quantity) == D(expected)


def test_graduated_flat_amount_only_for_tiers_holding_units() -> None:
    # first 1000 free, then 0.002 per unit plus a flat 5 once tier 2 is entered
    c = charge("graduated", tiers=tiers((1000, "0"), (None, "0.002", "5")))
    assert amount(c, 1000) == D("0")  # tier 2 holds no units: no flat fee
    assert amount(c, "1000.5") == D("5.001")  # 0.5 × 0.002 + 5
    assert amount(c, 3500) == D("10.000")  # 2500 × 0.002 + 5 = 5 + 5
    # a flat fee on the first tier is due as soon as it holds any unit
    first_flat = charge("graduated", tiers=tiers((10, "1", "3"), (None, "0.5")))
    assert amount(first_flat, 1) == D("4")  # 1 × 1 + 3
    assert amount(first_flat, 12) == D("14")  # 10 × 1 + 3 + 2 × 0.5


# ---------------------------------------------------------------------------------------------
# volume (Lago's example; Kill Bill TOP_TIER)
# ---------------------------------------------------------------------------------------------

# Lago volume example (docs: guide/plans/charges/charge-models/volume):
# tier 1 0-10,000 $0.0010; tier 2 10,001-50,000 $0.0008; tier 3 50,001-100,000 $0.0006;
# tier 4 100,001+ $0.0004; each with a $10 flat fee
LAGO_VOLUME = charge(
    "volume",
    tiers=tiers((10000, "0.0010", "10"), (50000, "0.0008", "10"), (100000, "0.0006", "10"), (None, "0.0004", "10")),
)


def test_lago_volume_example() -> None:
    # 65,000 calls fall in tier 3: 65,000 × $0.0006 + $10 = 39 + 10 = $49
    price = price_usage(LAGO_VOLUME, D(65000))
    assert price.amount == D("49")
    assert price.unit_amount == D("0.0006")


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("10000", "20"),  # 10,000 × 0.0010 + 10: exactly the bound stays in tier 1
        ("10001", "18.0008"),  # 10,001 × 0.0008 + 10
        ("10000.5", "18.0004"),  # decimal quantity just above the bound: tier 2
        ("100001", "50.0004"),  # 100,001 × 0.0004 + 10
    ],
)
def test_volume_tier_bounds_are_inclusive(quantity: str, expected: str) -> None:
    assert amount(LAGO_VOLUME, quantity) == D(expected)


def test_volume_quantity_exactly_on_the_bound_stays_in_the_lower_tier() -> None:
    c = charge("volume", tiers=tiers((100, "1"), (None, "0.5")))
    assert amount(c, "100") == D("100")  # 100 × 1
    assert amount(c, "100.0") == D("100.0")
    assert amount(c, "100.0001") == D("50.00005")  # 100.0001 × 0.5


# Kill Bill usage docs (catalog "Consumable In Arrear"): per unit type, tier 1 up to a max,
# tier 2 unbounded; usage 1,500 cell-phone-minutes and 2,048 Mbytes.
#   minutes: blocks of 10 at 1.00 EUR for the first 100 blocks, then 0.50 EUR a block
#            -> per minute: 0.10 EUR up to 1,000 minutes, then 0.05 EUR
#   Mbytes:  0.50 EUR each for the first 1,024, then 0.10 EUR
MINUTE_TIERS = tiers((1000, "0.10"), (None, "0.05"))
MBYTE_TIERS = tiers((1024, "0.5"), (None, "0.1"))


def test_kill_bill_all_tier_is_graduated() -> None:
    # minutes: 1000 × 0.10 + 500 × 0.05 = 100 + 25 = 125
    # Mbytes:  1024 × 0.5 + 1024 × 0.1 = 512 + 102.4 = 614.4
    # total: 125 + 614.4 = 739.40 EUR
    minutes = amount(charge("graduated", tiers=MINUTE_TIERS), 1500)
    mbytes = amount(charge("graduated", tiers=MBYTE_TIERS), 2048)
    assert (minutes, mbytes) == (D("125"), D("614.4"))
    assert quantize(minutes, "EUR") + quantize(mbytes, "EUR") == D("739.40")


def test_kill_bill_top_tier_is_volume() -> None:
    # minutes: 1500 × 0.05 = 75 ; Mbytes: 2048 × 0.1 = 204.8 ; total 279.80 EUR
    minutes = amount(charge("volume", tiers=MINUTE_TIERS), 1500)
    mbytes = amount(charge("volume", tiers=MBYTE_TIERS), 2048)
    assert (minutes, mbytes) == (D("75"), D("204.8"))
    assert quantize(minutes, "EUR") + quantize(mbytes, "EUR") == D("279.80")


def test_kill_bill_minutes_counted_in_blocks() -> None:
    # the same minutes counted as 150 blocks of 10: 100 × 1.00 + 50 × 0.50 = 125 vs 150 × 0.50 = 75
    block_tiers = tiers((100, "1.00"), (None, "0.50"))
    assert amount(charge("graduated", tiers=block_tiers), 150) == D("125")
    assert amount(charge("volume", tiers=block_tiers), 150) == D("75")


# ---------------------------------------------------------------------------------------------
# stairstep, package, percentage, per_unit
# ---------------------------------------------------------------------------------------------

STAIRS = charge("stairstep", tiers=tiers((10, "0", "5"), (100, "0", "20"), (None, "0", "50")))


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("1", "5"), ("10", "5"), ("10.5", "20"), ("100", "20"), ("101", "50"), ("100000", "50")],
)
def test_stairstep_bills_only_the_flat_amount_of_the_tier_reached(quantity: str, expected: str) -> None:
    assert amount(STAIRS, quantity) == D(expected)


LAGO_PACKAGE = charge("package", package_size=D(100), package_amount=D("5"), free_units=D(100))


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        # Lago: $5 per 100 units, first 100 free: 201 -> ceil((201 - 100) / 100) = 2 -> $10
        ("201", "10"),
        ("100", "0"),  # all free
        ("101", "5"),  # 1 billable unit opens a package
        ("200", "5"),  # exactly one package
        ("300", "10"),
        ("100.01", "5"),  # decimal quantities open a package too
    ],
)
def test_lago_package_example(quantity: str, expected: str) -> None:
    assert amount(LAGO_PACKAGE, quantity) == D(expected)


def test_package_without_free_units() -> None:
    c = charge("package", package_size=D(1000), package_amount=D("2.50"))
    # 2,500 units -> ceil(2.5) = 3 packages × 2.50 = 7.50
    assert amount(c, 2500) == D("7.50")


def test_percentage_rate_plus_fixed_amount_per_event() -> None:
    # 1.5% of 200.00 over 3 payments + 0.30 per payment = 3.00 + 0.90 = 3.90
    c = charge("percentage", rate=D("1.5"), fixed_amount=D("0.30"))
    assert amount(c, "200.00", events=3) == D("3.90")
    # 2.5% of 1,234.56 over 1 payment, no fixed fee = 30.864 -> 30.86
    c2 = charge("percentage", rate=D("2.5"))
    assert quantize(amount(c2, "1234.56", events=1), "EUR") == D("30.86")


def test_per_unit() -> None:
    c = charge("per_unit", unit_amount=D("0.0001"))
    # 12,345 calls × 0.0001 = 1.2345 exactly -> 1.23
    price = price_usage(c, D(12345))
    assert price.amount == D("1.2345")
    assert price.unit_amount == D("0.0001")
    assert quantize(price.amount, "EUR") == D("1.23")


def test_unit_price_is_not_rounded_before_multiplying() -> None:
    # 1,000 × 0.0049 = 4.90 (rounding the unit price first would bill 1,000 × 0.00 = 0)
    c = charge("per_unit", unit_amount=D("0.0049"))
    assert quantize(amount(c, 1000), "EUR") == D("4.90")


def test_unit_amount_shown_for_models_without_a_single_price() -> None:
    # graduated 250 units for 155 -> average 0.62
    assert price_usage(LAGO_GRADUATED, D(250)).unit_amount == D("0.62")


def test_flat_is_not_a_usage_model() -> None:
    assert set(CHARGE_MODELS) == {"flat", *USAGE_MODELS}
    with pytest.raises(ValueError):
        price_usage(charge("flat", amount=D("10")), D(1))


# ---------------------------------------------------------------------------------------------
# zero usage bills zero in every usage model
# ---------------------------------------------------------------------------------------------

ZERO_CASES = {
    "per_unit": charge("per_unit", unit_amount=D("0.5")),
    # even with a flat fee on the first tier
    "graduated": charge("graduated", tiers=tiers((100, "1", "10"), (None, "0.5", "5"))),
    "volume": charge("volume", tiers=tiers((100, "1", "10"), (None, "0.5", "5"))),
    "stairstep": charge("stairstep", tiers=tiers((100, "0", "10"), (None, "0", "50"))),
    "package": charge("package", package_size=D(100), package_amount=D("5")),
    "percentage": charge("percentage", rate=D("2"), fixed_amount=D("0.30")),
    # even with a flat fee on the first tier
    "graduated_percentage": charge("graduated_percentage", tiers=(Tier(D(1000), rate=D(1), flat_amount=D(5)),
                                                                  Tier(None, rate=D("0.5"), flat_amount=D(5)))),
}


def test_every_usage_model_has_a_zero_case() -> None:
    assert set(ZERO_CASES) == set(USAGE_MODELS)


@pytest.mark.parametrize("model", USAGE_MODELS)
def test_zero_usage_bills_zero(model: str) -> None:
    price = price_usage(ZERO_CASES[model], D(0), 0)
    assert price.amount == 0
    assert str(quantize(price.amount, "EUR")) == "0.00"


# ---------------------------------------------------------------------------------------------
# tier_for
# ---------------------------------------------------------------------------------------------


def test_tier_for_uses_inclusive_upper_bounds() -> None:
    t = tiers((10, "3"), (20, "2"), (None, "1"))
    assert tier_for(t, D(10)) is t[0]
    assert tier_for(t, D("10.000001")) is t[1]
    assert tier_for(t, D(20)) is t[1]
    assert tier_for(t, D(21)) is t[2]


def test_tier_for_past_a_bounded_last_tier_uses_the_last_tier() -> None:
    t = tiers((10, "3"), (20, "2"))
    assert tier_for(t, D(25)) is t[1]


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

MONEY = st.builds(lambda n, k: D(n).scaleb(-k), st.integers(0, 10**6), st.integers(0, 6))
QUANTITY = st.builds(lambda n, k: D(n).scaleb(-k), st.integers(0, 10**9), st.integers(0, 4))
SETTINGS = settings(max_examples=200, deadline=None)


@st.composite
def tier_tables(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(set(draw(st.lists(st.integers(1, 10**6), min_size=0, max_size=5))))
    rows = [D(b) / draw(st.sampled_from([1, 10, 100])) for b in bounds]
    rows = sorted(set(rows))
    result = [Tier(b, draw(MONEY), draw(MONEY)) for b in rows]
    result.append(Tier(None, draw(MONEY), draw(MONEY)))
    return tuple(result)


@SETTINGS
@given(tier_tables(), QUANTITY)
def test_graduated_never_exceeds_units_at_the_highest_price_plus_all_flat_fees(
    table: tuple[Tier, ...], quantity: Decimal
) -> None:
    total = graduated(table, quantity)
    highest = max(t.unit_amount for t in table)
    assert 0 <= total <= quantity * highest + sum(t.flat_amount for t in table)


@SETTINGS
@given(tier_tables(), QUANTITY, QUANTITY)
def test_graduated_is_monotonic(table: tuple[Tier, ...], a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert graduated(table, low) <= graduated(table, high)


@SETTINGS
@given(tier_tables(), QUANTITY)
def test_graduated_equals_the_sum_of_each_tiers_slice(table: tuple[Tier, ...], quantity: Decimal) -> None:
    # reference: units in (lower, up_to] at that tier's price, plus its flat fee if it holds any
    def reference() -> Decimal:
        expected = D(0)
        lower = D(0)
        for tier in table:
            upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
            if upper > lower:
                expected += (upper - lower) * tier.unit_amount + tier.flat_amount
            if tier.up_to is None:
                break
            lower = tier.up_to
        return expected

    assert price_usage(charge("graduated", tiers=table), quantity).amount == exact(reference)


@SETTINGS
@given(tier_tables(), QUANTITY)
def test_volume_prices_all_units_at_the_tier_reached(table: tuple[Tier, ...], quantity: Decimal) -> None:
    price = price_usage(charge("volume", tiers=table), quantity)
    if quantity == 0:
        assert price.amount == 0
        return
    tier = next(t for t in table if t.up_to is None or quantity <= t.up_to)
    assert price.amount == quantity * tier.unit_amount + tier.flat_amount
    # and it is never more than every unit at the highest price plus the largest flat fee
    assert price.amount <= quantity * max(t.unit_amount for t in table) + max(t.flat_amount for t in table)


@SETTINGS
@given(MONEY, MONEY, QUANTITY)
def test_one_unbounded_tier_graduated_equals_volume(unit: Decimal, flat: Decimal, quantity: Decimal) -> None:
    table = (Tier(None, unit, flat),)
    grad = price_usage(charge("graduated", tiers=table), quantity).amount
    vol = price_usage(charge("volume", tiers=table), quantity).amount
    assert grad == vol == (quantity * unit + flat if quantity > 0 else 0)


@SETTINGS
@given(QUANTITY, st.integers(1, 1000).map(D), MONEY, st.integers(0, 500).map(D))
def test_package_count_is_the_ceiling(quantity: Decimal, size: Decimal, price: Decimal, free: Decimal) -> None:
    c = charge("package", package_size=size, package_amount=price, free_units=free)
    total = amount(c, quantity)
    billable = max(quantity - free, D(0))
    if price == 0:
        assert total == 0
        return
    packages = total / price
    assert packages == packages.to_integral_value()
    assert packages * size >= billable > (packages - 1) * size


# Rounding happens once: the amount handed to quantize is the exact product, whatever the
# number of significant digits (a 28-digit context would round it a first time).
BIG_QUANTITY = st.builds(lambda n, k: D(n).scaleb(-k), st.integers(0, 10**22), st.integers(0, 12))
FINE_PRICE = st.builds(lambda n, k: D(n).scaleb(-k), st.integers(1, 10**10), st.integers(0, 12))


@SETTINGS
@given(BIG_QUANTITY, FINE_PRICE)
def test_per_unit_amount_is_exact_before_rounding(quantity: Decimal, unit: Decimal) -> None:
    got = price_usage(charge("per_unit", unit_amount=unit), quantity).amount
    assert got == exact(lambda: quantity * unit)


@SETTINGS
@given(BIG_QUANTITY, FINE_PRICE, FINE_PRICE)
def test_graduated_and_volume_amounts_are_exact_before_rounding(q: Decimal, u1: Decimal, u2: Decimal) -> None:
    bound = D("1000000.5")
    table = (Tier(bound, u1, D("0.01")), Tier(None, u2, D("0.02")))
    grad = price_usage(charge("graduated", tiers=table), q).amount
    vol = price_usage(charge("volume", tiers=table), q).amount
    if q == 0:
        assert grad == vol == 0
        return
    if q <= bound:
        assert grad == exact(lambda: q * u1 + D("0.01"))
        assert vol == exact(lambda: q * u1 + D("0.01"))
    else:
        assert grad == exact(lambda: bound * u1 + D("0.01") + (q - bound) * u2 + D("0.02"))
        assert vol == exact(lambda: q * u2 + D("0.02"))


@SETTINGS
@given(BIG_QUANTITY, FINE_PRICE, st.integers(0, 10**6))
def test_percentage_amount_is_exact_before_rounding(quantity: Decimal, rate: Decimal, events: int) -> None:
    c = charge("percentage", rate=rate, fixed_amount=D("0.25"))
    got = amount(c, quantity, events=events)
    if quantity == 0 and events == 0:
        assert got == 0
    else:
        assert got == exact(lambda: quantity * rate / 100 + D("0.25") * events)
