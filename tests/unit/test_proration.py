"""Proration of fees billed in advance when terms change inside a period, by whole days, each line
rounded once (Stripe's default behaviour). Hand-computed cases, then properties."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.periods import Schedule, local_midnight
from ratecard.domain.pricing import Charge
from ratecard.domain.rating import Plan, Pricing, invoice_cuts, rate_cut
from ratecard.domain.terms import Terms

UTC = ZoneInfo("UTC")


def _fee(amount: str) -> Charge:
    return Charge(code="base", model="flat", meter=None, timing="advance", description=None, amount=Decimal(amount),
                  unit_amount=Decimal(0), tiers=(), package_size=Decimal(1), package_amount=Decimal(0),
                  free_units=Decimal(0), rate=Decimal(0), fixed_amount=Decimal(0))


def _plan(code: str, amount: str, interval: str = "month", minimum: str | None = None) -> Plan:
    return Plan(code, "USD", interval, (_fee(amount),), Decimal(minimum) if minimum else None)


def _at(day: date):
    return local_midnight(day, UTC)


def _invoices(terms, start: date, until: date, anchor: int | None = None, end: date | None = None,
              end_prorated: bool = True, interval: str = "month") -> dict[date, list[tuple[str, str]]]:
    schedule = Schedule.build(start, end, interval, UTC, anchor)
    result = {}
    for cut in invoice_cuts(schedule, _at(until), terms):
        segments = 1
        if cut.closing is not None:
            from ratecard.domain.terms import segments as split

            segments = len(split(terms, cut.closing))
        lines = rate_cut(terms, cut, [{}] * segments if cut.closing else {}, Pricing("USD"), end_prorated=end_prorated)
        result[cut.boundary.date()] = [(line.kind, f"{line.amount:f}") for line in lines]
    return result


def test_stripe_upgrade_example() -> None:
    terms = (Terms(_at(date(2026, 5, 1)), _plan("basic", "100.00")),
             Terms(_at(date(2026, 5, 15)), _plan("pro", "200.00"), "prorate"))
    june = _invoices(terms, date(2026, 5, 1), date(2026, 6, 1))[date(2026, 6, 1)]
    assert june == [("advance", "200.00"), ("proration", "-54.84"), ("proration", "109.68")]


def test_downgrade_credits_more_than_it_charges() -> None:
    # 90.00 → 30.00 on April 11: 20 of 30 days left: −60.00 + 20.00
    terms = (Terms(_at(date(2026, 4, 1)), _plan("big", "90.00")),
             Terms(_at(date(2026, 4, 11)), _plan("small", "30.00"), "prorate"))
    may = _invoices(terms, date(2026, 4, 1), date(2026, 5, 1))[date(2026, 5, 1)]
    assert may == [("advance", "30.00"), ("proration", "-60.00"), ("proration", "20.00")]


def test_a_change_on_a_boundary_needs_no_proration() -> None:
    terms = (Terms(_at(date(2026, 4, 1)), _plan("big", "90.00")),
             Terms(_at(date(2026, 5, 1)), _plan("small", "30.00"), "prorate"))
    invoices = _invoices(terms, date(2026, 4, 1), date(2026, 6, 1))
    assert invoices[date(2026, 5, 1)] == [("advance", "30.00")]
    assert invoices[date(2026, 6, 1)] == [("advance", "30.00")]


def test_a_change_in_a_short_first_period_prorates_against_the_full_period() -> None:
    # start Jan 21 with anchor 1: first period Jan 21–Feb 1 (11 of 31 days) billed 31.00 × 11/31 = 11.00;
    # a change to 62.00 on Jan 26 (6 days left): −31 × 6/31 = −6.00, +62 × 6/31 = +12.00
    terms = (Terms(_at(date(2026, 1, 21)), _plan("a", "31.00")),
             Terms(_at(date(2026, 1, 26)), _plan("b", "62.00"), "prorate"))
    invoices = _invoices(terms, date(2026, 1, 21), date(2026, 2, 1), anchor=1)
    assert invoices[date(2026, 1, 21)] == [("advance", "11.00")]
    assert invoices[date(2026, 2, 1)] == [("advance", "62.00"), ("proration", "-6.00"), ("proration", "12.00")]


def test_a_quarter_plan_prorates_by_the_days_of_the_quarter() -> None:
    # Q1 2026 has 90 days; a change on Mar 1 leaves 31: −300 × 31/90 = −103.33, +600 × 31/90 = +206.67
    terms = (Terms(_at(date(2026, 1, 1)), _plan("q", "300.00", "quarter")),
             Terms(_at(date(2026, 3, 1)), _plan("q2", "600.00", "quarter"), "prorate"))
    april = _invoices(terms, date(2026, 1, 1), date(2026, 4, 1), interval="quarter")[date(2026, 4, 1)]
    assert april == [("advance", "600.00"), ("proration", "-103.33"), ("proration", "206.67")]


def test_no_proration_keeps_the_period_fee_and_the_new_fee_starts_next_period() -> None:
    terms = (Terms(_at(date(2026, 5, 1)), _plan("basic", "100.00")),
             Terms(_at(date(2026, 5, 15)), _plan("pro", "200.00"), "none"))
    assert _invoices(terms, date(2026, 5, 1), date(2026, 6, 1))[date(2026, 6, 1)] == [("advance", "200.00")]


def test_the_minimum_counts_prorations_and_is_prorated_per_part() -> None:
    # 30.00 (minimum 100) then 60.00 (minimum 200) from Jun 16: June has 30 days, 15 + 15.
    # billed: 30 − 15 + 30 = 45; minimum: 100 × 15/30 + 200 × 15/30 = 150 → true-up 105.00
    terms = (Terms(_at(date(2026, 6, 1)), _plan("a", "30.00", minimum="100")),
             Terms(_at(date(2026, 6, 16)), _plan("b", "60.00", minimum="200"), "prorate"))
    july = _invoices(terms, date(2026, 6, 1), date(2026, 7, 1))[date(2026, 7, 1)]
    assert july == [("advance", "60.00"), ("proration", "-15.00"), ("proration", "30.00"), ("minimum", "105.00")]


def test_an_end_known_in_advance_prorates_the_opening_or_bills_it_whole() -> None:
    one = (Terms(_at(date(2026, 2, 1)), _plan("a", "28.00")),)
    assert _invoices(one, date(2026, 2, 1), date(2026, 2, 15), end=date(2026, 2, 15))[date(2026, 2, 1)] == [
        ("advance", "14.00")]
    assert _invoices(one, date(2026, 2, 1), date(2026, 2, 15), end=date(2026, 2, 15),
                     end_prorated=False)[date(2026, 2, 1)] == [("advance", "28.00")]


@settings(max_examples=50, deadline=None)
@given(old=st.integers(1, 100_000), new=st.integers(1, 100_000), day=st.integers(2, 28),
       month=st.integers(1, 12))
def test_prorations_settle_to_the_days_under_each_fee(old: int, new: int, day: int, month: int) -> None:
    """Opening fee + prorations = old × days before + new × days after (over the full period), to
    within a cent per rounded line; and a change to the same fee prorates nothing."""
    start = date(2026, month, 1)
    following = date(2026 + month // 12, month % 12 + 1, 1)
    change = date(2026, month, day)
    old_fee, new_fee = Decimal(old) / 100, Decimal(new) / 100
    terms = (Terms(_at(start), _plan("a", f"{old_fee:.2f}")),
             Terms(_at(change), _plan("b", f"{new_fee:.2f}"), "prorate"))
    closing = _invoices(terms, start, following)[following]
    prorated = sum((Decimal(amount) for kind, amount in closing if kind == "proration"), Decimal(0))
    full = (following - start).days
    before, after = (change - start).days, (following - change).days
    exact = (old_fee * before + new_fee * after) / full
    assert abs(old_fee + prorated - exact) <= Decimal("0.01")
    if old == new:
        assert not [kind for kind, _ in closing if kind == "proration"]
    assert before + after == full and (following - timedelta(days=1)).month == start.month
