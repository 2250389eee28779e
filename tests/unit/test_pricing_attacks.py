"""Pricing features meeting each other and hostile input: each case here is a bug that was found by
combining two features (or feeding a field an exotic value), with the figures a user sees."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ratecard.domain.aggregation import Usage
from ratecard.domain.dimensions import Split

from .subscription_cuts import at, catalog_of, invoices, shown

D = Decimal


def _document(charge: dict[str, Any], subscription: dict[str, Any] | None = None,
              meter: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "billing_entity": {"name": "Acme", "currency": "USD", "timezone": "UTC"},
        "meters": [meter or {"code": "api_calls", "aggregation": "count"}],
        "plans": [{"code": "pro", "name": "Pro", "currency": "USD", "charges": [charge]}],
        "customers": [{"reference": "c1", "currency": "USD"}],
        "subscriptions": [{"reference": "s1", "customer": "c1", "plan": "pro", "start": "2026-01-01",
                           **(subscription or {})}],
    }


def _usage_key(document: dict[str, Any]) -> str:
    return catalog_of(document).plans["pro"].charges[0].usage_key


# --- a free trial prices everything at zero: filters' own prices and per-event minimums included ---

def test_trial_prices_a_filters_events_at_zero() -> None:
    # calls: 0.10 each, gpt4o calls 1.00 each; trial for all of January. 10 gpt4o calls and 5 others
    # in January: every line of the trial at 0.00.
    document = _document({"code": "calls", "meter": "api_calls", "model": "per_unit", "unit_amount": "0.10",
                          "filters": [{"code": "gpt4o", "match": {"model": ["gpt-4o"]}, "unit_amount": "1.00"}]},
                         {"trial_days": 31})
    key = _usage_key(document)
    split = Split.of({("gpt4o", ()): Usage(D(10), 10), (None, ()): Usage(D(5), 5)})

    def usage(start: datetime, end: datetime) -> dict[str, Usage]:
        return {key: split}

    bills = invoices(catalog_of(document), "s1", date(2026, 2, 1), usage)
    february = bills[at(date(2026, 2, 1))]
    assert [(kind, code, quantity, amount) for kind, code, quantity, _, amount in shown(february)] == [
        ("usage", "calls", "10", "0.00"), ("usage", "calls", "5", "0.00")]


def test_trial_prices_per_event_minimum_fees_at_zero() -> None:
    # card fees 2% with at least 0.50 per payment; trial for all of January: 3 payments of 10.00 in
    # January bill 0.00 (not 3 x 0.50 = 1.50).
    document = _document({"code": "fees", "meter": "volume", "model": "percentage", "rate": "2",
                          "per_transaction_min_amount": "0.50"}, {"trial_days": 31},
                         {"code": "volume", "aggregation": "sum", "field": "amount"})

    def usage(start: datetime, end: datetime) -> dict[str, Usage]:
        return {"volume": Usage(D(30), 3, values=(D(10), D(10), D(10)))}

    bills = invoices(catalog_of(document), "s1", date(2026, 2, 1), usage)
    february = bills[at(date(2026, 2, 1))]
    assert [(code, amount) for _, code, _, _, amount in shown(february)] == [("fees", "0.00")]


# --- hostile catalog values: one problem, at the path the user wrote ---

def _problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    from ratecard.catalog import check_document

    _, problems = check_document(document)
    return [(problem.path, problem.message) for problem in problems]


def _filters(count: int, **price: str) -> list[dict[str, Any]]:
    return [{"code": f"f{index}", "match": {"model": [f"m{index}"]}, **price} for index in range(count)]


def test_a_charge_field_out_of_range_is_reported_once_not_again_for_each_filter() -> None:
    document = _document({"code": "calls", "meter": "api_calls", "model": "per_unit", "unit_amount": "0.10",
                          "maximum": "1e30", "filters": _filters(3, unit_amount="1.00")})
    assert [path for path, _ in _problems(document)] == ["plans[0].charges[0].maximum"]


def test_a_filters_own_field_out_of_range_is_reported_at_the_filter() -> None:
    document = _document({"code": "calls", "meter": "api_calls", "model": "per_unit", "unit_amount": "0.10",
                          "filters": _filters(2, unit_amount="1e30")})
    assert [path for path, _ in _problems(document)] == ["plans[0].charges[0].filters[0].unit_amount",
                                                         "plans[0].charges[0].filters[1].unit_amount"]


def test_a_match_value_that_is_an_object_or_null_is_one_clear_problem() -> None:
    for value in ({"a": 1}, None, [1]):
        document = _document({"code": "calls", "meter": "api_calls", "model": "per_unit", "unit_amount": "0.10",
                              "filters": [{"code": "x", "match": {"model": ["ok", value]}, "unit_amount": "1"}]})
        problems = _problems(document)
        assert [path for path, _ in problems] == ["plans[0].charges[0].filters[0].match.model[1]"], problems
        assert "a text, a number or a boolean" in problems[0][1]


# --- an amount off is money on a line: rounded to the currency's minor unit like every line ---

def _fee_document(currency: str, fee: str, discount: dict[str, Any]) -> dict[str, Any]:
    return {"billing_entity": {"name": "Acme", "currency": currency, "timezone": "UTC"},
            "meters": [{"code": "api_calls", "aggregation": "count"}],
            "plans": [{"code": "pro", "currency": currency,
                       "charges": [{"code": "base", "model": "flat", "amount": fee, "timing": "arrears"}]}],
            "customers": [{"reference": "c1", "currency": currency}],
            "subscriptions": [{"reference": "s1", "customer": "c1", "plan": "pro", "start": "2026-01-01",
                               "discounts": [discount]}]}


def test_an_amount_off_finer_than_the_currency_is_rounded_once_on_its_line() -> None:
    # 0.005 EUR off a 10.00 fee: the line takes 0.01 (half up), the invoice totals 9.99, never 9.995;
    # 1.0005 KWD (3 decimals) off 3.333 takes 1.001; 500.5 JPY (none) off 1000 takes 501
    for currency, fee, off, line in (("EUR", "10.00", "0.005", "-0.01"), ("KWD", "3.333", "1.0005", "-1.001"),
                                     ("JPY", "1000", "500.5", "-501")):
        document = _fee_document(currency, fee, {"code": "off", "amount_off": off})
        february = invoices(catalog_of(document), "s1", date(2026, 2, 1))[at(date(2026, 2, 1))]
        assert [(kind, amount) for kind, _, _, _, amount in shown(february)] == [("arrears", fee), ("discount", line)]


# --- a plan in several currencies: the per-event amounts of a percentage charge are prices too ---

def _card_fees(currencies: dict[str, Any], customer_currency: str = "JPY") -> dict[str, Any]:
    return {"billing_entity": {"name": "Acme", "currency": "USD", "timezone": "UTC"},
            "meters": [{"code": "volume", "aggregation": "sum", "field": "amount"}],
            "plans": [{"code": "pro", "currency": "USD",
                       "charges": [{"code": "fees", "meter": "volume", "model": "percentage", "rate": "2",
                                    "per_transaction_min_amount": "0.50", "per_transaction_max_amount": "15.00",
                                    "free_units_per_total_aggregation": "100.00"}],
                       "currencies": currencies}],
            "customers": [{"reference": "c1", "currency": customer_currency}],
            "subscriptions": [{"reference": "s1", "customer": "c1", "plan": "pro", "start": "2026-01-01"}]}


def test_per_event_amounts_are_required_in_each_currency_of_the_plan() -> None:
    # without them, a JPY customer would pay at least 0.50 JPY (not 75 JPY) a payment, at most 15 JPY
    problems = dict(_problems(_card_fees({"JPY": {"charges": {"fees": {}}}})))
    for name in ("per_transaction_min_amount", "per_transaction_max_amount", "free_units_per_total_aggregation"):
        assert f"plans[0].currencies.JPY.charges.fees.{name}" in problems, problems


def test_per_event_amounts_in_another_currency_price_its_customers() -> None:
    # JPY: at least 75, at most 2,250 a payment; the first 15,000 of the volume free. Payments of
    # 10,000 (free), 10,000 (5,000 free: 2% of 5,000 = 100), 1,000 (20 -> 75), 200,000 (4,000 -> 2,250):
    # 100 + 75 + 2,250 = 2,425 JPY
    document = _card_fees({"JPY": {"charges": {"fees": {"per_transaction_min_amount": "75",
                                                        "per_transaction_max_amount": "2250",
                                                        "free_units_per_total_aggregation": "15000"}}}})
    values = (D(10_000), D(10_000), D(1_000), D(200_000))

    def usage(start: datetime, end: datetime) -> dict[str, Usage]:
        return {"volume": Usage(sum(values, D(0)), len(values), values=values)}

    february = invoices(catalog_of(document), "s1", date(2026, 2, 1), usage)[at(date(2026, 2, 1))]
    assert [(code, amount) for _, code, _, _, amount in shown(february)] == [("fees", "2425")]


# --- a graduated_percentage filter's tiers are checked like the charge's ---

def _payouts(filter_tiers: list[dict[str, Any]]) -> dict[str, Any]:
    return _document({"code": "payouts", "meter": "volume", "model": "graduated_percentage",
                      "tiers": [{"up_to": "1000", "rate": "1"}, {"up_to": None, "rate": "0.5"}],
                      "filters": [{"code": "eu", "match": {"region": ["eu"]}, "tiers": filter_tiers}]},
                     meter={"code": "volume", "aggregation": "sum", "field": "amount"})


def test_a_graduated_percentage_filters_tiers_need_rates_and_an_unbounded_last_tier() -> None:
    at_filter = "plans[0].charges[0].filters[0]"
    # a unit amount instead of a rate: its events would be billed at 0%
    problems = dict(_problems(_payouts([{"up_to": None, "unit_amount": "1"}])))
    assert set(problems) == {f"{at_filter}.tiers[0].rate", f"{at_filter}.tiers[0].unit_amount"}, problems
    # a bounded last tier: the amount above 100 would be billed nothing
    problems = dict(_problems(_payouts([{"up_to": "100", "rate": "2"}])))
    assert problems == {f"{at_filter}.tiers[0].up_to": "the last tier must be unbounded (up_to: null)"}
    # bounds not increasing
    problems = dict(_problems(_payouts([{"up_to": "100", "rate": "2"}, {"up_to": "50", "rate": "1"},
                                        {"up_to": None, "rate": "1"}])))
    assert problems == {f"{at_filter}.tiers[1].up_to": "must be greater than 100"}
    assert _problems(_payouts([{"up_to": "100", "rate": "2"}, {"up_to": None, "rate": "1"}])) == []
