"""Solvimon pricing item configs -> catalog charges (services.resources.pricing_charges): each
pricing type priced with hand-computed figures, refusals naming the field, and a property: a
charge shown as a Solvimon config reads back as the same charge."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.catalog.model import to_domain_charge
from ratecard.catalog.schema import Charge as CatalogCharge
from ratecard.domain.pricing import price_usage
from ratecard.services.errors import InvalidInput, MissingInput
from ratecard.services.resources.pricing_charges import charge_fields, config_of


def band(amount: str | None = None, top: str | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict(more)
    if amount is not None:
        out["amount"] = {"quantity": amount, "currency": "EUR"}
    if top is not None:
        out["tier_top_bound"] = {"number": top}
    return out


def price(config: dict[str, Any], quantity: str, model_type: str = "USAGE_BASED", events: int = 0) -> Decimal:
    fields = charge_fields(config, "items.0.configs.0", model_type, "EUR")
    charge = to_domain_charge(CatalogCharge.model_validate({"code": "c", "meter": "m", **fields}))
    return price_usage(charge, Decimal(quantity), events).amount


def test_flat_with_included_volume_is_a_first_tier_priced_zero() -> None:
    config = {"type": "FLAT", "bands": [band("0.002")], "default_included_volume": {"number": "1000"}}
    assert charge_fields(config, "c", "USAGE_BASED", "EUR") == {"model": "graduated", "tiers": [
        {"up_to": "1000", "unit_amount": "0"}, {"up_to": None, "unit_amount": "0.002"}]}
    # 1500 tokens, 1000 free: 500 x 0.002 = 1.000
    assert price(config, "1500") == Decimal("1.000")


def test_tiered_is_graduated_and_top_tiered_is_volume() -> None:
    bands = [band("0.002", "1000"), band("0.001")]
    # graduated: 1000 x 0.002 + 500 x 0.001 = 2.500
    assert price({"type": "TIERED", "bands": bands}, "1500") == Decimal("2.500")
    # volume: all 1500 at the tier reached, 0.001 = 1.500
    assert price({"type": "TOP_TIERED", "bands": bands}, "1500") == Decimal("1.500")


def test_stair_step_block_size_and_percentage() -> None:
    steps = [band("0", "10"), band("29.00", "50"), band("79.00")]
    assert price({"type": "STAIR_STEP", "bands": steps}, "42") == Decimal("29.00")
    # package: ceil(2500 / 1000) = 3 packages x 1.50 = 4.50; with 600 included: ceil(1900 / 1000) = 2 x 1.50
    package = {"type": "FLAT", "bands": [band("1.50", block_size={"number": "1000"})]}
    assert price(package, "2500") == Decimal("4.50")
    assert price({**package, "default_included_volume": {"number": "600"}}, "2500") == Decimal("3.00")
    # percentage: 2.9 % of 200.00 + 0.30 x 4 events = 5.80 + 1.20 = 7.00
    card = {"type": "FLAT", "bands": [{"percentage": "2.9", "fixed_amount": {"quantity": "0.30", "currency": "EUR"}}]}
    assert price(card, "200.00", events=4) == Decimal("7.000")


def test_a_recurring_item_is_a_flat_fee_billed_as_configured() -> None:
    config = {"type": "FLAT", "bands": [band("20.00")], "billing_in_advance": True}
    assert charge_fields(config, "c", "RECURRING", "EUR") == {"model": "flat", "amount": "20.00", "timing": "advance"}


@pytest.mark.parametrize(("config", "field"), [
    ({"type": "PASS_THROUGH", "bands": [band("1")]}, "c.pricing_type"),
    ({"type": "FLAT", "bands": [band("1", maximum_amount={"quantity": "5"})]}, "c.bands.0.maximum_amount"),
    ({"type": "FLAT", "bands": [{"amount": {"quantity": "1", "currency": "USD"}}]}, "c.bands.0.amount.currency"),
    ({"type": "FLAT", "bands": [band("1e400")]}, "c.bands.0.amount.quantity"),
    ({"type": "TIERED", "bands": [band("1"), band("2")]}, "c.bands.0.tier_top_bound"),
    ({"type": "FLAT", "bands": []}, "c.bands"),
    ({"type": "FLAT", "bands": [band("1")], "tiering_conditions": {"name": "x"}}, "c.tiering_conditions"),
])
def test_what_has_no_counterpart_is_refused_with_its_path(config: dict[str, Any], field: str) -> None:
    with pytest.raises((InvalidInput, MissingInput)) as refused:
        charge_fields(config, "c", "USAGE_BASED", "EUR")
    assert refused.value.field == field


amounts = st.decimals(min_value=0, max_value=10_000, places=4).map(str)
bounds = st.lists(st.decimals(min_value=1, max_value=10_000, places=2), min_size=1, max_size=4, unique=True)


@st.composite
def charges(draw: st.DrawFn) -> dict[str, Any]:
    model = draw(st.sampled_from(["per_unit", "package", "graduated", "volume", "stairstep", "percentage"]))
    charge: dict[str, Any] = {"model": model}
    if model == "per_unit":
        charge["unit_amount"] = draw(amounts)
    elif model == "package":
        charge.update(package_amount=draw(amounts), package_size=str(draw(st.integers(1, 1000))),
                      free_units=str(draw(st.integers(0, 100))))
    elif model == "percentage":
        charge["rate"] = draw(st.decimals(min_value=0, max_value=100, places=2).map(str))
    else:
        tops = sorted(draw(bounds))
        tiers = [{"up_to": str(top)} for top in tops] + [{"up_to": None}]
        for tier in tiers:
            tier["flat_amount" if model == "stairstep" else "unit_amount"] = draw(amounts)
        charge["tiers"] = tiers
    return charge


@settings(max_examples=60, deadline=None)
@given(charges())
def test_a_charge_shown_as_a_config_reads_back_the_same(charge: dict[str, Any]) -> None:
    config = config_of(charge, "EUR")
    assert config is not None
    back = charge_fields(config, "c", "USAGE_BASED", "EUR")
    original = to_domain_charge(CatalogCharge.model_validate({"code": "c", "meter": "m", **charge}))
    again = to_domain_charge(CatalogCharge.model_validate({"code": "c", "meter": "m", **back}))
    assert again == original
