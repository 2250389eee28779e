"""An invoice run prices what many subscriptions share once (billing.run.PriceCache): the fees of a
plan's period, their prorations and discounts, and the whole first invoice of every subscription
on one calendar. Every invoice must be the one priced on its own: same header, same lines."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.billing import run
from ratecard.billing.run import PriceCache, measured_usage, price_cut, subscription_cuts
from ratecard.domain import rating
from ratecard.domain.aggregation import Usage

from .subscription_cuts import catalog_of

ZONES = ("UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata")


def _document(subscriptions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "billing_entity": {"name": "Acme", "currency": "USD", "timezone": "UTC", "rounding": "half_up"},
        "meters": [{"code": "calls", "aggregation": "count"}],
        "plans": [
            {"code": "team", "currency": "USD", "minimum": "30.00",
             "discounts": [{"code": "launch", "percent_off": "10", "periods": 2}],
             "charges": [{"code": "base", "model": "flat", "amount": "19.99", "timing": "advance"},
                         {"code": "support", "model": "flat", "amount": "5.00", "timing": "arrears"},
                         {"code": "calls", "model": "graduated", "meter": "calls",
                          "tiers": [{"up_to": "100", "unit_amount": "0"},
                                    {"up_to": None, "unit_amount": "0.013", "flat_amount": "1"}]}]},
            {"code": "business", "currency": "USD",
             "charges": [{"code": "base", "model": "flat", "amount": "99.00", "timing": "advance"},
                         {"code": "calls", "model": "per_unit", "meter": "calls", "unit_amount": "0.01"}]},
        ],
        # a subscription is billed in its customer's time zone
        "customers": [{"reference": f"c{index}", "currency": "USD", "timezone": entry.get("timezone", "UTC"),
                       **({"tax_rate": "21"} if index % 3 == 0 else {})} for index, entry in enumerate(subscriptions)],
        "subscriptions": [{"reference": f"s{index}", "customer": f"c{index}",
                           **{key: value for key, value in entry.items() if key != "timezone"}}
                          for index, entry in enumerate(subscriptions)],
    }


subscription_entries = st.fixed_dictionaries(
    {"plan": st.sampled_from(("team", "business")),
     "start": st.sampled_from(("2026-01-01", "2026-01-01", "2026-01-03", "2026-01-11"))},
    optional={
        "timezone": st.sampled_from(ZONES),
        "quantity": st.integers(min_value=1, max_value=3),
        "trial_days": st.sampled_from((7, 14)),
        "end": st.sampled_from(("2026-02-20", "2026-03-01")),
        "billing_anchor": st.sampled_from((1, 15)),
        "changes": st.sampled_from(([{"at": "2026-01-20", "plan": "business"}],
                                    [{"at": "2026-02-10", "quantity": 2, "proration": "prorate"}],
                                    [{"at": "2026-02-05", "plan": "team", "proration": "invoice_now"}])),
        "one_off": st.just([{"code": "setup", "amount": "50.00", "at": "2026-02-15"}]),
        "bill_from": st.just("2026-02-01"),
    },
)


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(subscription_entries, min_size=1, max_size=8),
       calls=st.lists(st.integers(min_value=0, max_value=1_000), min_size=8, max_size=8),
       limit=st.sampled_from((1, 2, 20_000)))
def test_invoices_priced_with_the_run_cache_are_those_priced_one_by_one(entries: list[dict[str, Any]],
                                                                         calls: list[int], limit: int) -> None:
    # limit: the cache's maps emptied when full (1 and 2: at almost every cut)
    saved = run.CACHE_LIMIT, rating.SHARED_LIMIT
    run.CACHE_LIMIT = rating.SHARED_LIMIT = limit
    try:
        _compare(entries, calls)
    finally:
        run.CACHE_LIMIT, rating.SHARED_LIMIT = saved


def _compare(entries: list[dict[str, Any]], calls: list[int]) -> None:
    catalog = catalog_of(_document(entries))
    cache = PriceCache()
    calendars: dict[tuple, list] = {}  # shared cuts, as the run shares them between subscriptions
    compared = 0
    for index, subscription in enumerate(catalog.subscriptions.values()):
        until = datetime.combine(date(2026, 4, 1), time(0), tzinfo=ZoneInfo(subscription.timezone))
        for cut in subscription_cuts(subscription, until, calendars):
            usage = {"calls": Usage(Decimal(calls[index]), calls[index])}
            measured = [usage] * len(measured_usage({}, 0, subscription, cut, ["calls"]))
            alone = price_cut(catalog, 3, subscription, cut, measured)
            shared = price_cut(catalog, 3, subscription, cut, measured, cache=cache)
            assert shared == alone
            compared += 1
    assert compared > 0


def test_the_first_invoices_of_one_calendar_differ_only_by_customer_and_subscription() -> None:
    # two customers, one with tax: the cached first invoice of the first is not the second's
    catalog = catalog_of(_document([{"plan": "team", "start": "2026-01-01"}] * 4))
    cache = PriceCache()
    calendars: dict[tuple, list] = {}
    firsts = []
    for subscription in catalog.subscriptions.values():
        until = datetime.combine(date(2026, 1, 1), time(0), tzinfo=ZoneInfo("UTC"))
        (cut,) = subscription_cuts(subscription, until, calendars)
        (record,) = price_cut(catalog, 1, subscription, cut, [], cache=cache)
        firsts.append(record)
    assert [(r.customer, r.subscription) for r in firsts] == [("c0", "s0"), ("c1", "s1"), ("c2", "s2"), ("c3", "s3")]
    # 19.99 less the launch discount of 10% (2.00): 17.99; c0 and c3 pay 21% tax on it (3.78)
    assert [(r.subtotal, r.tax, r.total) for r in firsts] == [
        (Decimal("17.99"), Decimal("3.78"), Decimal("21.77")), (Decimal("17.99"), Decimal("0.00"), Decimal("17.99")),
        (Decimal("17.99"), Decimal("0.00"), Decimal("17.99")), (Decimal("17.99"), Decimal("3.78"), Decimal("21.77"))]
    assert all(r.lines == firsts[0].lines for r in firsts)
