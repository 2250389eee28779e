"""Property names the usage queries read (a meter's field and filters, a charge's filters and
group_by) must be readable on both stores: a double quote, a backslash or a control character is
refused by `catalog check`, naming where, and every other name is accepted."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from .subscription_cuts import problems_of


def document(name: str) -> dict[str, Any]:
    return {
        "meters": [{"code": "tokens", "aggregation": "sum", "field": name, "filters": {name: ["x"]}}],
        "plans": [{"code": "p", "currency": "EUR", "charges": [
            {"code": "t", "model": "per_unit", "meter": "tokens", "unit_amount": "1", "group_by": [name]},
            {"code": "u", "model": "per_unit", "meter": "tokens", "unit_amount": "1",
             "filters": [{"code": "f", "match": {name: ["x"]}, "unit_amount": "2"}]}]}],
    }


WHERE = {"meters[0].field", "meters[0].filters", "plans[0].charges[0].group_by[0]",
         "plans[0].charges[1].filters[0].match"}


def test_a_quote_a_backslash_or_a_tab_in_a_property_name_is_refused_where_it_is_used() -> None:
    for name in ('say "hi"', "a\\b", "tab\there"):
        found = problems_of(document(name))
        assert WHERE <= set(found), found
        if "\t" not in name:  # (a tab in group_by is already refused as a control character by the schema)
            assert all("double quote" in found[path] for path in WHERE), found
    assert not WHERE & set(problems_of(document("model.name é x")))


@given(st.text(min_size=1, max_size=20))
def test_refused_exactly_when_the_name_holds_one_of_those_characters(name: str) -> None:
    unreadable = any(c in name for c in '"\\') or any(ord(c) < 0x20 or ord(c) == 0x7f for c in name)
    found = set(problems_of(document(name)))
    assert ("meters[0].field" in found) == unreadable
