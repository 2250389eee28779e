"""Aggregations (docs/billing.md): count, sum, max, min, unique_count, latest, weighted_sum; plus average."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.aggregation import (
    AGGREGATIONS,
    NEEDS_FIELD,
    NUMERIC_AGGREGATIONS,
    Sample,
    Usage,
    aggregate,
    average_of,
    weighted_average,
)
from ratecard.domain.periods import Schedule

D = Decimal
BERLIN = ZoneInfo("Europe/Berlin")

# April 2026 in UTC: a 30-day period
APRIL = (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An instant in April 2026 (UTC)."""
    return datetime(2026, 4, day, hour, minute, tzinfo=UTC)


def samples(*pairs: tuple[datetime, object]) -> list[Sample]:
    return [Sample(ts, value) for ts, value in pairs]


def run(aggregation: str, items: list[Sample], prior: Decimal = D(0)) -> Usage:
    return aggregate(aggregation, items, APRIL[0], APRIL[1], prior)


EVENTS = samples(
    (at(3, 9), D("1.5")),
    (at(20, 12), D("2.25")),
    (at(5, 0), D("3")),
    (at(11, 18), D("-0.75")),
)


def test_the_eight_aggregations() -> None:
    assert set(AGGREGATIONS) == {"count", "sum", "max", "min", "unique_count", "latest", "weighted_sum", "average"}
    assert NEEDS_FIELD == set(AGGREGATIONS) - {"count"}
    assert "average" in NUMERIC_AGGREGATIONS


def test_count() -> None:
    assert run("count", EVENTS) == Usage(D(4), 4)


def test_sum_is_exact() -> None:
    # 1.5 + 2.25 + 3 - 0.75 = 6.00
    assert run("sum", EVENTS) == Usage(D("6.00"), 4)
    # 0.1 + 0.1 + 0.1 is exactly 0.3 (no float drift)
    tenth = samples(*[(at(1 + i), D("0.1")) for i in range(3)])
    assert run("sum", tenth).quantity == D("0.3")


def test_max_and_min() -> None:
    assert run("max", EVENTS) == Usage(D("3"), 4)
    assert run("min", EVENTS) == Usage(D("-0.75"), 4)


def test_latest_is_the_value_at_the_greatest_timestamp_not_the_last_given() -> None:
    # the greatest timestamp is Apr 20 12:00 (value 2.25), though it is second in the list
    assert run("latest", EVENTS) == Usage(D("2.25"), 4)


def test_latest_among_equal_timestamps_takes_the_later_one_given() -> None:
    tie = samples((at(9), D(1)), (at(9), D(2)), (at(2), D(3)))
    assert run("latest", tie).quantity == D(2)


def test_unique_count_counts_distinct_values() -> None:
    users = samples((at(1), "u1"), (at(2), "u2"), (at(3), "u1"), (at(4), "u3"), (at(5), "u2"))
    # u1, u2, u3
    assert run("unique_count", users) == Usage(D(3), 5)


def test_unique_count_treats_one_number_written_differently_as_one_value() -> None:
    # 1, 1.0, 1.00 and the JSON float 1.0 are the same number; the string "1" is an identifier
    ones = samples((at(1), D("1")), (at(2), D("1.00")), (at(3), 1), (at(4), "1"), (at(5), 1.0), (at(6), D("1E+0")))
    assert run("unique_count", ones).quantity == D(2)


def test_unique_count_keeps_distinct_identifiers_apart() -> None:
    # strings are identifiers compared as written, never equal to a number; case matters
    ids = samples((at(1), "007"), (at(2), "7"), (at(3), "a"), (at(4), "A"), (at(5), 7))
    # {"007", "7", "a", "A", 7}
    assert run("unique_count", ids).quantity == D(5)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_no_events_aggregate_to_zero(aggregation: str) -> None:
    assert run(aggregation, []) == Usage(D(0), 0)
    assert run(aggregation, []) == Usage.zero()


def test_unknown_aggregation_is_refused() -> None:
    with pytest.raises(ValueError):
        run("median", EVENTS)


# ---------------------------------------------------------------------------------------------
# average: exact sum / count
# ---------------------------------------------------------------------------------------------


def test_average_hand_example() -> None:
    # (1.5 + 2.25 + 3 - 0.75) / 4 = 6.00 / 4 = 1.5, over 4 events
    assert run("average", EVENTS) == Usage(D("1.5"), 4)
    assert str(run("average", EVENTS).quantity) == "1.5"  # no trailing zeros
    # 0.1 + 0.2 = 0.3 exactly, / 2 = 0.15 (a float mean would be 0.15000000000000002)
    assert run("average", samples((at(1), D("0.1")), (at(2), D("0.2")))).quantity == D("0.15")
    # 100 + 200 + 300 = 600 / 3 = 200, written as 200 (not 2E+2)
    assert str(run("average", samples((at(1), D(100)), (at(2), D(200)), (at(3), D(300)))).quantity) == "200"


def test_average_that_does_not_terminate_keeps_12_places() -> None:
    # 1 / 3 = 0.333333333333 (12 places); 2 / 3 rounds half even to 0.666666666667
    assert run("average", samples((at(1), D(1)), (at(2), D(0)), (at(3), D(0)))).quantity == D("0.333333333333")
    assert run("average", samples((at(1), D(2)), (at(2), D(0)), (at(3), D(0)))).quantity == D("0.666666666667")


def test_average_of_sum_and_count() -> None:
    assert average_of(D("6.00"), 4) == D("1.5")
    assert average_of(D(7), 0) == D(0)
    assert average_of(D("-1"), 8) == D("-0.125")


def test_weighted_sum_needs_the_period() -> None:
    with pytest.raises(ValueError):
        aggregate("weighted_sum", EVENTS)


# ---------------------------------------------------------------------------------------------
# weighted_sum (Lago): a level moved by deltas, averaged over the period's time
# ---------------------------------------------------------------------------------------------


def test_weighted_sum_lago_example() -> None:
    # 30-day period; +20 on day 10, -20 on day 20 (Apr 10 and Apr 20, 00:00):
    # level 0 for 9 days, 20 for 10 days, 0 for 11 days
    # average = 20 × 10 / 30 = 6.666666666666...; kept to 12 places -> 6.666666666667
    deltas = samples((at(10), D(20)), (at(20), D(-20)))
    usage = run("weighted_sum", deltas)
    assert usage == Usage(D("6.666666666667"), 2)
    # rounded to 3 places as Lago shows it: 6.667
    assert usage.quantity.quantize(D("0.001")) == D("6.667")


def test_weighted_sum_starts_from_the_prior_level() -> None:
    # no events: the level carried in from earlier periods holds all period long
    assert run("weighted_sum", [], prior=D(7)) == Usage(D(7), 0)
    # level 10, +10 exactly half way (Apr 16 00:00 = 15 of 30 days):
    # (10 × 15 + 20 × 15) / 30 = 15
    assert run("weighted_sum", samples((at(16), D(10))), prior=D(10)).quantity == D(15)


def test_weighted_sum_counts_time_in_seconds() -> None:
    # +30 at Apr 30 12:00: level 30 for the last 12 hours of 720 -> 30 × 12 / 720 = 0.5
    assert run("weighted_sum", samples((at(30, 12), D(30)))).quantity == D("0.5")


def test_weighted_sum_event_order_does_not_matter() -> None:
    deltas = samples((at(20), D(-20)), (at(10), D(20)))
    assert run("weighted_sum", deltas).quantity == D("6.666666666667")


def test_weighted_sum_clamps_events_outside_the_period() -> None:
    # an event before the start acts from the start; one at the (exclusive) end adds nothing
    before = samples((APRIL[0] - timedelta(days=3), D(5)))
    assert run("weighted_sum", before).quantity == D(5)
    at_end = samples((APRIL[1], D(5)))
    assert run("weighted_sum", at_end).quantity == D(0)


def test_weighted_sum_in_a_dst_month_uses_elapsed_time() -> None:
    # Berlin, March 2026: Mar 1 00:00 CET -> Apr 1 00:00 CEST is 743 real hours (not 744).
    march = next(Schedule.build(date(2026, 3, 1), None, "month", "Europe/Berlin").periods())
    # a constant level stays exactly that level, with or without events
    zero_delta = samples((datetime(2026, 3, 15, 12, tzinfo=UTC), D(0)))
    assert aggregate("weighted_sum", zero_delta, march.start, march.end, D(10)).quantity == D(10)
    assert aggregate("weighted_sum", [], march.start, march.end, D(10)).quantity == D(10)
    # +24 at Mar 16 00:00 CET (= Mar 15 23:00Z): 15 × 24 = 360 hours before, 743 - 360 = 383 after
    # average = 24 × 383 / 743 = 9192 / 743 = 12.371467025572005... -> 12.371467025572
    step = samples((datetime(2026, 3, 15, 23, tzinfo=UTC), D(24)))
    assert aggregate("weighted_sum", step, march.start, march.end).quantity == D("12.371467025572")
    # the same instant written in local time gives the same result
    step_local = samples((datetime(2026, 3, 16, tzinfo=BERLIN), D(24)))
    assert aggregate("weighted_sum", step_local, march.start, march.end).quantity == D("12.371467025572")


def test_weighted_average_of_an_empty_period_is_zero() -> None:
    assert weighted_average(D(5), [], APRIL[0], APRIL[0]) == D(0)


# ---------------------------------------------------------------------------------------------
# Properties: any split into two batches gives the same aggregate
# ---------------------------------------------------------------------------------------------

# timestamps at whole seconds inside a 10,000-second period, integer deltas: every weighted
# average is area / 10,000, exact well within the 12 kept decimal places
SHORT = (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC) + timedelta(seconds=10_000))
NUMBERS = st.builds(lambda n, k: D(n).scaleb(-k), st.integers(-(10**9), 10**9), st.integers(0, 6))
MOMENTS = st.integers(0, 9_999).map(lambda s: SHORT[0] + timedelta(seconds=s))
NUMERIC_SAMPLES = st.lists(st.builds(Sample, MOMENTS, NUMBERS), max_size=30)
KEYS = st.one_of(
    st.sampled_from(["a", "b", "c", "007", "7", "1", "1.0"]),
    st.integers(-3, 10),
    st.integers(0, 20).map(lambda n: D(n) / 4),
)
KEY_SAMPLES = st.lists(st.builds(Sample, MOMENTS, KEYS), max_size=30)
SETTINGS = settings(max_examples=200, deadline=None)


def agg(aggregation: str, items: list[Sample], prior: Decimal = D(0)) -> Usage:
    return aggregate(aggregation, items, SHORT[0], SHORT[1], prior)


@SETTINGS
@given(NUMERIC_SAMPLES, st.data())
def test_split_count_and_sum(items: list[Sample], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(items)))
    one, two = items[:cut], items[cut:]
    assert agg("count", items).quantity == agg("count", one).quantity + agg("count", two).quantity
    assert agg("sum", items).quantity == agg("sum", one).quantity + agg("sum", two).quantity
    assert agg("sum", items).events == agg("sum", one).events + agg("sum", two).events


@SETTINGS
@given(NUMERIC_SAMPLES, st.data())
def test_split_max_and_min(items: list[Sample], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(items)))
    one, two = items[:cut], items[cut:]
    parts = [part for part in (one, two) if part]
    if not parts:
        return
    assert agg("max", items).quantity == max(agg("max", part).quantity for part in parts)
    assert agg("min", items).quantity == min(agg("min", part).quantity for part in parts)


@SETTINGS
@given(NUMERIC_SAMPLES, st.data())
def test_split_latest(items: list[Sample], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(items)))
    one, two = items[:cut], items[cut:]
    candidates = [(s.timestamp, index, s.value) for index, part in enumerate((one, two)) if part
                  for s in [max(reversed(part), key=lambda x: x.timestamp)]]  # fmt: skip
    if not candidates:
        return
    # the batch whose latest event is later wins; on a tie the second batch (given later) wins
    expected = max(candidates, key=lambda c: (c[0], c[1]))[2]
    assert agg("latest", items).quantity == expected
    # with distinct timestamps, the batches' order does not matter either
    if len({s.timestamp for s in items}) == len(items):
        assert agg("latest", two + one).quantity == agg("latest", items).quantity


@SETTINGS
@given(KEY_SAMPLES, st.data())
def test_split_unique_count(items: list[Sample], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(items)))
    one, two = items[:cut], items[cut:]
    whole = agg("unique_count", items).quantity
    assert whole == agg("unique_count", two + one).quantity
    assert max(agg("unique_count", one).quantity, agg("unique_count", two).quantity) <= whole
    assert whole <= agg("unique_count", one).quantity + agg("unique_count", two).quantity


@SETTINGS
@given(NUMERIC_SAMPLES, st.data(), st.integers(-1000, 1000).map(D))
def test_split_weighted_sum_is_additive(items: list[Sample], data: st.DataObject, prior: Decimal) -> None:
    items = [Sample(s.timestamp, s.value.quantize(D(1))) for s in items]  # integer deltas
    cut = data.draw(st.integers(0, len(items)))
    one, two = items[:cut], items[cut:]
    # the average level is linear in the deltas: W(prior, A ∪ B) = W(prior, A) + W(0, B)
    whole = agg("weighted_sum", items, prior).quantity
    assert whole == agg("weighted_sum", one, prior).quantity + agg("weighted_sum", two).quantity
    assert whole == agg("weighted_sum", two + one, prior).quantity


@SETTINGS
@given(NUMERIC_SAMPLES, st.data())
def test_split_average_merges_by_sum_and_count(items: list[Sample], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(items)))
    one, two = items[:cut], items[cut:]
    whole = agg("average", items)
    # the batches' (sum, count) add up, and the average of the union follows from them alone
    total = agg("sum", one).quantity + agg("sum", two).quantity
    count = agg("count", one).events + agg("count", two).events
    assert whole == Usage(average_of(total, count), count)
    assert whole.quantity == agg("average", two + one).quantity  # the order of batches does not matter


def test_average_is_not_the_mean_of_the_batches_means() -> None:
    # batch 1: {10}; batch 2: {0, 0, 0}. Mean of the means: (10 + 0) / 2 = 5; the average is 10 / 4 = 2.5
    one, two = samples((at(1), D(10))), samples((at(2), D(0)), (at(3), D(0)), (at(4), D(0)))
    means = (run("average", one).quantity + run("average", two).quantity) / 2
    assert means == D(5)
    assert run("average", one + two).quantity == D("2.5") != means


@SETTINGS
@given(st.permutations(EVENTS), st.sampled_from(["count", "sum", "max", "min", "unique_count", "latest", "average"]))
def test_order_of_events_does_not_matter(items: list[Sample], aggregation: str) -> None:
    # EVENTS have distinct timestamps
    assert run(aggregation, list(items)) == run(aggregation, EVENTS)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Europe/London"]),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 1)),
    st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), max_size=5),
    st.integers(-1000, 1000).map(D),
)
def test_a_constant_level_averages_to_itself_in_every_timezone(
    zone: str, day: date, fractions: list[float], level: Decimal
) -> None:
    period = next(Schedule.build(day.replace(day=1), None, "month", zone).periods())
    span = period.end.astimezone(UTC) - period.start.astimezone(UTC)
    zeros = [Sample(period.start.astimezone(UTC) + span * f, D(0)) for f in fractions]
    assert aggregate("weighted_sum", zeros, period.start, period.end, level).quantity == level
