"""Usage lines of tiered charges carry their parts (docs/billing.md, "Tiers on the invoice"), each
segment of a period cut by a plan change its own."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from ratecard.domain.aggregation import Usage
from ratecard.domain.periods import Schedule
from ratecard.domain.pricing import Charge, Tier
from ratecard.domain.rating import Plan, Pricing, invoice_cuts, rate_cut
from ratecard.domain.terms import Terms
from ratecard.domain.tiers import TierPart

D = Decimal
TOKENS = Charge(code="tokens", model="graduated", meter="tokens",
                tiers=(Tier(D(1000), D(0)), Tier(None, D("0.002"), D(5))))
CALLS = Charge(code="calls", model="per_unit", meter="calls", unit_amount=D("0.01"))
SMALL = Plan(code="small", currency="EUR", interval="month", charges=(TOKENS, CALLS))
BIG = Plan(code="big", currency="EUR", interval="month",
           charges=(Charge(code="tokens", model="volume", meter="tokens",
                           tiers=(Tier(D(1000), D("0.003")), Tier(None, D("0.001"), D(2)))),))
EUR = Pricing(currency="EUR")
SCHEDULE = Schedule.build(date(2026, 1, 1), None, "month", "UTC", anchor_day=1)


def test_a_graduated_line_carries_one_part_per_tier_and_other_lines_none() -> None:
    cut = invoice_cuts(SCHEDULE, datetime(2026, 2, 1, tzinfo=UTC))[1]
    lines = {line.code: line for line in rate_cut(SMALL, cut, {"tokens": Usage(D(3500), 7),
                                                               "calls": Usage(D(10), 10)}, EUR)}
    # (3500 - 1000) × 0.002 + 5 = 10.00
    assert lines["tokens"].amount == D("10.00")
    assert lines["tokens"].tiers == (TierPart(1, D(0), D(1000), D(1000), D(0), D(0), D(0)),
                                     TierPart(2, D(1000), D(3500), D(2500), D("0.002"), D(5), D("10.000")))
    assert lines["calls"].tiers == ()


def test_each_segment_of_a_period_cut_by_a_change_has_its_own_parts() -> None:
    terms = (Terms(datetime(2026, 1, 1, tzinfo=UTC), SMALL), Terms(datetime(2026, 1, 16, tzinfo=UTC), BIG))
    cut = invoice_cuts(SCHEDULE, datetime(2026, 2, 1, tzinfo=UTC), terms)[1]
    lines = [line for line in rate_cut(terms, cut, [{"tokens": Usage(D(1500), 1)}, {"tokens": Usage(D(4000), 1)}],
                                       EUR) if line.code == "tokens"]
    first, second = lines
    # Jan 1-16, graduated: 1,000 free, 500 × 0.002 + 5 = 6.00
    assert first.tiers == (TierPart(1, D(0), D(1000), D(1000), D(0), D(0), D(0)),
                           TierPart(2, D(1000), D(1500), D(500), D("0.002"), D(5), D("6.000")))
    assert first.amount == D("6.00")
    # Jan 16-Feb 1, volume: 4,000 falls in tier 2, 4,000 × 0.001 + 2 = 6.00
    assert second.tiers == (TierPart(2, D(1000), D(4000), D(4000), D("0.001"), D(2), D("6.000")),)
    assert second.amount == D("6.00")
