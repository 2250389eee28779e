"""Pricing features meeting each other and hostile input: each case here is a bug that was found by
combining two features (or feeding a field an exotic value), with the figures a user sees."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.catalog import check_document
from ratecard.domain.aggregation import Usage
from ratecard.domain.caps import PlanCap, cap_lines
from ratecard.domain.dimensions import Split, split_usage
from ratecard.domain.early import early_instants, early_windows, plan_early
from ratecard.domain.invoice import Line
from ratecard.domain.money import quantize
from ratecard.domain.periods import Period
from ratecard.domain.pricing import Charge, ChargeFilter, Tier, price_usage
from ratecard.domain.rating import Cut, Plan, Pricing, rate_cut, split_lines
from ratecard.domain.terms import Terms, segments
from ratecard.domain.trials import with_trial

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


# --- invariants, as properties (domain only: fast) ---

JANUARY = Period(at(date(2026, 1, 1)), at(date(2026, 2, 1)), at(date(2026, 1, 1)), at(date(2026, 2, 1)))
PRICES = st.decimals(D(0), D(5), places=3)
VALUES = ["a", "b", "c"]


@st.composite
def priced(draw: Any, model: str) -> dict[str, Any]:
    """The price fields of one model, drawn."""
    if model == "per_unit":
        return {"unit_amount": draw(PRICES)}
    if model == "graduated":
        bound = draw(st.integers(1, 20))
        return {"tiers": (Tier(D(bound), draw(PRICES), draw(PRICES)), Tier(None, draw(PRICES), draw(PRICES)))}
    return {"package_size": D(draw(st.integers(1, 7))), "package_amount": draw(PRICES),
            "free_units": D(draw(st.integers(0, 5)))}


@st.composite
def split_charges(draw: Any) -> Charge:
    model = draw(st.sampled_from(["per_unit", "graduated", "package"]))
    base = Charge(code="calls", model=model, meter="calls", **draw(priced(model)))
    filters = []
    for index in range(draw(st.integers(0, 3))):
        keys = draw(st.lists(st.sampled_from(["m", "r"]), min_size=1, max_size=2, unique=True))
        match = tuple(sorted((key, frozenset(draw(st.lists(st.sampled_from(VALUES), min_size=1, unique=True))))
                             for key in keys))
        filters.append(ChargeFilter(f"f{index}", match, replace(base, **draw(priced(model)))))
    group_by = tuple(draw(st.lists(st.sampled_from(["m", "r", "p"]), max_size=2, unique=True)))
    return replace(base, filters=tuple(filters), group_by=group_by)


EVENTS = st.lists(st.fixed_dictionaries({}, optional={key: st.sampled_from(VALUES) for key in ("m", "r", "p")}),
                  max_size=40)


@settings(max_examples=60, deadline=None)
@given(charge=split_charges(), events=EVENTS)
def test_a_split_charges_lines_are_each_part_priced_on_its_own(charge: Charge, events: list[dict[str, str]]) -> None:
    # the oracle: each event to the first filter all of whose properties it has one of the values of
    parts: dict[tuple[str | None, tuple[str | None, ...]], int] = {}
    for properties in events:
        taken = next((item for item in charge.filters
                      if all(properties.get(key) in values for key, values in item.match)), None)
        key = (taken.code if taken else None, tuple(properties.get(name) for name in charge.group_by))
        parts[key] = parts.get(key, 0) + 1
    prices = {item.code: item.price for item in charge.filters}
    expected = sum((quantize(price_usage(prices.get(code, charge) if code else charge, D(count), count).amount, "EUR")
                    for (code, _), count in parts.items()), D(0))
    when = JANUARY.start
    split = split_usage("count", None, charge.filters, charge.group_by, [(when, item) for item in events])
    lines = split_lines(charge, JANUARY, split, Pricing("EUR"))
    assert sum((line.amount for line in lines), D(0)) == expected
    assert sum((line.quantity for line in lines), D(0)) == len(events)  # every event billed, once
    assert len([line for line in lines if line.quantity > 0]) == len(parts)


AMOUNTS = st.decimals(D(0), D(1000), places=2)


@settings(max_examples=100, deadline=None)
@given(amounts=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), AMOUNTS), max_size=8),
       caps=st.fixed_dictionaries({}, optional={code: AMOUNTS for code in ("a", "b", "c")}),
       plan_cap=st.none() | st.tuples(AMOUNTS, st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True)),
       days=st.integers(1, 31), currency=st.sampled_from(["EUR", "JPY", "KWD"]))
def test_a_cap_never_raises_and_never_takes_more_than_the_excess(
        amounts: list[tuple[str, Decimal]], caps: dict[str, Decimal], plan_cap: tuple[Decimal, list[str]] | None,
        days: int, currency: str) -> None:
    period = Period(JANUARY.start, JANUARY.start + timedelta(days=days), JANUARY.start, JANUARY.end)
    charges = [Charge(code=code, model="per_unit", meter=code, maximum=caps.get(code)) for code in ("a", "b", "c")]
    usage = [Line(code, code, period.start, period.end, D(1), quantize(amount, currency),
                  quantize(amount, currency), "usage") for code, amount in amounts]
    cap = PlanCap(plan_cap[0], tuple(plan_cap[1])) if plan_cap else None
    result = cap_lines(charges, cap, period, usage, currency)
    assert all(line.amount < 0 for line in result)
    before = {code: sum((line.amount for line in usage if line.code == code), D(0)) for code in ("a", "b", "c")}
    for code in ("a", "b", "c"):
        after = before[code] + sum((line.amount for line in result if line.code == f"maximum:{code}"), D(0))
        assert D(0) <= after <= before[code]
        if code in caps:
            assert after == min(before[code], quantize(period.prorate(caps[code]), currency))
    total_after = sum(before.values(), D(0)) + sum((line.amount for line in result), D(0))
    assert D(0) <= total_after <= sum(before.values(), D(0))


@settings(max_examples=60, deadline=None)
@given(trial_days=st.integers(1, 70), start=st.integers(1, 28), seats=st.integers(1, 5),
       end=st.none() | st.integers(1, 90), calls=st.integers(0, 50), fee=st.sampled_from(["31.00", "0.00", "9.99"]))
def test_a_trial_never_bills_anything_before_its_end(trial_days: int, start: int, seats: int, end: int | None,
                                                     calls: int, fee: str) -> None:
    first = date(2026, 1, start)
    document = _document({"code": "calls", "meter": "api_calls", "model": "graduated",
                          "tiers": [{"up_to": "10", "unit_amount": "0.50", "flat_amount": "2.00"},
                                    {"up_to": None, "unit_amount": "0.10"}],
                          "maximum": "3.00",
                          "filters": [{"code": "gpt", "match": {"model": ["gpt"]},
                                       "tiers": [{"up_to": None, "unit_amount": "1.00", "flat_amount": "1.00"}]}]},
                         {"trial_days": trial_days, "start": first.isoformat(), "quantity": seats,
                          **({"end": (first + timedelta(days=end)).isoformat()} if end else {})})
    document["plans"][0]["charges"].insert(0, {"code": "base", "model": "flat", "amount": fee})
    document["plans"][0]["minimum"] = "50.00"
    catalog = catalog_of(document)
    key = catalog.plans["pro"].charges[1].usage_key
    split = Split.of({("gpt", ()): Usage(D(calls), calls), (None, ()): Usage(D(calls), calls)})
    trial_end = catalog.subscriptions["s1"].trial_end()
    assert trial_end is not None
    bills = invoices(catalog, "s1", first + timedelta(days=100), lambda start, end: {key: split})
    for boundary, lines in bills.items():
        for line in lines:
            if line.service_end <= trial_end or boundary < trial_end:
                assert line.amount == 0, (boundary, line)


@settings(max_examples=60, deadline=None)
@given(trial_days=st.integers(0, 40), daily=st.lists(st.integers(0, 400), min_size=31, max_size=31),
       threshold=st.decimals(D("0.01"), D("60"), places=2),
       model=st.sampled_from(["per_unit", "graduated", "package"]), prices=st.data())
def test_threshold_invoices_and_the_closing_one_add_up_to_the_price_of_the_total_across_a_trial(
        trial_days: int, daily: list[int], threshold: Decimal, model: str, prices: Any) -> None:
    charge = Charge(code="calls", model=model, meter="calls", **prices.draw(priced(model)))
    plan = Plan(code="pro", currency="EUR", interval="month", charges=(charge,))
    terms = with_trial((Terms(JANUARY.start, plan),), JANUARY.start + timedelta(days=trial_days))

    def used(start: Any, end: Any) -> Usage:
        days = daily[(start.date() - JANUARY.start.date()).days:(end.date() - JANUARY.start.date()).days]
        return Usage(D(sum(days)), len(days))

    instants = early_instants(JANUARY, JANUARY.end)
    snapshots = [{number: {"calls": used(part.start, end)} for number, part, end in early_windows(terms, JANUARY, moment)}
                 for moment in instants]
    early = plan_early(terms, JANUARY, instants, snapshots, Pricing("EUR"), threshold=threshold)
    parts = segments(terms, JANUARY)
    closing = rate_cut(terms, Cut(JANUARY.end, JANUARY, None, billed_early=early.billed),
                       [{"calls": used(part.start, part.end)} for part in parts], Pricing("EUR"))
    billed = sum((line.amount for cut in early.cuts for line in cut.early), D(0)) \
        + sum((line.amount for line in closing if line.kind == "usage"), D(0))
    expected = sum((quantize(price_usage(terms[part.index].plan.charges[0], used(part.start, part.end).quantity,
                                         used(part.start, part.end).events).amount, "EUR") for part in parts), D(0))
    assert billed == expected
    trial_end = JANUARY.start + timedelta(days=trial_days)
    for cut in early.cuts:  # nothing of the trial is ever billed early
        assert all(line.amount == 0 for line in cut.early if line.service_end <= trial_end)


# --- usage invoiced inside its period: refused with caps and filters, however it is asked for ---

def test_usage_billed_in_advance_by_an_override_is_refused_with_caps_and_filters() -> None:
    # the plan bills its usage in arrears; a subscription's override (or a change's) asks for
    # timing: advance, which would invoice a capped, filtered charge inside its period
    charge = {"code": "calls", "meter": "api_calls", "model": "per_unit", "unit_amount": "0.10", "maximum": "5.00",
              "filters": [{"code": "gpt", "match": {"model": ["gpt"]}, "unit_amount": "1.00"}]}
    for subscription in ({"overrides": {"calls": {"timing": "advance"}}},
                         {"changes": [{"at": "2026-02-01", "overrides": {"calls": {"timing": "advance"}}}]}):
        problems = _problems(_document(charge, subscription))
        assert [path for path, _ in problems] == ["subscriptions[0]"], problems
        assert "a usage charge billed in advance" in problems[0][1]
        assert "charge 'calls' filters" in problems[0][1] and "charge 'calls' maximum" in problems[0][1]


# --- a change exactly at the trial's end: the rest of the period is still billed, at once ---

def _seats(change: dict[str, Any]) -> dict[str, Any]:
    return {"billing_entity": {"name": "Acme", "currency": "USD", "timezone": "UTC"},
            "meters": [{"code": "api_calls", "aggregation": "count"}],
            "plans": [{"code": "pro", "name": "Pro", "currency": "USD",
                       "charges": [{"code": "base", "model": "flat", "amount": "31.00"}]}],
            "customers": [{"reference": "c1", "currency": "USD"}],
            "subscriptions": [{"reference": "s1", "customer": "c1", "plan": "pro", "start": "2026-01-01",
                               "trial_days": 10, "changes": [{"at": "2026-01-11", "quantity": 3, **change}]}]}


def test_a_change_at_the_trials_end_still_bills_the_rest_of_the_period_on_the_trials_end_invoice() -> None:
    # trial until Jan 11; 3 seats from Jan 11: 3 x 31.00 x 21/31 = 63.00 for Jan 11 - Feb 1, on the
    # invoice cut at the trial's end, whatever the change's proration (with none, those 21 days went
    # unbilled: the trial had billed nothing that "none" could leave standing)
    for proration in ("none", "prorate", "invoice_now"):
        bills = invoices(catalog_of(_seats({"proration": proration})), "s1", date(2026, 2, 1))
        assert list(bills) == [at(date(2026, 1, 1)), at(date(2026, 1, 11)), at(date(2026, 2, 1))], proration
        assert [(kind, amount) for kind, _, _, _, amount in shown(bills[at(date(2026, 1, 11))])] == [
            ("proration", "63.00")], proration
        assert [(kind, amount) for kind, _, _, _, amount in shown(bills[at(date(2026, 2, 1))])] == [
            ("advance", "93.00")], proration


def test_a_one_off_is_in_the_currency_the_subscription_is_billed_in_rounded_once() -> None:
    # an EUR plan sold in JPY: a one-off of 500.5 on a JPY customer's subscription is 501 JPY
    document = _fee_document("EUR", "10.00", {"code": "off", "percent_off": "10"})
    document["plans"][0]["currencies"] = {"JPY": {"charges": {"base": {"amount": "1500"}}}}
    document["customers"][0]["currency"] = "JPY"
    document["subscriptions"][0]["one_off"] = [{"code": "setup", "amount": "500.5", "at": "2026-01-10"}]
    february = invoices(catalog_of(document), "s1", date(2026, 2, 1))[at(date(2026, 2, 1))]
    assert [(kind, amount) for kind, _, _, _, amount in shown(february)] == [
        ("arrears", "1500"), ("discount", "-150"), ("one_off", "501")]


# --- a discount takes from what an invoice cut at once bills: a trial's end, a change invoiced at once ---

def _half_off(subscription: dict[str, Any]) -> dict[str, Any]:
    return {"billing_entity": {"name": "Acme", "currency": "USD", "timezone": "UTC"},
            "meters": [{"code": "api_calls", "aggregation": "count"}],
            "plans": [{"code": "pro", "name": "Pro", "currency": "USD",
                       "charges": [{"code": "base", "model": "flat", "amount": "31.00"}]}],
            "customers": [{"reference": "c1", "currency": "USD"}],
            "subscriptions": [{"reference": "s1", "customer": "c1", "plan": "pro", "start": "2026-01-01",
                               "discounts": [{"code": "half", "percent_off": "50"}], **subscription}]}


def _amounts(lines: list[Any]) -> list[tuple[str, str]]:
    return [(kind, amount) for kind, _, _, _, amount in shown(lines)]


def test_the_invoice_at_a_trials_end_takes_the_discount() -> None:
    # trial until Jan 11: 31.00 x 21/31 = 21.00 for the rest of January, half off: 10.50
    bills = invoices(catalog_of(_half_off({"trial_days": 10})), "s1", date(2026, 2, 1))
    assert _amounts(bills[at(date(2026, 1, 11))]) == [("proration", "21.00"), ("discount", "-10.50")]
    assert _amounts(bills[at(date(2026, 2, 1))]) == [("advance", "31.00"), ("discount", "-15.50")]


def test_a_change_invoiced_at_once_takes_the_discount_once_over_the_period() -> None:
    # 1 seat billed Jan 1 (31.00, half off 15.50); 3 seats from Jan 11 invoiced at once: -21.00 +
    # 63.00 = 42.00, half off 21.00. The period's discount: half of 31.00 + 42.00 = 36.50 = 15.50 + 21.00
    change = {"changes": [{"at": "2026-01-11", "quantity": 3, "proration": "invoice_now"}]}
    bills = invoices(catalog_of(_half_off(change)), "s1", date(2026, 2, 1))
    assert _amounts(bills[at(date(2026, 1, 1))]) == [("advance", "31.00"), ("discount", "-15.50")]
    assert _amounts(bills[at(date(2026, 1, 11))]) == [("proration", "-21.00"), ("proration", "63.00"),
                                                      ("discount", "-21.00")]
    assert _amounts(bills[at(date(2026, 2, 1))]) == [("advance", "93.00"), ("discount", "-46.50")]


@settings(max_examples=60, deadline=None)
@given(percent=st.decimals(D("0.5"), D(100), places=1), trial_days=st.integers(0, 20), change_day=st.integers(2, 28),
       seats=st.integers(1, 4), more=st.integers(0, 5), fee=st.decimals(D("0.01"), D(500), places=2))
def test_a_periods_discount_is_taken_once_over_all_its_invoices(percent: Decimal, trial_days: int, change_day: int,
                                                                 seats: int, more: int, fee: Decimal) -> None:
    # more seats from `change_day`, invoiced at once, after an optional trial: January's discount
    # lines, over all its invoices, are the percentage of all January's other lines, rounded once
    document = _half_off({"trial_days": trial_days, "quantity": seats,
                          "changes": [{"at": f"2026-01-{change_day:02d}", "quantity": seats + more,
                                       "proration": "invoice_now"}]})
    document["plans"][0]["charges"][0]["amount"] = f"{fee:f}"
    document["subscriptions"][0]["discounts"][0]["percent_off"] = f"{percent:f}"
    bills = invoices(catalog_of(document), "s1", date(2026, 2, 1))
    january = [line for lines in bills.values() for line in lines
               if line.service_start < at(date(2026, 2, 1)) and line.kind != "discount"]
    taken = [line for lines in bills.values() for line in lines
             if line.kind == "discount" and line.service_start == at(date(2026, 1, 1))]
    base = sum((line.amount for line in january), D(0))
    assert -sum((line.amount for line in taken), D(0)) == quantize(base * percent / 100, "USD")


# --- a currency ISO 4217 gives no minor unit is not one an invoice is rounded in ---

def test_codes_without_a_minor_unit_are_refused_as_invoice_currencies() -> None:
    # gold (XAU), a fund unit (XDR), the testing code (XTS) and "no currency" (XXX) are in ISO 4217
    # with no minor unit: an invoice rounded "to the cent" in them is a guess
    for code in ("XAU", "XDR", "XTS", "XXX"):
        document = _fee_document("EUR", "10.00", {"code": "off", "percent_off": "10"})
        document["plans"][0]["currencies"] = {code: {"charges": {"base": {"amount": "1"}}}}
        document["customers"][0]["currency"] = code
        problems = dict(_problems(document))
        assert problems[f"plans[0].currencies.{code}"] == (
            f"{code} has no minor unit in ISO 4217 (a precious metal, a fund or bond unit, a testing code or "
            "'no currency'): invoices cannot be rounded in it"), problems
        assert problems["customers[0].currency"].startswith(f"{code} has no minor unit")
    assert _problems(_fee_document("XOF", "1000", {"code": "off", "percent_off": "10"})) == []  # a real currency


# --- an end without proration after a trial: the period is billed up to its end, as without a trial ---

def test_an_end_without_proration_after_the_trial_bills_the_rest_of_the_period() -> None:
    # trial until Jan 11, end Jan 20 without proration: the days after the trial are billed to the
    # period's end, 31.00 x 21/31 = 21.00 (9.00 on the trial's end invoice for Jan 11-20, 12.00 on
    # the closing one for Jan 20 - Feb 1), as a subscription without a trial pays January's 31.00
    document = _seats({})
    subscription = document["subscriptions"][0]
    del subscription["changes"]
    subscription.update(end="2026-01-20", end_proration="none")
    bills = invoices(catalog_of(document), "s1", date(2026, 3, 1))
    assert _amounts(bills[at(date(2026, 1, 11))]) == [("proration", "9.00")]
    assert _amounts(bills[at(date(2026, 1, 20))]) == [("proration", "12.00")]
    # an end inside the trial bills nothing
    subscription.update(end="2026-01-08")
    assert all(line.amount == 0 for lines in invoices(catalog_of(document), "s1", date(2026, 3, 1)).values()
               for line in lines)
