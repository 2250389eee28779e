"""The catalog's numbers (prices, amounts, tiers, minimums, packages, tax rates, overrides) are held to
the bound every event number is held to: a number outside it is a problem at its own path."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.catalog import check_document
from ratecard.domain.numbers import number_problem

OUT_OF_RANGE = "is out of range"


def _catalog(amount: str = "49.00", unit: str = "0.002", up_to: str = "1000", flat: str = "5",
             minimum: str = "100.00", package: str = "100", tax: str = "19", override: str = "39.00") -> dict:
    """A valid catalog with every kind of number in a place of its own (values as the file writes them)."""
    return {
        "meters": [{"code": "tokens", "aggregation": "sum", "field": "tokens"}],
        "plans": [{"code": "pro", "currency": "EUR", "minimum": minimum, "charges": [
            {"code": "base", "model": "flat", "amount": amount, "timing": "advance"},
            {"code": "tokens", "meter": "tokens", "model": "graduated",
             "tiers": [{"up_to": up_to, "unit_amount": "0"}, {"up_to": None, "unit_amount": unit, "flat_amount": flat}]},
            {"code": "storage", "meter": "tokens", "model": "package", "package_size": package,
             "package_amount": "5", "free_units": "0"},
        ]}],
        "customers": [{"reference": "acme", "currency": "EUR", "tax_rate": tax}],
        "subscriptions": [{"reference": "acme-pro", "customer": "acme", "plan": "pro", "start": "2026-01-15",
                           "overrides": {"base": {"amount": override}}}],
    }


def _problems(document: dict) -> dict[str, str]:
    found, problems = check_document(document)
    assert (found is None) == bool(problems)
    return {problem.path: problem.message for problem in problems}


def test_the_catalog_in_range_is_valid() -> None:
    assert _problems(_catalog()) == {}


@pytest.mark.parametrize(("field", "path"), [
    ("amount", "plans[0].charges[0].amount"),
    ("unit", "plans[0].charges[1].tiers[1].unit_amount"),
    ("up_to", "plans[0].charges[1].tiers[0].up_to"),
    ("flat", "plans[0].charges[1].tiers[1].flat_amount"),
    ("minimum", "plans[0].minimum"),
    ("package", "plans[0].charges[2].package_size"),
    ("override", "subscriptions[0].overrides.base.amount"),
])
def test_each_number_out_of_range_is_refused_at_its_path(field: str, path: str) -> None:
    # hand-picked edges: 20 nines is the largest integer inside, 1e20 the first outside; 1e-19 the
    # smallest magnitude inside; 39 significant digits one too many
    for inside in ("99999999999999999999", "1e-19", "1." + "2" * 37):
        assert _problems(_catalog(**{field: inside})) == {}, (field, inside)
    for outside in ("1e20", "1e400", "1e-20", "1e-400", "1." + "2" * 38, "9" * 39):
        problems = _problems(_catalog(**{field: outside}))
        assert OUT_OF_RANGE in problems.get(path, ""), (field, outside, problems)
        assert "1e-19 <= |value| < 1e20" in problems[path]


def test_a_tax_rate_that_is_tiny_beyond_the_bound_is_refused() -> None:
    assert OUT_OF_RANGE in _problems(_catalog(tax="1e-400"))["customers[0].tax_rate"]
    assert _problems(_catalog(tax="1e-19")) == {}


# any non-negative decimal as a file may write it: integer, fraction, exponent of any length
_decimal_text = st.from_regex(r"\A(0|[1-9][0-9]{0,45})(\.[0-9]{1,45})?([eE][+-]?[0-9]{1,9})?\Z")


@settings(max_examples=50, deadline=None)
@given(text=_decimal_text)
def test_a_price_is_refused_exactly_when_the_number_bound_refuses_it(text: str) -> None:
    problems = _problems(_catalog(amount=text, override=text))
    refused = number_problem(Decimal(text)) is not None
    for path in ("plans[0].charges[0].amount", "subscriptions[0].overrides.base.amount"):
        assert (OUT_OF_RANGE in problems.get(path, "")) == refused, (text, problems)
    assert set(problems) <= {"plans[0].charges[0].amount", "subscriptions[0].overrides.base.amount"}, problems
