"""`invoice_threshold` (plans and subscriptions) and `timing: advance` on usage charges in the
catalog: accepted when valid, each problem reported at its own path."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ratecard.catalog import build_catalog, check_document


def _catalog(plan_threshold: object = "500.00", subscription_threshold: object = None,
             timing: str | None = "advance") -> dict:
    subscription: dict = {"reference": "acme-ai", "customer": "acme", "plan": "ai", "start": "2026-01-01"}
    if subscription_threshold is not None:
        subscription["invoice_threshold"] = subscription_threshold
    calls: dict = {"code": "calls", "meter": "calls", "model": "per_unit", "unit_amount": "0.01"}
    if timing is not None:
        calls["timing"] = timing
    plan: dict = {"code": "ai", "currency": "EUR", "charges": [calls]}
    if plan_threshold is not None:
        plan["invoice_threshold"] = plan_threshold
    return {"meters": [{"code": "calls", "aggregation": "count"}], "plans": [plan],
            "customers": [{"reference": "acme", "currency": "EUR"}], "subscriptions": [subscription]}


def _problems(document: dict) -> dict[str, str]:
    found, problems = check_document(document)
    assert (found is None) == bool(problems)
    return {problem.path: problem.message for problem in problems}


def test_thresholds_and_a_usage_charge_in_advance_are_valid() -> None:
    document, problems = check_document(_catalog(subscription_threshold="100.00"))
    assert problems == [] and document is not None
    catalog = build_catalog(document)
    subscription = catalog.subscriptions["acme-ai"]
    assert subscription.invoice_threshold == Decimal("100.00")
    assert subscription.plan.threshold == Decimal("500.00")
    assert subscription.plan.charges[0].timing == "advance"
    assert subscription.bills_early


def test_without_threshold_or_usage_in_advance_nothing_is_billed_early() -> None:
    document, problems = check_document(_catalog(plan_threshold=None, timing="arrears"))
    assert problems == [] and document is not None
    assert not build_catalog(document).subscriptions["acme-ai"].bills_early


@pytest.mark.parametrize(("plan", "subscription", "path"), [
    ("0", None, "plans[0].invoice_threshold"),
    ("-5", None, "plans[0].invoice_threshold"),
    ("lots", None, "plans[0].invoice_threshold"),
    ("1e400", None, "plans[0].invoice_threshold"),
    (None, "0.00", "subscriptions[0].invoice_threshold"),
    (None, ["100"], "subscriptions[0].invoice_threshold"),
])
def test_a_bad_threshold_is_reported_at_its_path(plan: object, subscription: object, path: str) -> None:
    problems = _problems(_catalog(plan, subscription))
    assert list(problems) == [path], problems


def test_timing_is_advance_or_arrears() -> None:
    assert list(_problems(_catalog(timing="upfront"))) == ["plans[0].charges[0].timing"]
