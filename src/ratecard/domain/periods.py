"""Billing periods: anchors, month-end clamping, timezones, short first periods, proration.

Periods are half-open [start, end) and computed in local time of the subscription's
timezone. Boundaries are always derived from the anchor day and a month count, never
by stepping from the previous boundary, so anchor 31 gives Jan 31, Feb 28, Mar 31.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import cached_property
from zoneinfo import ZoneInfo

INTERVAL_MONTHS = {"month": 1, "quarter": 3, "year": 12}


class PeriodError(ValueError):
    """A period rule that cannot be applied (bad anchor, naive datetime, unknown interval)."""


def anchored_date(year: int, month: int, anchor_day: int) -> date:
    """The anchor day in a month; an anchor past the month's end falls on its last day."""
    if anchor_day <= 28:  # in every month: no calendar to consult (the common anchors, and the hot path)
        return date(year, month, anchor_day)
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(anchor_day, last))


def shift_month(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def to_local(moment: datetime | date, tz: ZoneInfo) -> datetime:
    """A date means local midnight; an aware datetime is converted; a naive one is refused."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise PeriodError(f"datetime {moment.isoformat()} has no timezone")
        return moment.astimezone(tz)
    return local_midnight(moment, tz)


@dataclass(frozen=True)
class Period:
    """One billing period [start, end), and the full anchor-aligned period it is part of.

    A short first (or last) period has start > full_start (or end < full_end); flat fees
    are prorated by whole days: days / full_days.
    """

    start: datetime
    end: datetime
    full_start: datetime
    full_end: datetime

    @property
    def days(self) -> int:
        return _whole_days(self.start, self.end)

    @property
    def full_days(self) -> int:
        return _whole_days(self.full_start, self.full_end)

    @property
    def is_full(self) -> bool:
        return self.start == self.full_start and self.end == self.full_end

    def prorate(self, amount: Decimal) -> Decimal:
        """amount × days / days_in_full_period, exact (no rounding here)."""
        if self.is_full or self.days == self.full_days:
            return amount
        return amount * Decimal(self.days) / Decimal(self.full_days)

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _whole_days(start: datetime, end: datetime) -> int:
    """Calendar days between two local instants, counted on their local dates.

    A period starting mid-day counts its first day whole: proration is by whole days.
    """
    days = (end.date() - start.date()).days
    if end.timetz().replace(tzinfo=None) != time(0):
        days += 1
    return max(days, 0)


@dataclass(frozen=True)
class Schedule:
    """The billing calendar of one subscription."""

    start: datetime  # local, aware
    end: datetime | None  # local, aware, exclusive
    anchor_day: int
    interval: str
    tz: ZoneInfo

    @classmethod
    def build(
        cls,
        start: datetime | date,
        end: datetime | date | None,
        interval: str,
        tz: ZoneInfo | str,
        anchor_day: int | None = None,
    ) -> Schedule:
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        if interval not in INTERVAL_MONTHS:
            raise PeriodError(f"unknown interval {interval!r}")
        local_start = to_local(start, zone)
        local_end = to_local(end, zone) if end is not None else None
        anchor = anchor_day if anchor_day is not None else local_start.day
        if not 1 <= anchor <= 31:
            raise PeriodError(f"anchor day {anchor} is outside 1..31")
        if local_end is not None and local_end <= local_start:
            raise PeriodError("end must be after start")
        return cls(local_start, local_end, anchor, interval, zone)

    @property
    def step(self) -> int:
        return INTERVAL_MONTHS[self.interval]

    @cached_property
    def _first_anchor(self) -> tuple[int, int]:
        """(year, month) of the first anchor boundary at or after the start."""
        year, month = self.start.year, self.start.month
        while True:
            boundary = local_midnight(anchored_date(year, month, self.anchor_day), self.tz)
            if boundary >= self.start:
                return year, month
            year, month = shift_month(year, month, 1)

    def boundary(self, k: int) -> datetime:
        """The k-th anchor boundary (k=0 the first at or after start; negative goes back)."""
        y0, m0 = self._first_anchor
        year, month = shift_month(y0, m0, k * self.step)
        return local_midnight(anchored_date(year, month, self.anchor_day), self.tz)

    def periods(self) -> Iterator[Period]:
        """Every period of the subscription in order (endless when it has no end)."""
        first = self.boundary(0)
        if self.start < first:
            full_start = self.boundary(-1)
            end = first if self.end is None else min(first, self.end)
            yield Period(self.start, end, full_start, first)
            if self.end is not None and self.end <= first:
                return
        yield from self._periods_from_boundary(0)

    def _periods_from_boundary(self, k: int) -> Iterator[Period]:
        """The periods starting at the k-th anchor boundary and after (k >= 0)."""
        full_end = self.boundary(k)
        while True:
            start, full_end = full_end, self.boundary(k + 1)  # a period starts where the one before ended
            if self.end is not None and self.end <= start:
                return
            end = full_end if self.end is None else min(full_end, self.end)
            yield Period(start, end, start, full_end)
            if end != full_end:
                return
            k += 1

    def _last_boundary_at_or_before(self, moment: datetime) -> int:
        """The largest k with boundary(k) <= moment, for a moment at or after boundary(0).

        The month count gives k (at most one off: the anchor day within the month); the two
        checks settle it, so the answer is the one stepping from the start would give."""
        local = moment.astimezone(self.tz)
        year, month = self._first_anchor
        k = ((local.year - year) * 12 + (local.month - month)) // self.step
        while k > 0 and self.boundary(k) > moment:
            k -= 1
        while self.boundary(k + 1) <= moment:
            k += 1
        return k

    def periods_from(self, moment: datetime) -> Iterator[Period]:
        """The periods ending after `moment` (aware), in order: the period holding it first, if any.

        The same periods as skipping the earlier ones of periods(), without stepping through them:
        a subscription years old answers as fast as a new one."""
        if moment < self.boundary(0):
            candidates = self.periods()
        else:
            candidates = self._periods_from_boundary(self._last_boundary_at_or_before(moment))
        return (period for period in candidates if period.end > moment)

    def periods_until(self, until: datetime) -> list[Period]:
        """Periods that have started at or before `until` (aware)."""
        result = []
        for period in self.periods():
            if period.start > until:
                break
            result.append(period)
        return result

    def period_containing(self, moment: datetime) -> Period | None:
        """The one period holding `moment`, or None outside the subscription's lifetime."""
        if moment < self.start or (self.end is not None and moment >= self.end):
            return None
        for period in self.periods_from(moment):
            return period if period.contains(moment) else None
        return None
