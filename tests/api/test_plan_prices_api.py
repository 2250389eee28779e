"""A plan read back through the API shows its caps and its prices in each of its currencies."""

from __future__ import annotations

from ..integration.test_caps_currencies import CATALOG


def test_a_plan_shows_its_caps_and_its_prices_per_currency(api) -> None:
    api.apply_catalog(CATALOG)
    intl = api.get("/v1/plans/intl").json()
    assert intl["currency"] == "EUR"
    assert intl["currencies"]["USD"]["charges"] == {"base": {"amount": "55.00"}, "calls": {"unit_amount": "0.55"}}
    assert intl["currencies"]["JPY"]["charges"]["base"] == {"amount": "7500"}
    capped = api.get("/v1/plans/capped").json()
    assert capped["maximum"] == {"amount": "600.00", "charges": ["tokens", "calls"]}
    assert [charge.get("maximum") for charge in capped["charges"]] == ["500.00", None]
