"""Prices per dimension on one charge (docs/billing.md, "Prices per dimension"): filters price the
events they match at their own price, the charge's own price is the default, group_by prices each
group on its own; each by a hand-computed example, and the partition as a property."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.catalog import build_catalog, check_document
from ratecard.domain.aggregation import Sample, aggregate
from ratecard.domain.dimensions import MAX_GROUPS, split_usage, split_weighted
from ratecard.domain.invoice import Line
from ratecard.domain.periods import Schedule
from ratecard.domain.rating import Plan, Pricing, RatingError, invoice_cuts, rate_cut

D = Decimal
EUR = Pricing(currency="EUR")
SCHEDULE = Schedule.build(date(2026, 1, 1), None, "month", "UTC", anchor_day=1)
JAN = datetime(2026, 1, 5, tzinfo=UTC)

LLM = """
meters:
  - {code: llm_tokens, aggregation: sum, field: tokens}
  - {code: calls, aggregation: count}
plans:
  - code: ai
    currency: EUR
    charges:
      - code: llm
        meter: llm_tokens
        model: per_unit
        unit_amount: "0.000002"
        filters:
          - {code: gpt4o, match: {model: [gpt-4o]}, unit_amount: "0.00001"}
          - {code: mini, match: {model: [gpt-4o-mini]}, unit_amount: "0.0000006"}
      - code: api
        meter: calls
        model: graduated
        tiers: [{up_to: 1000, unit_amount: "0"}, {up_to: null, unit_amount: "0.001"}]
        group_by: [project_id]
customers: [{reference: acme, currency: EUR}]
subscriptions: [{reference: acme-ai, customer: acme, plan: ai, start: 2026-01-01}]
"""


def _catalog(text: str = LLM, **overrides: Any) -> Any:
    document = yaml.safe_load(text)
    if overrides:
        document["subscriptions"][0]["overrides"] = overrides
    checked, problems = check_document(document)
    assert not problems, problems
    assert checked is not None
    return build_catalog(checked)


def _lines(plan: Plan, events: dict[str, list[dict[str, Any]]]) -> list[Line]:
    """The closing invoice of January for the events of each meter (one per hour from Jan 5)."""
    usage = {}
    for charge in plan.charges:
        items = [(JAN + timedelta(hours=index), properties)
                 for index, properties in enumerate(events.get(charge.meter or "", []))]
        aggregation, field = ("sum", "tokens") if charge.meter == "llm_tokens" else ("count", None)
        usage[charge.usage_key] = split_usage(aggregation, field, charge.filters, charge.group_by, items)
    cut = invoice_cuts(SCHEDULE, datetime(2026, 2, 1, tzinfo=UTC))[1]
    return [line for line in rate_cut(plan, cut, usage, EUR) if line.kind == "usage"]


def test_each_filter_prices_its_events_and_the_charge_price_is_the_default() -> None:
    plan = _catalog().subscriptions["acme-ai"].plan
    lines = _lines(plan, {"llm_tokens": [{"model": "gpt-4o", "tokens": 120_000},
                                         {"model": "gpt-4o-mini", "tokens": 2_000_000},
                                         {"model": "claude-3", "tokens": 500_000}]})
    llm = [(line.filter, line.quantity, line.unit_amount, line.amount) for line in lines if line.code == "llm"]
    # 120,000 × 0.00001 = 1.20; 2,000,000 × 0.0000006 = 1.20; 500,000 × 0.000002 = 1.00
    assert llm == [("gpt4o", D(120_000), D("0.00001"), D("1.20")),
                   ("mini", D(2_000_000), D("0.0000006"), D("1.20")),
                   (None, D(500_000), D("0.000002"), D("1.00"))]
    assert sum(amount for *_, amount in llm) == D("3.40")


def test_a_filter_without_usage_has_a_line_at_zero() -> None:
    plan = _catalog().subscriptions["acme-ai"].plan
    lines = _lines(plan, {"llm_tokens": [{"model": "gpt-4o", "tokens": 100}]})
    llm = [(line.filter, line.quantity, line.amount, line.group) for line in lines if line.code == "llm"]
    assert llm == [("gpt4o", D(100), D("0.00"), None), ("mini", D(0), D("0.00"), None), (None, D(0), D("0.00"), None)]


def test_each_group_has_its_own_tiers() -> None:
    plan = _catalog().subscriptions["acme-ai"].plan
    lines = _lines(plan, {"calls": [{"project_id": "a"}] * 1500 + [{"project_id": "b"}] * 800})
    api = [(line.group, line.quantity, line.amount) for line in lines if line.code == "api"]
    # a: 1,500 calls, 1,000 free then 500 × 0.001 = 0.50; b: 800 calls, all free. Not (2,300 - 1,000) × 0.001 = 1.30
    assert api == [((("project_id", "a"),), D(1500), D("0.50")), ((("project_id", "b"),), D(800), D("0.00"))]
    assert sum(amount for *_, amount in api) == D("0.50")


def test_events_without_the_property_form_a_group_of_their_own() -> None:
    plan = _catalog().subscriptions["acme-ai"].plan
    lines = _lines(plan, {"calls": [{"project_id": "a"}] * 2 + [{}] * 3 + [{"project_id": None}]})
    api = [(line.group, line.quantity, line.description) for line in lines if line.code == "api"]
    assert api == [((("project_id", "a"),), D(2), "api (project_id a)"),
                   ((("project_id", None),), D(4), "api (project_id (none))")]


def test_the_first_filter_in_list_order_takes_an_event_two_filters_match() -> None:
    text = LLM.replace("{code: mini, match: {model: [gpt-4o-mini]}", "{code: mini, match: {model: [gpt-4o-mini, gpt-4o]}")
    plan = _catalog(text).subscriptions["acme-ai"].plan
    lines = _lines(plan, {"llm_tokens": [{"model": "gpt-4o", "tokens": 10}]})
    assert [(line.filter, line.quantity) for line in lines if line.code == "llm"] == [
        ("gpt4o", D(10)), ("mini", D(0)), (None, D(0))]


def test_a_subscription_overrides_one_filter_price() -> None:
    plan = _catalog(llm={"filters": {"gpt4o": {"unit_amount": "0.000008"}}}).subscriptions["acme-ai"].plan
    lines = _lines(plan, {"llm_tokens": [{"model": "gpt-4o", "tokens": 120_000},
                                         {"model": "gpt-4o-mini", "tokens": 2_000_000}]})
    llm = [(line.filter, line.amount) for line in lines if line.code == "llm"]
    # 120,000 × 0.000008 = 0.96; mini keeps its 0.0000006
    assert llm == [("gpt4o", D("0.96")), ("mini", D("1.20")), (None, D("0.00"))]


def test_filters_and_group_by_combine() -> None:
    text = LLM.replace("          - {code: mini, match: {model: [gpt-4o-mini]}, unit_amount: \"0.0000006\"}\n",
                       "          - {code: mini, match: {model: [gpt-4o-mini]}, unit_amount: \"0.0000006\"}\n"
                       "        group_by: [project_id]\n")
    plan = _catalog(text).subscriptions["acme-ai"].plan
    lines = _lines(plan, {"llm_tokens": [{"model": "gpt-4o", "tokens": 1000, "project_id": "a"},
                                         {"model": "gpt-4o", "tokens": 3000, "project_id": "b"},
                                         {"model": "x", "tokens": 7, "project_id": "a"}]})
    llm = [(line.filter, line.group, line.quantity) for line in lines if line.code == "llm"]
    assert llm == [("gpt4o", (("project_id", "a"),), D(1000)), ("gpt4o", (("project_id", "b"),), D(3000)),
                   ("mini", None, D(0)), (None, (("project_id", "a"),), D(7))]


def test_a_weighted_sum_level_is_kept_per_group() -> None:
    text = LLM.replace("  - {code: calls, aggregation: count}", "  - {code: calls, aggregation: count}\n"
                       "  - {code: seats, aggregation: weighted_sum, field: delta}")
    text = text.replace("customers:", "      - {code: seats, meter: seats, model: per_unit, unit_amount: '1', "
                                      "group_by: [region]}\ncustomers:")
    charge = _catalog(text).subscriptions["acme-ai"].plan.charges[2]
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    events = [(datetime(2025, 12, 20, tzinfo=UTC), {"region": "eu", "delta": 31}),
              (datetime(2026, 1, 11, tzinfo=UTC), {"region": "eu", "delta": -31}),
              (datetime(2026, 1, 17, tzinfo=UTC), {"region": "us", "delta": 62})]
    split = split_weighted("delta", charge.filters, charge.group_by, events, start, end)
    # eu: 31 seats for 10 of 31 days = 10; us: 62 seats for 15 of 31 days = 30; the meter: 40
    assert [(key, usage.quantity, usage.events) for key, usage in split.parts] == [
        ((None, ("eu",)), D(10), 1), ((None, ("us",)), D(30), 1)]
    whole = aggregate("weighted_sum", [Sample(at, D(p["delta"])) for at, p in events[1:]], start, end, D(31))
    assert whole.quantity == split.quantity == D(40)
    cut = invoice_cuts(SCHEDULE, end)[1]
    lines = [line for line in rate_cut(Plan("p", "EUR", "month", (charge,)), cut, {charge.usage_key: split}, EUR)]
    assert [(line.group, line.amount) for line in lines] == [((("region", "eu"),), D("10.00")),
                                                            ((("region", "us"),), D("30.00"))]


def test_more_groups_than_a_charge_may_have_lines_is_a_failure_naming_the_charge() -> None:
    plan = _catalog().subscriptions["acme-ai"].plan
    with pytest.raises(RatingError) as failure:
        _lines(plan, {"calls": [{"project_id": f"p{index}"} for index in range(MAX_GROUPS + 1)]})
    assert failure.value.charge == "api"
    assert f"{MAX_GROUPS + 1} (filter, group) lines in one period" in str(failure.value)


def _problems(document: Any) -> list[str]:
    return [str(problem) for problem in check_document(document)[1]]


def test_catalog_check_names_each_problem_of_filters_and_group_by() -> None:
    document = yaml.safe_load(LLM)
    charges = document["plans"][0]["charges"]
    charges[0]["filters"] += [{"code": "gpt4o", "match": {}, "tiers": []}, {"code": "x", "match": {"model": []}}]
    charges[1]["group_by"] = ["project_id", "project_id", "a", "b"]
    charges.append({"code": "f", "model": "flat", "amount": "1", "filters": []})
    assert _problems(document) == [
        "plans[0].charges[1].group_by: List should have at most 3 items after validation, not 4",
        "plans[0].charges[0].filters[2].code: 'gpt4o' is already used by plans[0].charges[0].filters[0]",
        "plans[0].charges[0].filters[2].match: must name at least one property",
        "plans[0].charges[0].filters[2].tiers: is not used by model per_unit",
        "plans[0].charges[0].filters[3].match.model: must list at least one value",
        "plans[0].charges[2].filters: a flat charge is not metered: it has no usage to split",
    ]


def test_a_filter_override_names_a_filter_of_the_charge_and_price_fields_only() -> None:
    document = yaml.safe_load(LLM)
    document["subscriptions"][0]["overrides"] = {"llm": {"filters": {"gpt5": {"unit_amount": "1"},
                                                                    "gpt4o": {"match": {"model": ["x"]}}}}}
    assert _problems(document) == [
        "subscriptions[0].overrides.llm.filters.gpt5: charge 'llm' has no filter 'gpt5' (its filters: gpt4o, mini)",
        "subscriptions[0].overrides.llm.filters.gpt4o.match: is not a price field a subscription may override "
        "(one of unit_amount, tiers, package_size, package_amount, free_units, rate, fixed_amount)",
    ]


MODELS = st.sampled_from(["gpt-4o", "gpt-4o-mini", "claude-3", "", 1, True])
EVENTS = st.lists(st.fixed_dictionaries({"model": MODELS, "tokens": st.integers(0, 10**9),
                                         "project_id": st.sampled_from(["a", "b", None, 7])}), max_size=40)


@settings(max_examples=60, deadline=None)
@given(EVENTS, st.sampled_from(["sum", "count"]), st.booleans())
def test_filter_and_group_lines_add_up_to_the_meter(events: list[dict[str, Any]], aggregation: str,
                                                    grouped: bool) -> None:
    text = LLM if not grouped else LLM.replace("        filters:\n", "        group_by: [project_id]\n        filters:\n")
    charge = _catalog(text).subscriptions["acme-ai"].plan.charges[0]
    items = [(JAN + timedelta(seconds=index), properties) for index, properties in enumerate(events)]
    field = "tokens" if aggregation == "sum" else None
    split = split_usage(aggregation, field, charge.filters, charge.group_by, items)
    whole = aggregate(aggregation, [Sample(at, D(properties["tokens"])) for at, properties in items])
    assert sum((usage.quantity for _, usage in split.parts), D(0)) == whole.quantity
    assert sum(usage.events for _, usage in split.parts) == whole.events == len(events)
    # each event in exactly one part: the first filter matching it, else the default
    for (code, _group), usage in split.parts:
        expected = {"gpt4o": ["gpt-4o"], "mini": ["gpt-4o-mini"]}.get(code or "")
        taken = [e for e in events if (e["model"] in expected if expected else e["model"] not in ("gpt-4o", "gpt-4o-mini"))]
        if not grouped:
            assert usage.events == len(taken)
