"""Caps (`maximum`) and prices in several currencies in the catalog (docs/catalog.md): every problem
at its own path, and a subscription priced in its customer's currency."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.catalog import build_catalog, check_document
from ratecard.domain.aggregation import Usage
from ratecard.domain.caps import PlanCap
from ratecard.domain.money import minor_units, quantize
from ratecard.domain.rating import invoice_cuts, invoice_totals, rate_cut

D = Decimal
PLAN: dict = {
    "code": "pro", "currency": "EUR", "minimum": "100.00",
    "maximum": {"amount": "900.00", "charges": ["tokens", "calls"]},
    "charges": [
        {"code": "base", "model": "flat", "amount": "49.00"},
        {"code": "tokens", "meter": "tokens", "model": "graduated", "maximum": "500.00",
         "tiers": [{"up_to": 1000, "unit_amount": "0"}, {"up_to": None, "unit_amount": "0.002", "flat_amount": "5"}]},
        {"code": "calls", "meter": "calls", "model": "per_unit", "unit_amount": "0.0001"},
        {"code": "fees", "meter": "calls", "model": "percentage", "rate": "1.5"}],
    "currencies": {
        "USD": {"minimum": "110.00", "maximum": "990.00", "charges": {
            "base": {"amount": "55.00"},
            "tokens": {"maximum": "550.00", "tiers": [{"up_to": 1000, "unit_amount": "0"},
                                                      {"up_to": None, "unit_amount": "0.0022", "flat_amount": "6"}]},
            "calls": {"unit_amount": "0.00011"}}},
        "JPY": {"minimum": "15000", "maximum": "135000", "charges": {
            "base": {"amount": "7500"},
            "tokens": {"maximum": "75000", "tiers": [{"up_to": 1000, "unit_amount": "0"},
                                                     {"up_to": None, "unit_amount": "0.3", "flat_amount": "750"}]},
            "calls": {"unit_amount": "0.015"}}}},
}


def _catalog(plan: dict | None = None, **changes: object) -> dict:
    document: dict = {
        "meters": [{"code": "tokens", "aggregation": "sum", "field": "tokens"}, {"code": "calls", "aggregation": "count"}],
        "plans": [copy.deepcopy(plan or PLAN)],
        "customers": [{"reference": "eu", "currency": "EUR"}, {"reference": "us", "currency": "USD"},
                      {"reference": "jp", "currency": "JPY"}, {"reference": "any"}],
        "subscriptions": [{"reference": f"{c}-pro", "customer": c, "plan": "pro", "start": "2026-01-01"}
                          for c in ("eu", "us", "jp", "any")],
    }
    document.update(changes)
    return document


def _problems(document: dict) -> dict[str, str]:
    found, problems = check_document(document)
    assert (found is None) == bool(problems)
    return {problem.path: problem.message for problem in problems}


def test_each_customer_gets_the_plan_in_its_currency() -> None:
    document, problems = check_document(_catalog())
    assert problems == [] and document is not None
    catalog = build_catalog(document)
    eu, us, jp, any_ = (catalog.subscriptions[f"{c}-pro"] for c in ("eu", "us", "jp", "any"))
    assert [s.plan.currency for s in (eu, us, jp, any_)] == ["EUR", "USD", "JPY", "EUR"]
    assert [catalog.pricing_for(s).currency for s in (eu, us, jp, any_)] == ["EUR", "USD", "JPY", "EUR"]
    charges = {c.code: c for c in us.plan.charges}
    assert (charges["base"].amount, charges["calls"].unit_amount, charges["tokens"].maximum) == \
        (D("55.00"), D("0.00011"), D("550.00"))
    assert charges["tokens"].tiers[1].unit_amount == D("0.0022") and charges["fees"].rate == D("1.5")
    assert (us.plan.minimum, us.plan.maximum) == (D("110.00"), PlanCap(D("990.00"), ("tokens", "calls")))
    assert us.list_plan == us.plan  # the list price, in the customer's currency
    assert (eu.plan.minimum, eu.plan.maximum) == (D("100.00"), PlanCap(D("900.00"), ("tokens", "calls")))


def test_overrides_are_laid_over_the_prices_of_the_subscriptions_currency() -> None:
    document = _catalog()
    document["subscriptions"][1]["overrides"] = {"base": {"amount": "40.00"}}
    found, problems = check_document(document)
    assert problems == [] and found is not None
    plan = build_catalog(found).subscriptions["us-pro"].plan
    charges = {c.code: c for c in plan.charges}
    assert (plan.currency, charges["base"].amount, charges["calls"].unit_amount) == ("USD", D("40.00"), D("0.00011"))


def test_a_customer_currency_the_plan_has_no_prices_in_names_the_subscription() -> None:
    document = _catalog(customers=[{"reference": c, "currency": "GBP" if c == "us" else None} for c in
                                   ("eu", "us", "jp", "any")])
    assert _problems(document) == {
        "subscriptions[1].plan": "plan 'pro' has no prices in GBP (it bills in EUR, USD, JPY) but customer 'us' "
                                 "of subscription 'us-pro' is billed in GBP"}


def test_every_price_is_given_in_each_currency_and_only_prices() -> None:
    plan = copy.deepcopy(PLAN)
    usd = plan["currencies"]["USD"]
    del usd["minimum"]
    del usd["charges"]["calls"]
    usd["charges"]["tokens"]["rate"] = "2"
    usd["charges"]["nope"] = {"amount": "1"}
    usd["charges"]["base"]["maximum"] = "1.00"
    plan["currencies"]["EUR"] = {}
    plan["currencies"]["XYZ"] = {}
    assert _problems(_catalog(plan))["plans[0].currencies.XYZ"] == \
        "unknown currency 'XYZ' (expected an ISO 4217 code such as EUR)"
    del plan["currencies"]["XYZ"]
    assert _problems(_catalog(plan)) == {
        "plans[0].currencies.USD.minimum": "is required: the plan has a minimum (in EUR)",
        "plans[0].currencies.USD.charges.tokens.rate": "is not a price (a currency gives amount, unit_amount, tiers, "
                                                       "package_amount, fixed_amount, maximum, "
                                                       "per_transaction_min_amount, per_transaction_max_amount, "
                                                       "free_units_per_total_aggregation)",
        "plans[0].currencies.USD.charges.nope": "plan 'pro' has no charge 'nope'",
        "plans[0].currencies.USD.charges.base.maximum": "the plan's charge 'base' has no maximum",
        "plans[0].currencies.USD.charges.calls.unit_amount": "is required: the plan's charge 'calls' has a "
                                                             "unit_amount in EUR, and each currency gives every price",
        "plans[0].currencies.EUR": "is the plan's own currency: its prices in EUR are the plan's",
    }


def test_a_changed_plan_must_bill_in_the_subscriptions_currency() -> None:
    other = {"code": "basic", "currency": "EUR", "charges": [{"code": "base", "model": "flat", "amount": "9.00"}]}
    document = _catalog()
    document["plans"].append(other)
    document["subscriptions"][1]["changes"] = [{"at": "2026-03-01", "plan": "basic"}]
    document["subscriptions"][0]["changes"] = [{"at": "2026-03-01", "plan": "basic"}]
    assert _problems(document) == {
        "subscriptions[1].changes[0].plan": "plan 'basic' bills monthly in EUR; a change keeps the subscription's "
                                            "monthly periods in USD (end it and start a new subscription instead)"}


def test_amounts_off_respect_the_currency_billed_in() -> None:
    document = _catalog(coupons=[{"code": "TEN", "amount_off": "10.00", "currency": "EUR", "duration": "once"}])
    document["subscriptions"][1]["coupons"] = ["TEN"]
    document["subscriptions"][0]["coupons"] = ["TEN"]
    assert _problems(document) == {
        "subscriptions[1].coupons[0]": "coupon 'TEN' takes 10.00 EUR off but subscription 'us-pro' is billed in USD"}
    plan = copy.deepcopy(PLAN)
    plan["discounts"] = [{"code": "launch", "amount_off": "5.00"}]
    problems = _problems(_catalog(plan))
    assert problems["subscriptions[1].plan"] == ("plan 'pro' takes 5.00 EUR off (its discount 'launch') but "
                                                 "subscription 'us-pro' is billed in USD: an amount off is in the "
                                                 "plan's currency")
    assert set(problems) == {"subscriptions[1].plan", "subscriptions[2].plan"}


def test_caps_are_validated_with_their_paths() -> None:
    plan = copy.deepcopy(PLAN)
    plan["currencies"] = {}
    plan["maximum"] = {"amount": "-1", "charges": ["base", "nope"]}
    plan["charges"][0]["maximum"] = "10.00"
    plan["charges"][2]["maximum"] = "1e40"
    problems = _problems(_catalog(plan))
    assert problems["plans[0].maximum.amount"] == "must not be negative, got -1"
    assert problems["plans[0].charges[0].maximum"] == "a flat fee is not capped: a maximum caps a usage charge"
    assert problems["plans[0].charges[2].maximum"].startswith("1E+40 is out of range")
    plan["maximum"] = {"amount": "10", "charges": ["base", "nope"]}
    problems = _problems(_catalog(plan))
    assert problems["plans[0].maximum.charges[0]"] == "charge 'base' is a flat fee: a maximum caps usage charges"
    assert problems["plans[0].maximum.charges[1]"] == "plan 'pro' has no charge 'nope'"
    plan["maximum"] = {"amount": "10", "charges": []}
    assert "plans[0].maximum.charges" in _problems(_catalog(plan))
    plan["charges"][3]["code"] = "maximum"
    assert _problems(_catalog(plan))["plans[0].charges[3].code"] == (
        "'maximum' is the code of a cap's invoice lines (maximum, maximum:<charge>); choose another")
    plan["charges"][3]["code"] = "fees"
    plan["maximum"] = ["500.00"]
    assert _problems(_catalog(plan))["plans[0].maximum"] == ('must be an amount such as "500.00", or {amount, '
                                                             'charges: [code, ...]}')


def test_a_plan_maximum_is_a_string_or_an_amount_with_charges() -> None:
    plan = copy.deepcopy(PLAN)
    plan["currencies"] = {}
    plan["maximum"] = "700.00"
    euro_only = [{"reference": "eu-pro", "customer": "eu", "plan": "pro", "start": "2026-01-01"}]
    found, problems = check_document(_catalog(plan, subscriptions=euro_only))
    assert problems == [] and found is not None
    assert build_catalog(found).subscriptions["eu-pro"].plan.maximum == PlanCap(D("700.00"))
    # an override caps one subscription's charge
    document = _catalog(plan, subscriptions=euro_only)
    document["subscriptions"][0]["overrides"] = {"calls": {"maximum": "20.00"}}
    found, problems = check_document(document)
    assert problems == [] and found is not None
    charges = {c.code: c for c in build_catalog(found).subscriptions["eu-pro"].plan.charges}
    assert charges["calls"].maximum == D("20.00") and charges["tokens"].maximum == D("500.00")


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["USD", "JPY", "EUR"]), st.decimals(min_value=0, max_value=10**6, places=4,
                                                           allow_nan=False, allow_infinity=False))
def test_a_currency_price_is_used_as_given_never_converted(currency: str, amount: Decimal) -> None:
    plan = copy.deepcopy(PLAN)
    if currency == "EUR":
        plan["charges"][0]["amount"] = f"{amount:f}"
    else:
        plan["currencies"][currency]["charges"]["base"]["amount"] = f"{amount:f}"
    found, problems = check_document(_catalog(plan))
    assert problems == [] and found is not None
    subscription = next(s for s in build_catalog(found).subscriptions.values() if s.plan.currency == currency)
    assert subscription.plan.charges[0].amount == amount


@settings(max_examples=40, deadline=None)
@given(st.decimals(min_value=0, max_value=1000, places=5, allow_nan=False, allow_infinity=False),
       st.integers(min_value=0, max_value=10**6), st.sampled_from(["eu", "us", "jp"]))
def test_each_invoice_is_priced_and_rounded_in_its_customers_currency(unit: Decimal, calls: int,
                                                                      customer: str) -> None:
    plan = copy.deepcopy(PLAN)
    currency = {"eu": "EUR", "us": "USD", "jp": "JPY"}[customer]
    if currency == "EUR":
        plan["charges"][2]["unit_amount"] = f"{unit:f}"
    else:
        plan["currencies"][currency]["charges"]["calls"]["unit_amount"] = f"{unit:f}"
    found, problems = check_document(_catalog(plan))
    assert problems == [] and found is not None
    catalog = build_catalog(found)
    subscription = catalog.subscriptions[f"{customer}-pro"]
    pricing = catalog.pricing_for(subscription)
    cut = invoice_cuts(subscription.schedule(), datetime(2026, 2, 1, tzinfo=UTC))[1]
    lines = rate_cut(subscription.terms(), cut, {"calls": Usage(D(calls), calls), "tokens": Usage.zero()}, pricing)
    assert pricing.currency == currency
    calls_line = next(line for line in lines if line.code == "calls")
    assert calls_line.amount == quantize(D(calls) * unit, currency)
    for line in lines:
        assert line.amount == quantize(line.amount, currency)
        assert -line.amount.as_tuple().exponent == minor_units(currency)
    totals = invoice_totals(lines, pricing)
    assert totals.total == quantize(totals.total, currency)
