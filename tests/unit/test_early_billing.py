"""Usage invoiced inside its period (docs/billing.md, "Threshold invoices" and "Usage billed in
advance"): threshold invoices for the usage so far, usage charges billed in advance, and the
period's closing invoice billing the rest. Tiers never reset: the period's invoices add up to the
price of its total usage."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ratecard.domain.aggregation import Sample, Usage, aggregate
from ratecard.domain.discounts import Discount
from ratecard.domain.early import JOINED, EarlyPlan, early_instants, join, plan_early, with_early
from ratecard.domain.instants import to_micros
from ratecard.domain.invoice import Line
from ratecard.domain.money import quantize
from ratecard.domain.periods import Period, Schedule
from ratecard.domain.pricing import Charge, Tier, price_usage
from ratecard.domain.rating import Cut, Plan, Pricing, invoice_cuts, invoice_totals, rate_cut
from ratecard.domain.terms import Terms

D = Decimal
BERLIN = ZoneInfo("Europe/Berlin")
TOKENS = Charge(code="tokens", model="graduated", meter="tokens",
                tiers=(Tier(D(1_000_000), D("0.00002")), Tier(None, D("0.00001"))))
BASE = Charge(code="base", model="flat", amount=D("49.00"), timing="advance")
PLAN = Plan(code="pro", currency="EUR", interval="month", charges=(BASE, TOKENS))
EUR = Pricing(currency="EUR", tax_rate=D(19))
JANUARY = Period(datetime(2026, 1, 1, tzinfo=BERLIN), datetime(2026, 2, 1, tzinfo=BERLIN),
                 datetime(2026, 1, 1, tzinfo=BERLIN), datetime(2026, 2, 1, tzinfo=BERLIN))


def cumulative(daily: list[int], instants: list[datetime], start: datetime) -> list[dict[int, dict[str, Usage]]]:
    """The usage from the period's start up to each instant, for tokens used `daily[i]` on day i."""
    result = []
    for moment in instants:
        days = (moment.date() - start.date()).days
        total = sum(daily[:days])
        result.append({0: {"tokens": Usage(D(total), days)}})
    return result


def january(daily: list[int], plan: Plan = PLAN, threshold: Decimal | None = D("100.00"), **kwargs) -> EarlyPlan:
    terms = (Terms(JANUARY.start, plan),)
    instants = early_instants(JANUARY, JANUARY.end)
    return plan_early(terms, JANUARY, instants, cumulative(daily, instants, JANUARY.start), EUR,
                      threshold=threshold, **kwargs)


def closing(plan: Plan, early: EarlyPlan, total: int) -> list[Line]:
    cut = Cut(JANUARY.end, JANUARY, None, billed_early=early.billed)
    return rate_cut(plan, cut, {"tokens": Usage(D(total), 31)}, EUR)


# the worked example: 10,000,000 tokens by the end of Jan 15 (crossing 100.00 on Jan 15), then
# 4,000,000 more in the month
WORKED = [0] * 14 + [10_000_000] + [0] * 10 + [4_000_000] + [0] * 5


def test_worked_example_threshold_invoice_then_the_rest_at_period_end() -> None:
    early = january(WORKED)
    assert len(early.cuts) == 1
    cut = early.cuts[0]
    # cut at the local midnight after the crossing: Jan 16 00:00 in Berlin
    assert cut.boundary == datetime(2026, 1, 16, tzinfo=BERLIN)
    [line] = cut.early
    # 1,000,000 × 0.00002 + 9,000,000 × 0.00001 = 20 + 90
    assert (line.code, line.kind, line.amount, line.quantity) == ("tokens", "threshold", D("110.00"), D(10_000_000))
    assert (line.service_start, line.service_end) == (JANUARY.start, cut.boundary)
    assert early.billed == ((0, "tokens", D("110.00")),)
    lines = {line.code: line for line in closing(PLAN, early, 14_000_000)}
    # 14,000,000 tokens cost 20 + 130 = 150; 110 were invoiced on the threshold invoice
    assert lines["tokens"].amount == D("40.00")
    assert lines["tokens"].quantity == D(14_000_000)
    assert "150.00" in lines["tokens"].description and "110.00" in lines["tokens"].description


def test_the_threshold_invoice_is_taxed_on_its_own() -> None:
    cut = january(WORKED).cuts[0]
    lines = rate_cut(PLAN, cut, {}, EUR)
    totals = invoice_totals(lines, EUR)
    assert (totals.subtotal, totals.tax, totals.total) == (D("110.00"), D("20.90"), D("130.90"))


def test_no_threshold_crossed_no_early_invoice() -> None:
    early = january([100_000] * 31)  # 3,100,000 tokens: 20 + 21 = 41.00, never 100
    assert early.cuts == () and early.billed == ()
    assert {line.code: line.amount for line in closing(PLAN, early, 3_100_000)}["tokens"] == D("41.00")


def test_next_threshold_invoice_when_the_usage_since_reaches_the_threshold_again() -> None:
    # 1,000,000 tokens a day: 20.00 the first day, 10.00 each day after
    early = january([1_000_000] * 31)
    amounts = [(cut.boundary.day, sum(line.amount for line in cut.early)) for cut in early.cuts]
    # 100.00 reached after 9 days (20 + 8 × 10), then every 10 days: 100.00 more each time
    assert amounts == [(10, D("100.00")), (20, D("100.00")), (30, D("100.00"))]
    rest = {line.code: line.amount for line in closing(PLAN, early, 31_000_000)}["tokens"]
    assert rest == D("20.00")  # 320.00 for the month, less 300.00


def test_usage_charge_in_advance_is_billed_each_midnight_with_new_usage() -> None:
    calls = Charge(code="calls", model="per_unit", meter="tokens", unit_amount=D("0.001"), timing="advance")
    plan = Plan(code="payg", currency="EUR", interval="month", charges=(calls,))
    daily = [0, 1500, 0, 2500] + [0] * 27
    early = january(daily, plan, threshold=None)
    billed = [(cut.boundary.day, [(line.kind, line.amount) for line in cut.early]) for cut in early.cuts]
    # day 2's usage on Jan 3 at midnight, day 4's on Jan 5: nothing on a day without new usage
    assert billed == [(3, [("usage_advance", D("1.50"))]), (5, [("usage_advance", D("2.50"))])]
    # everything was billed in advance: the period's end bills nothing more for it
    assert {line.code: line.amount for line in closing(plan, early, 4000)}["calls"] == D("0.00")


def test_minimum_and_discounts_count_the_whole_period_on_its_closing_invoice() -> None:
    ten = Discount(code="ten", percent_off=D(10))
    plan = Plan(code="pro", currency="EUR", interval="month", charges=(TOKENS,), minimum=D("200.00"),
                discounts=(ten,))
    early = january(WORKED, plan)
    lines = {line.code: line.amount for line in closing(plan, early, 14_000_000)}
    # 150.00 of usage in the month (110.00 of it invoiced early): 50.00 short of the minimum;
    # 10% off the period's 200.00, taken on the closing invoice
    assert lines == {"tokens": D("40.00"), "minimum": D("50.00"), "discount:ten": D("-20.00")}
    # the threshold invoice takes no discount
    assert [line.code for line in rate_cut(plan, early.cuts[0], {}, EUR)] == ["tokens"]


def test_a_final_threshold_invoice_stands_where_it_was_cut() -> None:
    # a late event puts 9,000,000 tokens on Jan 5 (20 + 80 = 100.00): today the crossing would be
    # on Jan 5, but the threshold invoice cut at Jan 16 is final: nothing is cut before it, and it
    # is recomputed there (the invoice run corrects the difference on the next invoice)
    late = [0] * 4 + [9_000_000] + [0] * 9 + [10_000_000] + [0] * 16
    anchored = january(late, anchors={datetime(2026, 1, 16, tzinfo=BERLIN)})
    assert [cut.boundary.day for cut in anchored.cuts] == [16]
    assert sum(line.amount for line in anchored.cuts[0].early) == D("200.00")  # 20 + 180 to date
    assert [cut.boundary.day for cut in january(late).cuts] == [6, 16]


def test_a_price_edit_after_a_final_threshold_invoice_applies_to_the_rest_of_the_period() -> None:
    # the threshold invoice of Jan 16 was final at the old prices (110.00); the tokens' prices then
    # double: it stands as billed, the usage so far at the new prices (220.00) leaves 110.00 not yet
    # invoiced, over the threshold, on Jan 17, and the closing invoice bills January at the new
    # prices (20 + 130 = 150.00, doubled: 300.00) less the 220.00 billed
    doubled = Charge(code="tokens", model="graduated", meter="tokens",
                     tiers=(Tier(D(1_000_000), D("0.00004")), Tier(None, D("0.00002"))))
    new = Plan(code="pro", currency="EUR", interval="month", charges=(BASE, doubled))
    at = datetime(2026, 1, 16, tzinfo=BERLIN)
    early = january(WORKED, new, anchors={at}, anchor_terms={at: (Terms(JANUARY.start, PLAN),)})
    assert [(cut.boundary.day, cut.early[0].amount) for cut in early.cuts] == [(16, D("110.00")), (17, D("110.00"))]
    assert {line.code: line.amount for line in closing(new, early, 14_000_000)}["tokens"] == D("80.00")


def test_a_voided_threshold_invoice_is_cut_again_the_next_midnight() -> None:
    early = january(WORKED, skipped={datetime(2026, 1, 16, tzinfo=BERLIN)})
    assert [(cut.boundary.day, cut.early[0].amount) for cut in early.cuts] == [(17, D("110.00"))]


def test_a_change_of_terms_inside_the_period_bills_each_part_under_its_terms() -> None:
    # from Jan 20 the tokens cost 0.00003 each (per unit); 10,000,000 tokens on Jan 15, 5,000,000 on Jan 25
    dearer = Plan(code="dear", currency="EUR", interval="month",
                  charges=(Charge(code="tokens", model="per_unit", meter="tokens", unit_amount=D("0.00003")),))
    change = datetime(2026, 1, 20, tzinfo=BERLIN)
    terms = (Terms(JANUARY.start, PLAN), Terms(change, dearer))
    instants = early_instants(JANUARY, JANUARY.end)
    snapshots = [{0: {"tokens": Usage(D(10_000_000 if moment.day > 15 or moment.month == 2 else 0), 1)},
                  **({1: {"tokens": Usage(D(5_000_000 if moment.day > 25 else 0), 1)}} if moment > change else {})}
                 for moment in instants]
    early = plan_early(terms, JANUARY, instants, snapshots, EUR, threshold=D("100.00"))
    assert [(cut.boundary.day, [(line.amount, line.service_start.day, line.service_end.day) for line in cut.early])
            for cut in early.cuts] == [(16, [(D("110.00"), 1, 16)]), (26, [(D("150.00"), 20, 26)])]
    assert early.billed == ((0, "tokens", D("110.00")), (1, "tokens", D("150.00")))
    cut = Cut(JANUARY.end, JANUARY, None, billed_early=early.billed)
    usage = [{"tokens": Usage(D(10_000_000), 1)}, {"tokens": Usage(D(6_000_000), 2)}]
    lines = [(line.service_start.day, line.amount) for line in rate_cut(terms, cut, usage, EUR) if line.code == "tokens"]
    # 1,000,000 more after Jan 26 under the new terms: 180.00 for the part, less 150.00
    assert lines == [(1, D("0.00")), (20, D("30.00"))]


def test_subscription_threshold_wins_over_the_plan() -> None:
    plan = Plan(code="pro", currency="EUR", interval="month", charges=(TOKENS,), threshold=D("1000.00"))
    assert january(WORKED, plan, threshold=None).cuts == ()
    assert len(january(WORKED, plan, threshold=D("100.00")).cuts) == 1


def test_midnights_are_local_and_follow_daylight_saving_time() -> None:
    march = Period(datetime(2026, 3, 1, tzinfo=BERLIN), datetime(2026, 4, 1, tzinfo=BERLIN),
                   datetime(2026, 3, 1, tzinfo=BERLIN), datetime(2026, 4, 1, tzinfo=BERLIN))
    instants = early_instants(march, datetime(2026, 4, 1, tzinfo=BERLIN))
    assert len(instants) == 30 and all(moment.hour == 0 for moment in instants)
    assert instants[-1].utcoffset() == timedelta(hours=2)
    # a run up to a date cuts nothing after it
    assert early_instants(march, datetime(2026, 3, 10, tzinfo=BERLIN))[-1].day == 10


def test_early_cuts_sit_between_the_calendar_cuts() -> None:
    schedule = Schedule.build(date(2026, 1, 1), None, "month", BERLIN, 1)
    cuts = invoice_cuts(schedule, datetime(2026, 2, 1, tzinfo=BERLIN))
    merged = with_early(cuts, {to_micros(JANUARY.start): january(WORKED)})
    assert [(cut.boundary.day, bool(cut.early), bool(cut.billed_early)) for cut in merged] == \
        [(1, False, False), (16, True, False), (1, False, True)]


# ---------------------------------------------------------------------------------------------
# properties: whatever the daily usage and the threshold, the period's invoices add up to the
# price of its total usage, tier by tier as if nothing had been invoiced early
# ---------------------------------------------------------------------------------------------

CHARGES = st.sampled_from([
    TOKENS,
    Charge(code="tokens", model="volume", meter="tokens",
           tiers=(Tier(D(1000), D("0.013")), Tier(None, D("0.0071"), D("3")))),
    Charge(code="tokens", model="package", meter="tokens", package_size=D(100), package_amount=D("0.35")),
    Charge(code="tokens", model="per_unit", meter="tokens", unit_amount=D("0.0003"), timing="advance"),
    Charge(code="tokens", model="stairstep", meter="tokens",
           tiers=(Tier(D(500), flat_amount=D("7")), Tier(None, flat_amount=D("42.5")))),
])


@settings(max_examples=200, deadline=None)
@given(charge=CHARGES, daily=st.lists(st.integers(0, 3_000_000), min_size=31, max_size=31),
       threshold=st.none() | st.decimals(D("0.01"), D("500"), places=2))
def test_threshold_and_closing_invoices_add_up_to_the_price_of_the_total(charge: Charge, daily: list[int],
                                                                          threshold: Decimal | None) -> None:
    plan = Plan(code="p", currency="EUR", interval="month", charges=(charge,))
    early = january(daily, plan, threshold=threshold)
    total = sum(daily)
    billed_early = sum((line.amount for cut in early.cuts for line in cut.early), D(0))
    at_end = sum((line.amount for line in closing(plan, early, total) if line.code == "tokens"), D(0))
    assert billed_early + at_end == quantize(price_usage(charge, D(total), 31).amount, "EUR")
    for cut in early.cuts:  # each threshold invoice holds at least the threshold
        if threshold is not None and cut.early[0].kind == "threshold":
            assert sum(line.amount for line in cut.early) >= threshold


class Runs(RuleBasedStateMachine):
    """Invoice runs up to ever later days while usage arrives, some early invoices finalized on
    the way: at every step, what the finalized and the planned early invoices bill, plus the
    closing invoice, is the price of the period's total usage (differences of final invoices
    being corrected on the next one)."""

    def __init__(self) -> None:
        super().__init__()
        self.daily = [0] * 31
        self.day = 1  # runs have cut up to this day's midnight
        self.final: dict[datetime, Decimal] = {}  # final early invoices: instant -> amount billed

    @rule(tokens=st.integers(0, 4_000_000), back=st.integers(0, 5))
    def usage(self, tokens: int, back: int) -> None:
        self.daily[max(self.day - 1 - back, 0)] += tokens  # back > 0: a late event

    @rule(days=st.integers(1, 6))
    def run(self, days: int) -> None:
        self.day = min(self.day + days, 31)

    @rule()
    def finalize(self) -> None:
        for cut in self.plan().cuts:
            self.final.setdefault(cut.boundary, sum((line.amount for line in cut.early), D(0)))

    def plan(self) -> EarlyPlan:
        terms = (Terms(JANUARY.start, PLAN),)
        horizon = JANUARY.start + timedelta(days=self.day)
        instants = early_instants(JANUARY, horizon)
        return plan_early(terms, JANUARY, instants, cumulative(self.daily, instants, JANUARY.start), EUR,
                          threshold=D("100.00"), anchors=set(self.final))

    @invariant()
    def adds_up(self) -> None:
        plan = self.plan()
        cuts = {cut.boundary: sum((line.amount for line in cut.early), D(0)) for cut in plan.cuts}
        corrections = sum((cuts.get(moment, D(0)) - amount for moment, amount in self.final.items()), D(0))
        billed = sum(self.final.values(), D(0)) + corrections + sum(
            (amount for moment, amount in cuts.items() if moment not in self.final), D(0))
        so_far = sum(self.daily[:self.day])
        at_end = {line.code: line.amount for line in closing(PLAN, plan, so_far)}["tokens"]
        assert billed + at_end == quantize(price_usage(TOKENS, D(so_far), 1).amount, "EUR")


Runs.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
test_runs = Runs.TestCase


@settings(max_examples=200, deadline=None)
@given(aggregation=st.sampled_from(sorted(JOINED)),
       values=st.lists(st.decimals(-1000, 1000, places=3), max_size=12), cut=st.integers(0, 12))
def test_usage_of_days_joined_is_the_usage_of_the_whole(aggregation: str, values: list[Decimal], cut: int) -> None:
    at = datetime(2026, 1, 1, tzinfo=BERLIN)
    samples = [Sample(at + timedelta(minutes=index), value) for index, value in enumerate(values)]
    before, after = samples[:cut], samples[cut:]
    assert join(aggregation, aggregate(aggregation, before), aggregate(aggregation, after)) == \
        aggregate(aggregation, samples)
