"""Free trials: every amount zero until the trial's end (lines still shown, the reason in their
description), then the plan from the trial's end, its fees in advance prorated by days on an
invoice cut at the trial's end; the billing anchor stays. Hand-computed cases, then properties."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.aggregation import Usage

from .subscription_cuts import at, catalog_of, invoices, problems_of, shown

D = Decimal


def _document(subscription: dict[str, Any], plan_trial: int = 0, timezone: str = "UTC",
              fee: str = "31.00", price: str = "0.10") -> dict[str, Any]:
    return {
        "billing_entity": {"name": "Acme", "currency": "USD", "timezone": "UTC"},
        "meters": [{"code": "api_calls", "aggregation": "count"}],
        "plans": [{"code": "pro", "name": "Pro", "currency": "USD", "trial_days": plan_trial, "minimum": "40.00",
                   "charges": [{"code": "base", "model": "flat", "amount": fee, "timing": "advance",
                                "description": "Base fee"},
                               {"code": "calls", "model": "per_unit", "meter": "api_calls", "unit_amount": price,
                                "description": "API calls"}]}],
        "customers": [{"reference": "c1", "currency": "USD", "timezone": timezone}],
        "subscriptions": [{"reference": "s1", "customer": "c1", "plan": "pro", "start": "2026-01-01",
                           **subscription}],
    }


def _calls(before: int, after: int, split: datetime) -> Any:
    """`before` calls in a segment ending at or before `split`, `after` in one starting at or after it."""
    def usage(start: datetime, end: datetime) -> dict[str, Usage]:
        count = before if end <= split else after if start >= split else before + after
        return {"api_calls": Usage(Decimal(count), count)}
    return usage


def test_fourteen_days_from_january_first() -> None:
    # trial Jan 1 -> Jan 15 (local midnight 14 days after the start's day). Jan 1 invoice: the
    # fee at 0. Jan 15 invoice (cut at the trial's end): 31.00 x 17/31 = 17.00 for Jan 15 - Feb 1.
    # Feb 1 invoice: 100 calls of the trial at 0, 50 after at 0.10 = 5.00, February's fee 31.00;
    # the minimum 40.00 counts from the trial's end: 40 x 17/31 = 21.94 <= 17.00 + 5.00 = 22.00.
    catalog = catalog_of(_document({"trial_days": 14}))
    split = at(date(2026, 1, 15))
    assert catalog.subscriptions["s1"].trial_end() == split
    bills = invoices(catalog, "s1", date(2026, 2, 1), _calls(100, 50, split))
    assert list(bills) == [at(date(2026, 1, 1)), split, at(date(2026, 2, 1))]
    january, trial_end, february = bills.values()
    assert shown(january) == [("advance", "base", "1", "0", "0.00")]
    assert january[0].description == "Base fee (free trial until 2026-01-15)"
    assert shown(trial_end) == [("proration", "base", "1", "17.00", "17.00")]
    assert trial_end[0].description == "Remaining time on Pro from 2026-01-15 (prorated 17/31 days)"
    assert (trial_end[0].service_start, trial_end[0].service_end) == (split, at(date(2026, 2, 1)))
    assert shown(february) == [("advance", "base", "1", "31.00", "31.00"),
                               ("usage", "calls", "100", "0", "0.00"),
                               ("usage", "calls", "50", "0.10", "5.00")]
    assert february[1].description == "API calls (free trial until 2026-01-15)"
    assert february[2].description == "API calls"


def test_the_subscription_trial_wins_over_the_plan_and_zero_means_none() -> None:
    assert catalog_of(_document({}, plan_trial=30)).subscriptions["s1"].trial_end() == at(date(2026, 1, 31))
    assert catalog_of(_document({"trial_days": 7}, plan_trial=30)).subscriptions["s1"].trial_end() \
        == at(date(2026, 1, 8))
    no_trial = catalog_of(_document({"trial_days": 0}, plan_trial=30))
    assert no_trial.subscriptions["s1"].trial_end() is None
    assert shown(invoices(no_trial, "s1", date(2026, 1, 1))[at(date(2026, 1, 1))]) == \
        [("advance", "base", "1", "31.00", "31.00")]


def test_the_trial_ends_at_local_midnight_of_the_customer() -> None:
    # a start at 10:30 in Berlin on Jan 1 (09:30 UTC): the trial ends at midnight Jan 8 in Berlin
    catalog = catalog_of(_document({"trial_days": 7, "start": "2026-01-01T09:30:00Z"}, timezone="Europe/Berlin"))
    assert catalog.subscriptions["s1"].trial_end() == at(date(2026, 1, 8), "Europe/Berlin")


def test_a_trial_ending_on_a_period_boundary_needs_no_proration() -> None:
    # 31 days from Jan 1: the trial is January; February opens at the plan's prices
    bills = invoices(catalog_of(_document({"trial_days": 31})), "s1", date(2026, 2, 1), _calls(10, 0, at(date(2026, 2, 1))))
    assert list(bills) == [at(date(2026, 1, 1)), at(date(2026, 2, 1))]
    assert shown(bills[at(date(2026, 2, 1))]) == [("advance", "base", "1", "31.00", "31.00"),
                                                  ("usage", "calls", "10", "0", "0.00")]


def test_a_subscription_ending_inside_its_trial_bills_nothing() -> None:
    bills = invoices(catalog_of(_document({"trial_days": 30, "end": "2026-01-20"})), "s1", date(2026, 2, 1),
                     _calls(10, 0, at(date(2026, 1, 20))))
    assert all(line.amount == 0 for lines in bills.values() for line in lines)


def test_trial_days_are_validated_with_their_path() -> None:
    assert "subscriptions[0].trial_days" in problems_of(_document({"trial_days": -1}))
    assert "subscriptions[0].trial_days" in problems_of(_document({"trial_days": "14"}))
    assert "subscriptions[0].trial_days" in problems_of(_document({"trial_days": 731}))
    assert "plans[0].trial_days" in problems_of(_document({}, plan_trial=10_000))


@settings(max_examples=60, deadline=None)
@given(days=st.integers(min_value=1, max_value=80), start=st.integers(min_value=0, max_value=60),
       fee=st.decimals(min_value=0, max_value=10_000, places=2), price=st.decimals(min_value=0, max_value=5, places=3),
       before=st.integers(min_value=0, max_value=10_000), after=st.integers(min_value=0, max_value=10_000))
def test_a_trial_bills_zero_before_its_end_and_never_more_than_without_it(days: int, start: int, fee: Decimal,
                                                                           price: Decimal, before: int,
                                                                           after: int) -> None:
    begins = (date(2026, 1, 1) + timedelta(days=start)).isoformat()
    with_trial = catalog_of(_document({"trial_days": days, "start": begins}, fee=f"{fee}", price=f"{price}"))
    without = catalog_of(_document({"start": begins}, fee=f"{fee}", price=f"{price}"))
    split = with_trial.subscriptions["s1"].trial_end()
    assert split is not None
    until = date(2026, 6, 1)
    tried = invoices(with_trial, "s1", until, _calls(before, after, split))
    plain = invoices(without, "s1", until, _calls(before, after, split))
    for lines in tried.values():
        for line in lines:
            if line.service_end <= split:
                assert line.amount == 0  # nothing before the trial's end is billed
    assert sum(line.amount for lines in tried.values() for line in lines) <= \
        sum(line.amount for lines in plain.values() for line in lines)
    # from the first period after the trial on, invoices are those without a trial
    later = [boundary for boundary in plain if boundary > split + timedelta(days=100)]
    for boundary in later:
        assert shown(tried[boundary]) == shown(plain[boundary])


def test_a_trial_added_after_the_opening_was_billed_credits_its_days() -> None:
    # January's 31.00 was billed (final) before trial_days 14 was set: the trial's 14 days are
    # credited on the closing invoice, -31.00 x 14/31 = -14.00, and the rest stands as billed
    from ratecard.domain.rating import invoice_cuts, rate_cut
    from ratecard.domain.terms import Basis

    catalog = catalog_of(_document({"trial_days": 14}))
    spec = catalog.subscriptions["s1"]
    terms = spec.terms()
    closing = [cut for cut in invoice_cuts(spec.schedule(), at(date(2026, 2, 1)), terms)
               if cut.boundary == at(date(2026, 2, 1))][0]
    billed = {"base": Basis(D("31.00"), D("31.00"), at(date(2026, 2, 1)), "pro")}
    lines = rate_cut(terms, closing, [{}, {}], catalog.pricing_for(spec), basis=billed)
    assert shown([line for line in lines if line.kind == "proration"]) == [
        ("proration", "base", "1", "-14.00", "-14.00")]
    assert [line.description for line in lines if line.kind == "proration"] == [
        "Unused time from 2026-01-01 (prorated 14/31 days)"]
