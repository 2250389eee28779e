"""`catalog check` on percentage charges' free units and per-transaction bounds, and on
graduated_percentage tiers: every problem at its path, in the plan and in a subscription's override."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import yaml

from ratecard.catalog import check_document
from ratecard.catalog.model import build_catalog
from ratecard.catalog.schema import Charge
from ratecard.catalog.validate import Problem, check_charge

CATALOG = """
meters:
  - {code: payments, aggregation: sum, field: amount}
  - {code: calls, aggregation: count}
plans:
  - code: pay
    currency: EUR
    charges:
      - code: card
        meter: payments
        model: percentage
        rate: "2"
        fixed_amount: "0.10"
        free_units_per_events: 3
        free_units_per_total_aggregation: "500.00"
        per_transaction_min_amount: "0.50"
        per_transaction_max_amount: "15.00"
      - code: volume
        meter: payments
        model: graduated_percentage
        tiers:
          - {up_to: "1000", rate: "1"}
          - {up_to: null, rate: "0.5", flat_amount: "5"}
      - {code: calls, meter: calls, model: per_unit, unit_amount: "0.01"}
customers:
  - {reference: acme, currency: EUR}
subscriptions:
  - {reference: acme-pay, customer: acme, plan: pay, start: 2026-01-01}
"""


def _document(**changes: Any) -> dict[str, Any]:
    document = yaml.safe_load(CATALOG)
    card, volume = document["plans"][0]["charges"][:2]
    card.update(changes.pop("card", {}))
    volume.update(changes.pop("volume", {}))
    document["subscriptions"][0].update(changes)
    return document


def _problems(document: dict[str, Any]) -> dict[str, str]:
    _, problems = check_document(document)
    return {problem.path: problem.message for problem in problems}


def test_the_catalog_is_valid_and_resolves_its_fields() -> None:
    document, problems = check_document(_document())
    assert problems == []
    assert document is not None
    catalog = build_catalog(document)
    card, volume, _ = catalog.plans["pay"].charges
    assert (card.free_units_per_events, card.free_units_per_total_aggregation, card.per_transaction_min_amount,
            card.per_transaction_max_amount) == (3, Decimal("500.00"), Decimal("0.50"), Decimal("15.00"))
    assert card.per_event
    assert [(tier.up_to, tier.rate, tier.flat_amount) for tier in volume.tiers] == [
        (Decimal(1000), Decimal(1), Decimal(0)), (None, Decimal("0.5"), Decimal(5))]
    # the store hands each event's value for the meter a charge prices event by event, only for it
    assert catalog.meters["payments"].per_event
    assert not catalog.meters["calls"].per_event


def test_each_field_is_validated_at_its_path() -> None:
    problems = _problems(_document(card={"free_units_per_events": -1, "free_units_per_total_aggregation": "-5",
                                         "per_transaction_min_amount": "abc", "per_transaction_max_amount": "1e30"}))
    assert set(problems) == {f"plans[0].charges[0].{name}" for name in (
        "free_units_per_events", "free_units_per_total_aggregation", "per_transaction_min_amount",
        "per_transaction_max_amount")}
    assert "negative" in problems["plans[0].charges[0].free_units_per_total_aggregation"]


def test_free_events_are_a_bounded_whole_number() -> None:
    for value in ("2.5", 2.5, Decimal("2.5"), 10**10, "-1", True, "three", [3], " 3", "3_0", "٣", "1e999999"):
        problems = _problems(_document(card={"free_units_per_events": value}))
        assert list(problems) == ["plans[0].charges[0].free_units_per_events"], value
    assert _problems(_document(card={"free_units_per_events": -1})) == {
        "plans[0].charges[0].free_units_per_events": "must be between 0 and 1,000,000,000, got -1"}
    # its digits as text, as `subscriptions change --override card.free_units_per_events=3` gives them
    document, problems = check_document(_document(card={"free_units_per_events": "3"}))
    assert problems == [] and document is not None
    assert build_catalog(document).plans["pay"].charges[0].free_units_per_events == 3


def test_the_minimum_must_not_exceed_the_maximum() -> None:
    problems = _problems(_document(card={"per_transaction_min_amount": "20.00"}))
    assert problems == {"plans[0].charges[0].per_transaction_min_amount":
                        "must not be greater than per_transaction_max_amount (15.00), got 20.00"}


def test_the_rules_belong_to_percentage_on_a_sum_meter() -> None:
    problems = _problems(_document(volume={"free_units_per_events": 2}))
    assert problems == {"plans[0].charges[1].free_units_per_events": "is not used by model graduated_percentage"}
    document = _document()
    document["plans"][0]["charges"][0]["meter"] = "calls"
    problems = _problems(document)
    assert list(problems) == ["plans[0].charges[0].free_units_per_events"]
    assert "aggregation sum" in problems["plans[0].charges[0].free_units_per_events"]


def test_graduated_percentage_tiers_take_a_rate_not_a_unit_amount() -> None:
    problems = _problems(_document(volume={"tiers": [{"up_to": "1000", "unit_amount": "0.01"},
                                                     {"up_to": "2000", "rate": "0.5"}]}))
    assert set(problems) == {"plans[0].charges[1].tiers[0].rate", "plans[0].charges[1].tiers[0].unit_amount",
                             "plans[0].charges[1].tiers[1].up_to"}
    assert problems["plans[0].charges[1].tiers[1].up_to"] == "the last tier must be unbounded (up_to: null)"
    problems = _problems(_document(volume={"model": "graduated"}))
    assert "plans[0].charges[1].tiers[0].rate" in problems


def test_a_subscription_overrides_the_rules_and_is_checked_too() -> None:
    document, problems = check_document(_document(overrides={
        "card": {"per_transaction_max_amount": "5.00", "free_units_per_events": 0},
        "volume": {"tiers": [{"up_to": None, "rate": "0.8"}]}}))
    assert problems == []
    assert document is not None
    card, volume, _ = build_catalog(document).subscriptions["acme-pay"].plan.charges
    assert card.per_transaction_max_amount == Decimal("5.00") and card.free_units_per_events == 0
    assert [tier.rate for tier in volume.tiers] == [Decimal("0.8")]
    problems = _problems(_document(overrides={"card": {"per_transaction_max_amount": "0.10"}}))
    assert problems == {"subscriptions[0].overrides.card.per_transaction_min_amount":
                        "must not be greater than per_transaction_max_amount (0.10), got 0.50"}


def test_an_override_of_a_tiered_charge_keeps_its_unbounded_tier() -> None:
    # overriding only the description keeps the plan's tiers, the last one still unbounded
    document, problems = check_document(_document(overrides={"volume": {"description": "Payment volume"}}))
    assert problems == []
    assert document is not None
    volume = build_catalog(document).subscriptions["acme-pay"].plan.charges[1]
    assert volume.description == "Payment volume" and volume.tiers[-1].up_to is None


def test_an_override_adding_a_rule_makes_the_meter_per_event() -> None:
    plain = yaml.safe_load(CATALOG)
    card = plain["plans"][0]["charges"][0]
    for name in ("free_units_per_events", "free_units_per_total_aggregation", "per_transaction_min_amount",
                 "per_transaction_max_amount"):
        del card[name]
    plain["subscriptions"][0]["overrides"] = {"card": {"per_transaction_max_amount": "9.00"}}
    checked, problems = check_document(plain)
    assert problems == [] and checked is not None
    catalog = build_catalog(checked)
    assert not catalog.plans["pay"].charges[0].per_event
    assert catalog.meters["payments"].per_event


def test_rules_over_one_series_refuse_charge_filters_and_group_by() -> None:
    fields = {"code": "card", "meter": "payments", "model": "percentage", "rate": "2"}
    split = {"filters": [{"code": "cards", "match": {"method": ["card"]}}], "group_by": ["country"]}
    problems: list[Problem] = []
    check_charge(Charge.model_validate({**fields, **split, "per_transaction_max_amount": "15.00"}),
                 "plans[0].charges[0]", {"payments"}, problems, {"payments": "sum"})
    assert {problem.path for problem in problems} == {"plans[0].charges[0].filters", "plans[0].charges[0].group_by"}
    assert "cannot be combined with per_transaction_max_amount" in problems[0].message
    problems = []
    check_charge(Charge.model_validate({**fields, **split}), "plans[0].charges[0]", {"payments"}, problems,
                 {"payments": "sum"})
    assert problems == []  # a plain percentage with filters is not this check's business
