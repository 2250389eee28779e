"""Discounts and coupons in the catalog (docs/catalog.md#discounts-and-coupons): every problem at
its own path, and each one resolved to the periods it covers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ratecard.catalog import build_catalog, check_document


def _catalog(**changes: object) -> dict:
    document: dict = {
        "meters": [{"code": "calls", "aggregation": "count"}],
        "plans": [{"code": "pro", "currency": "EUR", "charges": [
            {"code": "base", "model": "flat", "amount": "100.00", "timing": "arrears"},
            {"code": "calls", "meter": "calls", "model": "per_unit", "unit_amount": "0.50"}],
            "discounts": [{"code": "launch", "percent_off": "10", "periods": 3}]}],
        "customers": [{"reference": "acme", "currency": "EUR"}, {"reference": "beta", "currency": "EUR"}],
        "coupons": [{"code": "WELCOME", "amount_off": "20.00", "currency": "EUR", "duration": "once",
                     "max_redemptions": 1, "redeem_by": "2026-02-01"},
                    {"code": "HALF", "percent_off": "50", "duration": "repeating", "periods": 2}],
        "subscriptions": [
            {"reference": "acme-pro", "customer": "acme", "plan": "pro", "start": "2026-01-01",
             "discounts": [{"code": "loyal", "amount_off": "5.00", "charge": "calls"}], "coupons": ["WELCOME"]},
            {"reference": "beta-pro", "customer": "beta", "plan": "pro", "start": "2026-01-15", "billing_anchor": 1,
             "coupons": ["HALF"]}],
    }
    document.update(changes)
    return document


def _problems(document: dict) -> dict[str, str]:
    found, problems = check_document(document)
    assert (found is None) == bool(problems)
    return {problem.path: problem.message for problem in problems}


def test_a_valid_catalog_resolves_each_discount_to_its_periods() -> None:
    document, problems = check_document(_catalog())
    assert problems == [] and document is not None
    catalog = build_catalog(document)
    acme = catalog.subscriptions["acme-pro"].plan.discounts
    assert [(d.code, d.percent_off, d.amount_off, d.charge, d.until) for d in acme] == [
        ("launch", Decimal(10), None, None, datetime(2026, 4, 1, tzinfo=UTC)),  # 3 periods from the start
        ("loyal", None, Decimal("5.00"), "calls", None),  # forever
        ("WELCOME", None, Decimal("20.00"), None, datetime(2026, 2, 1, tzinfo=UTC)),  # once: the first period
    ]
    # beta's first period is short (Jan 15 -> Feb 1): two periods end on Mar 1
    beta = catalog.subscriptions["beta-pro"].plan.discounts
    assert [(d.code, d.until) for d in beta] == [("launch", datetime(2026, 4, 1, tzinfo=UTC)),
                                                 ("HALF", datetime(2026, 3, 1, tzinfo=UTC))]
    assert catalog.plans["pro"].discounts == ()  # the listed plan: resolved per subscription


def test_unknown_coupon_and_currency_mismatch() -> None:
    document = _catalog()
    document["subscriptions"][1]["coupons"] = ["NOPE", "USD10"]
    document["coupons"].append({"code": "USD10", "amount_off": "10", "currency": "USD", "duration": "forever"})
    problems = _problems(document)
    assert problems["subscriptions[1].coupons[0]"].startswith("unknown coupon 'NOPE'")
    assert problems["subscriptions[1].coupons[1]"] == ("coupon 'USD10' takes 10 USD off but plan 'pro' bills in EUR")


def test_redemption_limit_counts_across_subscriptions() -> None:
    document = _catalog()
    document["subscriptions"][1]["start"] = "2026-01-20"
    document["subscriptions"][1]["coupons"] = ["WELCOME"]
    assert _problems(document) == {
        "subscriptions[1].coupons[0]": "coupon 'WELCOME' can be redeemed 1 time(s), already by 'acme-pro'"}


def test_coupon_after_redeem_by() -> None:
    document = _catalog()
    document["subscriptions"][0]["start"] = "2026-02-02"
    problems = _problems(document)
    assert problems == {"subscriptions[0].coupons[0]": "coupon 'WELCOME' could be redeemed until 2026-02-01; "
                                                       "the subscription starts 2026-02-02"}


def test_discount_fields_are_checked() -> None:
    document = _catalog()
    document["plans"][0]["discounts"] = [
        {"code": "both", "percent_off": "10", "amount_off": "5"},
        {"code": "over", "percent_off": "150"},
        {"code": "ghost", "percent_off": "10", "charge": "nope"},
        {"code": "neg", "amount_off": "-5"},
        {"code": "huge", "amount_off": "1e400"},
        {"code": "zero", "percent_off": "10", "periods": 0},
        {"code": "launch", "percent_off": "10"},
        {"code": "launch", "amount_off": "10"},
    ]
    document["coupons"] = [{"code": "C", "amount_off": "5", "duration": "repeating"},
                           {"code": "C2", "percent_off": "5", "duration": "once", "periods": 3}]
    document["subscriptions"] = [{"reference": "s", "customer": "acme", "plan": "pro", "start": "2026-01-01",
                                  "discounts": [{"code": "launch", "percent_off": "5"}]}]
    problems = _problems(document)
    assert "exactly one of percent_off or amount_off" in problems["plans[0].discounts[0]"]
    assert "at most 100" in problems["plans[0].discounts[1].percent_off"]
    assert problems["plans[0].discounts[2].charge"] == "no charge 'nope' in plan 'pro'"
    assert "greater than 0" in problems["plans[0].discounts[3].amount_off"]
    assert "plans[0].discounts[4].amount_off" in problems
    assert "plans[0].discounts[5].periods" in problems
    assert problems["plans[0].discounts[7].code"] == "'launch' is already used by plans[0].discounts[6]"
    assert "amount_off needs a currency" in problems["coupons[0]"]
    assert "periods is required with duration repeating" in problems["coupons[1]"]
    # a subscription's discount code is a line code: it cannot repeat its plan's
    assert problems["subscriptions[0].discounts[0].code"] == "'launch' is already a discount of its plan"


def test_hostile_text_in_a_discount_is_refused_or_kept_as_text() -> None:
    document = _catalog()
    document["plans"][0]["discounts"] = [{"code": "=HYPERLINK(\"x\")", "percent_off": "10",
                                          "description": "<script>alert(1)</script>"},
                                         {"code": "tab\there", "percent_off": "10"}]
    problems = _problems(document)
    assert list(problems) == ["plans[0].discounts[1].code"]  # control characters
    # a line's code holds 200 characters: "discount:" and 191 of the discount's
    document["plans"][0]["discounts"][1] = {"code": "x" * 192, "percent_off": "10"}
    document["coupons"][0]["code"] = "y" * 192
    assert set(_problems(document)) == {"plans[0].discounts[1].code", "coupons[0].code",
                                        "subscriptions[0].coupons[0]"}
    document["plans"][0]["discounts"].pop()
    document["coupons"][0]["code"] = "WELCOME"
    found, _ = check_document(document)
    assert found is not None
    line_code = build_catalog(found).subscriptions["acme-pro"].plan.discounts[0].line_code
    assert line_code == "discount:=HYPERLINK(\"x\")"  # the exports neutralise formulas like any other text
