"""Billing periods (docs/billing.md): anchors, month-end clamping, short first periods, timezones, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.money import quantize
from ratecard.domain.periods import Period, PeriodError, Schedule, anchored_date

D = Decimal
BERLIN = ZoneInfo("Europe/Berlin")


def local(y: int, m: int, d: int, tz: str | ZoneInfo = "UTC", hour: int = 0) -> datetime:
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    return datetime(y, m, d, hour, tzinfo=zone)


def utc(y: int, m: int, d: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, second, micro, tzinfo=UTC)


def first(schedule: Schedule, n: int) -> list[Period]:
    return list(islice(schedule.periods(), n))


def starts(periods: list[Period]) -> list[date]:
    return [p.start.date() for p in periods]


# ---------------------------------------------------------------------------------------------
# Monthly periods and anchors
# ---------------------------------------------------------------------------------------------


def test_monthly_periods_on_anchor_are_full_and_half_open() -> None:
    schedule = Schedule.build(date(2026, 1, 1), None, "month", "UTC", anchor_day=1)
    periods = first(schedule, 3)
    assert [(p.start, p.end) for p in periods] == [
        (local(2026, 1, 1), local(2026, 2, 1)),
        (local(2026, 2, 1), local(2026, 3, 1)),
        (local(2026, 3, 1), local(2026, 4, 1)),
    ]
    assert all(p.is_full for p in periods)
    # half-open: the boundary instant belongs to the next period only
    assert not periods[0].contains(utc(2026, 2, 1))
    assert periods[1].contains(utc(2026, 2, 1))
    assert periods[0].contains(utc(2026, 1, 31, 23, 59, 59, 999999))


def test_anchor_defaults_to_the_start_day() -> None:
    schedule = Schedule.build(date(2026, 1, 15), None, "month", "UTC")
    assert starts(first(schedule, 3)) == [date(2026, 1, 15), date(2026, 2, 15), date(2026, 3, 15)]
    assert first(schedule, 1)[0].is_full


def test_anchor_31_falls_on_the_last_day_of_short_months() -> None:
    # anchor 31: Jan 31, Feb 28, Mar 31, Apr 30, May 31, Jun 30 (each derived from the anchor,
    # never from the previous boundary, so March goes back to the 31st)
    schedule = Schedule.build(date(2026, 1, 31), None, "month", "UTC", anchor_day=31)
    assert starts(first(schedule, 6)) == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
        date(2026, 6, 30),
    ]


def test_anchor_31_in_a_leap_year_gives_february_29() -> None:
    schedule = Schedule.build(date(2028, 1, 31), None, "month", "UTC", anchor_day=31)
    assert starts(first(schedule, 4)) == [date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30)]
    feb = first(schedule, 2)[1]
    # Feb 29 -> Mar 31 is a full period of 31 days
    assert feb.is_full and feb.days == 31


@pytest.mark.parametrize(
    ("anchor", "year", "expected"),
    [(29, 2027, date(2027, 2, 28)), (29, 2028, date(2028, 2, 29)), (30, 2026, date(2026, 2, 28))],
)
def test_anchors_29_and_30_clamp_in_february(anchor: int, year: int, expected: date) -> None:
    schedule = Schedule.build(date(year, 1, anchor), None, "month", "UTC", anchor_day=anchor)
    assert first(schedule, 2)[1].start.date() == expected
    # and come back to the anchor in March
    assert first(schedule, 3)[2].start.date() == date(year, 3, anchor)


def test_anchored_date_clamps() -> None:
    assert anchored_date(2026, 2, 31) == date(2026, 2, 28)
    assert anchored_date(2028, 2, 31) == date(2028, 2, 29)
    assert anchored_date(2026, 4, 31) == date(2026, 4, 30)
    assert anchored_date(2026, 5, 31) == date(2026, 5, 31)


# ---------------------------------------------------------------------------------------------
# Quarter and year
# ---------------------------------------------------------------------------------------------


def test_quarter_steps_three_months_from_the_anchor() -> None:
    schedule = Schedule.build(date(2026, 1, 1), None, "quarter", "UTC", anchor_day=1)
    assert starts(first(schedule, 5)) == [
        date(2026, 1, 1),
        date(2026, 4, 1),
        date(2026, 7, 1),
        date(2026, 10, 1),
        date(2027, 1, 1),
    ]


def test_quarter_with_anchor_31() -> None:
    # Jan 31 -> Apr 30 -> Jul 31 -> Oct 31 -> Jan 31
    schedule = Schedule.build(date(2026, 1, 31), None, "quarter", "UTC", anchor_day=31)
    periods = first(schedule, 4)
    assert starts(periods) + [periods[-1].end.date()] == [
        date(2026, 1, 31),
        date(2026, 4, 30),
        date(2026, 7, 31),
        date(2026, 10, 31),
        date(2027, 1, 31),
    ]
    # Jan 31 -> Apr 30: 0 (rest of Jan) + 28 + 31 + 30 = 89 days
    assert periods[0].days == 89


def test_year_from_february_29_clamps_to_february_28() -> None:
    schedule = Schedule.build(date(2028, 2, 29), None, "year", "UTC")
    assert starts(first(schedule, 5)) == [
        date(2028, 2, 29),
        date(2029, 2, 28),
        date(2030, 2, 28),
        date(2031, 2, 28),
        date(2032, 2, 29),
    ]
    # 2028-02-29 -> 2029-02-28 is 365 days
    assert first(schedule, 1)[0].days == 365


# ---------------------------------------------------------------------------------------------
# Short first period and proration by whole days
# ---------------------------------------------------------------------------------------------


def test_short_first_period_up_to_the_next_anchor() -> None:
    schedule = Schedule.build(date(2026, 1, 15), None, "month", "UTC", anchor_day=1)
    short, full = first(schedule, 2)
    assert (short.start, short.end) == (local(2026, 1, 15), local(2026, 2, 1))
    # the full period it belongs to: Jan 1 -> Feb 1
    assert (short.full_start, short.full_end) == (local(2026, 1, 1), local(2026, 2, 1))
    assert not short.is_full
    # Jan 15..31 inclusive = 17 days of 31
    assert (short.days, short.full_days) == (17, 31)
    assert (full.start, full.end) == (local(2026, 2, 1), local(2026, 3, 1))
    assert full.is_full


def test_flat_fee_of_a_short_period_is_prorated_by_whole_days() -> None:
    short = first(Schedule.build(date(2026, 1, 15), None, "month", "UTC", anchor_day=1), 1)[0]
    # 49.00 × 17 / 31 = 833 / 31 = 26.870967741935... -> 26.87
    exact = short.prorate(D("49.00"))
    assert exact == D("49.00") * 17 / 31
    assert quantize(exact, "EUR") == D("26.87")


def test_prorating_in_february() -> None:
    short = first(Schedule.build(date(2026, 2, 20), None, "month", "UTC", anchor_day=1), 1)[0]
    # Feb 20..28 = 9 days of 28: 49 × 9 / 28 = 441 / 28 = 15.75 exactly
    assert (short.days, short.full_days) == (9, 28)
    assert short.prorate(D("49")) == D("15.75")


def test_short_first_period_with_anchor_31() -> None:
    short = first(Schedule.build(date(2026, 2, 10), None, "month", "UTC", anchor_day=31), 1)[0]
    # Feb 10 -> Feb 28 (the clamped anchor), inside the full period Jan 31 -> Feb 28 (28 days)
    assert (short.start.date(), short.end.date()) == (date(2026, 2, 10), date(2026, 2, 28))
    assert (short.full_start.date(), short.full_end.date()) == (date(2026, 1, 31), date(2026, 2, 28))
    # 18 of 28 days: 30.00 × 18 / 28 = 19.2857142... -> 19.29
    assert (short.days, short.full_days) == (18, 28)
    assert quantize(short.prorate(D("30.00")), "EUR") == D("19.29")


def test_short_first_quarter_is_prorated_against_the_full_quarter() -> None:
    # quarterly, anchor 1, start Feb 15: the short period runs to the next anchor day (Mar 1)
    # inside the quarter Dec 1 -> Mar 1 (31 + 31 + 28 = 90 days); Feb 15..28 = 14 days
    short, nxt = first(Schedule.build(date(2026, 2, 15), None, "quarter", "UTC", anchor_day=1), 2)
    assert (short.start.date(), short.end.date()) == (date(2026, 2, 15), date(2026, 3, 1))
    assert (short.full_start.date(), short.full_end.date()) == (date(2025, 12, 1), date(2026, 3, 1))
    assert (short.days, short.full_days) == (14, 90)
    # 90.00 × 14 / 90 = 14.00
    assert short.prorate(D("90.00")) == D("14")
    assert (nxt.start.date(), nxt.end.date()) == (date(2026, 3, 1), date(2026, 6, 1))


def test_full_period_is_not_prorated() -> None:
    full = first(Schedule.build(date(2026, 1, 1), None, "month", "UTC"), 1)[0]
    assert str(full.prorate(D("49.00"))) == "49.00"


def test_start_mid_day_on_the_anchor_day_is_a_whole_first_day() -> None:
    # 10:00 on the anchor day: the period starts at 10:00 but counts Jan 15 whole, so the
    # first period has all its 31 days and the flat fee is not prorated
    schedule = Schedule.build(utc(2026, 1, 15, 10), None, "month", "UTC")
    p = first(schedule, 1)[0]
    assert p.start == utc(2026, 1, 15, 10)
    assert p.end == local(2026, 2, 15)
    assert (p.days, p.full_days) == (31, 31)
    assert p.prorate(D("49.00")) == D("49.00")


# ---------------------------------------------------------------------------------------------
# Subscription end truncates the last period
# ---------------------------------------------------------------------------------------------


def test_end_truncates_the_last_period() -> None:
    schedule = Schedule.build(date(2026, 1, 1), date(2026, 3, 10), "month", "UTC", anchor_day=1)
    periods = list(schedule.periods())  # finite
    assert starts(periods) == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    last = periods[-1]
    assert last.end == local(2026, 3, 10)
    assert (last.full_start, last.full_end) == (local(2026, 3, 1), local(2026, 4, 1))
    # Mar 1..9 = 9 days of 31: 49 × 9 / 31 = 441 / 31 = 14.2258... -> 14.23
    assert (last.days, last.full_days) == (9, 31)
    assert quantize(last.prorate(D("49")), "EUR") == D("14.23")


def test_end_on_a_boundary_leaves_the_last_period_full() -> None:
    periods = list(Schedule.build(date(2026, 1, 1), date(2026, 3, 1), "month", "UTC").periods())
    assert len(periods) == 2 and all(p.is_full for p in periods)


def test_end_before_the_first_anchor_gives_one_short_period() -> None:
    periods = list(Schedule.build(date(2026, 1, 15), date(2026, 1, 25), "month", "UTC", anchor_day=1).periods())
    assert len(periods) == 1
    (p,) = periods
    assert (p.start, p.end) == (local(2026, 1, 15), local(2026, 1, 25))
    assert (p.full_start, p.full_end) == (local(2026, 1, 1), local(2026, 2, 1))
    # Jan 15..24 = 10 days of 31
    assert (p.days, p.full_days) == (10, 31)


def test_period_containing_is_none_outside_the_lifetime() -> None:
    schedule = Schedule.build(date(2026, 1, 15), date(2026, 3, 10), "month", "UTC", anchor_day=1)
    assert schedule.period_containing(utc(2026, 1, 14, 23, 59)) is None
    assert schedule.period_containing(utc(2026, 3, 10)) is None  # end is exclusive
    assert schedule.period_containing(utc(2026, 1, 15)).start == local(2026, 1, 15)
    assert schedule.period_containing(utc(2026, 3, 9, 23, 59)).end == local(2026, 3, 10)


def test_periods_until() -> None:
    schedule = Schedule.build(date(2026, 1, 1), None, "month", "UTC")
    # periods that have started at or before Mar 1 00:00: Jan, Feb, Mar
    assert starts(schedule.periods_until(utc(2026, 3, 1))) == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert starts(schedule.periods_until(utc(2026, 2, 28, 23))) == [date(2026, 1, 1), date(2026, 2, 1)]
    assert schedule.periods_until(utc(2025, 12, 31)) == []


# ---------------------------------------------------------------------------------------------
# Timezones: local midnight, DST
# ---------------------------------------------------------------------------------------------


def test_periods_start_at_local_midnight_in_the_customer_timezone() -> None:
    berlin = Schedule.build(date(2026, 1, 1), None, "month", "Europe/Berlin", anchor_day=1)
    jan = first(berlin, 1)[0]
    # Berlin is UTC+1 in winter: Jan 1 00:00 local = Dec 31 23:00 UTC
    assert jan.start == utc(2025, 12, 31, 23)
    assert jan.end == utc(2026, 1, 31, 23)


def test_an_event_near_midnight_lands_in_different_periods_in_berlin_and_utc() -> None:
    berlin = Schedule.build(date(2026, 1, 1), None, "month", "Europe/Berlin", anchor_day=1)
    in_utc = Schedule.build(date(2026, 1, 1), None, "month", "UTC", anchor_day=1)
    # 2026-01-31T23:30Z is Feb 1 00:30 in Berlin: February there, still January in UTC
    moment = utc(2026, 1, 31, 23, 30)
    assert berlin.period_containing(moment).start == local(2026, 2, 1, BERLIN)
    assert in_utc.period_containing(moment).start == local(2026, 1, 1)
    # 2025-12-31T23:30Z is already Jan 1 in Berlin but before the UTC subscription starts
    early = utc(2025, 12, 31, 23, 30)
    assert berlin.period_containing(early).start == local(2026, 1, 1, BERLIN)
    assert in_utc.period_containing(early) is None


def test_dst_spring_forward_month_is_23_hours_shorter_but_31_days() -> None:
    # Berlin switches to CEST on 2026-03-29: March runs from 23:00Z (Feb 28) to 22:00Z (Mar 31)
    march = first(Schedule.build(date(2026, 3, 1), None, "month", "Europe/Berlin"), 1)[0]
    assert march.start == utc(2026, 2, 28, 23)
    assert march.end == utc(2026, 3, 31, 22)
    assert march.end.astimezone(UTC) - march.start.astimezone(UTC) == timedelta(days=31) - timedelta(hours=1)
    assert (march.days, march.full_days) == (31, 31)


def test_dst_fall_back_month() -> None:
    # Berlin returns to CET on 2026-10-25: October lasts 31 days + 1 hour
    october = first(Schedule.build(date(2026, 10, 1), None, "month", "Europe/Berlin"), 1)[0]
    assert october.start == utc(2026, 9, 30, 22)
    assert october.end == utc(2026, 10, 31, 23)
    assert october.end.astimezone(UTC) - october.start.astimezone(UTC) == timedelta(days=31, hours=1)
    assert october.days == 31


def test_dst_boundaries_are_exact_instants() -> None:
    schedule = Schedule.build(date(2026, 1, 1), None, "month", "Europe/Berlin")
    # Apr 1 00:00 CEST = Mar 31 22:00Z: half-open boundary
    assert schedule.period_containing(utc(2026, 3, 31, 21, 59, 59, 999999)).start.month == 3
    assert schedule.period_containing(utc(2026, 3, 31, 22)).start.month == 4


def test_prorating_across_dst_counts_whole_local_days() -> None:
    # start Mar 15 in Berlin, anchor 1: Mar 15..31 = 17 of 31 days, though the span is 16d 23h
    short = first(Schedule.build(date(2026, 3, 15), None, "month", "Europe/Berlin", anchor_day=1), 1)[0]
    assert (short.days, short.full_days) == (17, 31)
    assert short.prorate(D("31")) == D("17")


def test_a_datetime_start_is_converted_to_the_local_timezone() -> None:
    # 2026-01-14T23:30Z is Jan 15 00:30 in Berlin: anchor day 15 by default
    schedule = Schedule.build(utc(2026, 1, 14, 23, 30), None, "month", "Europe/Berlin")
    assert schedule.anchor_day == 15
    assert first(schedule, 2)[1].start == local(2026, 2, 15, BERLIN)


# ---------------------------------------------------------------------------------------------
# Refused inputs
# ---------------------------------------------------------------------------------------------


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(PeriodError):
        Schedule.build(datetime(2026, 1, 1), None, "month", "UTC")


@pytest.mark.parametrize("anchor", [0, 32, -1])
def test_anchor_outside_1_to_31_is_refused(anchor: int) -> None:
    with pytest.raises(PeriodError):
        Schedule.build(date(2026, 1, 1), None, "month", "UTC", anchor_day=anchor)


def test_unknown_interval_is_refused() -> None:
    with pytest.raises(PeriodError):
        Schedule.build(date(2026, 1, 1), None, "week", "UTC")


@pytest.mark.parametrize("end", [date(2026, 1, 1), date(2025, 12, 1)])
def test_end_must_be_after_start(end: date) -> None:
    with pytest.raises(PeriodError):
        Schedule.build(date(2026, 1, 1), end, "month", "UTC")


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # 30-minute DST
    "Pacific/Chatham",  # UTC+12:45 / +13:45
    "America/Santiago",  # DST switches at midnight
]


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    tz = ZoneInfo(draw(st.sampled_from(ZONES)))
    day = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2032, 12, 31)))
    seconds = draw(st.one_of(st.just(0), st.integers(0, 86399)))
    start = (datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(seconds=seconds)).astimezone(UTC)
    end = None
    if draw(st.booleans()):
        end = start + timedelta(seconds=draw(st.integers(1, 3 * 366 * 86400)))
    interval = draw(st.sampled_from(["month", "quarter", "year"]))
    anchor = draw(st.one_of(st.none(), st.integers(1, 31)))
    return Schedule.build(start, end, interval, tz, anchor)


def _enumerate(schedule: Schedule, horizon: datetime) -> list[Period]:
    """Every period starting before `horizon` (a bounded prefix of an endless schedule)."""
    result = []
    for period in schedule.periods():
        if period.start >= horizon:
            break
        result.append(period)
        assert len(result) < 400
    return result


@settings(max_examples=200, deadline=None)
@given(schedules(), st.floats(min_value=0, max_value=1, exclude_max=True))
def test_every_instant_in_the_lifetime_lands_in_exactly_one_period(schedule: Schedule, fraction: float) -> None:
    span = (schedule.end - schedule.start) if schedule.end else timedelta(days=3 * 366)
    offset = timedelta(microseconds=int(span / timedelta(microseconds=1) * fraction))
    moment = (schedule.start + offset).astimezone(UTC)
    if schedule.end is not None and moment >= schedule.end:  # float rounding at the very end
        moment = schedule.end - timedelta(microseconds=1)

    found = schedule.period_containing(moment)
    assert found is not None
    assert found.contains(moment)

    # brute force over the materialized schedule: exactly one period holds the instant
    periods = _enumerate(schedule, moment + timedelta(days=400))
    holders = [p for p in periods if p.start <= moment < p.end]
    assert holders == [found]


@settings(max_examples=200, deadline=None)
@given(schedules())
def test_periods_tile_the_lifetime_without_gaps_or_overlaps(schedule: Schedule) -> None:
    horizon = schedule.end if schedule.end is not None else schedule.start + timedelta(days=3 * 366)
    periods = _enumerate(schedule, horizon)
    assert periods, "a subscription has at least one period"
    assert periods[0].start == schedule.start
    for before, after in pairwise(periods):
        assert before.end == after.start
    if schedule.end is not None:
        assert periods[-1].end == schedule.end
    for index, p in enumerate(periods):
        assert p.start < p.end
        assert p.full_start <= p.start and p.end <= p.full_end
        assert 0 < p.days <= p.full_days
        # only the first period may start late, only the last may end early
        if index > 0:
            assert p.start == p.full_start
        if index < len(periods) - 1:
            assert p.end == p.full_end
        # inner boundaries are local midnights on the (clamped) anchor day
        if index > 0:
            local_start = p.start.astimezone(schedule.tz)
            assert local_start.time() == datetime.min.time()
            assert local_start.date() == anchored_date(local_start.year, local_start.month, schedule.anchor_day)


@settings(max_examples=150, deadline=None)
@given(schedules(), st.integers(0, 10**9).map(lambda n: D(n) / 100))
def test_prorated_amount_is_the_exact_share_of_whole_days(schedule: Schedule, amount: Decimal) -> None:
    p = first(schedule, 1)[0]
    prorated = p.prorate(amount)
    assert 0 <= prorated <= amount
    if p.days == p.full_days:
        assert prorated == amount
    else:
        assert prorated == amount * p.days / p.full_days


# The fast paths (periods_from, period_containing) count months to the period holding an instant;
# stepping through every period from the start is the reference they must equal.

def _slow_periods_from(schedule: Schedule, moment: datetime, count: int) -> list[Period]:
    return list(islice((p for p in schedule.periods() if p.end > moment), count))


def _slow_period_containing(schedule: Schedule, moment: datetime) -> Period | None:
    if moment < schedule.start or (schedule.end is not None and moment >= schedule.end):
        return None
    for period in schedule.periods():
        if period.contains(moment):
            return period
        if period.start > moment:
            return None
    return None


@st.composite
def moments(draw: st.DrawFn, schedule: Schedule) -> datetime:
    """An instant anywhere from before the start to years after it: on a period boundary or a
    microsecond either side of one (local midnights, DST days), or anywhere; in UTC or local time."""
    if draw(st.booleans()):
        periods = list(islice(schedule.periods(), 130))
        points = [p.start for p in periods] + [periods[-1].end]
        moment = draw(st.sampled_from(points)) + timedelta(microseconds=draw(st.sampled_from([-1, 0, 1])))
    else:
        moment = schedule.start + timedelta(seconds=draw(st.integers(-400 * 86400, 12 * 366 * 86400)))
    return moment.astimezone(UTC) if draw(st.booleans()) else moment.astimezone(schedule.tz)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_periods_from_equals_stepping_from_the_start(data: st.DataObject) -> None:
    schedule = data.draw(schedules())
    moment = data.draw(moments(schedule))
    assert list(islice(schedule.periods_from(moment), 3)) == _slow_periods_from(schedule, moment, 3)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_period_containing_equals_stepping_from_the_start(data: st.DataObject) -> None:
    schedule = data.draw(schedules())
    moment = data.draw(moments(schedule))
    assert schedule.period_containing(moment) == _slow_period_containing(schedule, moment)


def test_periods_from_a_moment_years_after_the_start_begins_with_the_period_holding_it() -> None:
    schedule = Schedule.build(date(2001, 1, 31), None, "month", "Europe/Berlin")
    moment = local(2026, 3, 15, BERLIN)
    upcoming = list(islice(schedule.periods_from(moment), 2))
    assert [(p.start, p.end) for p in upcoming] == [(local(2026, 2, 28, BERLIN), local(2026, 3, 31, BERLIN)),
                                                   (local(2026, 3, 31, BERLIN), local(2026, 4, 30, BERLIN))]
