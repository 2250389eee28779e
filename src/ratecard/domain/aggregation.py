"""The eight aggregations over one period's events, as pure functions.

The store pushes the same aggregations down to SQL for speed; these functions are the
reference the SQL is tested against, and the fallback for small or exact cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext

from .json_values import unique_key
from .numbers import MAX_DIGITS, MAX_MAGNITUDE

AGGREGATIONS = ("count", "sum", "max", "min", "unique_count", "latest", "weighted_sum", "average")
NUMERIC_AGGREGATIONS = frozenset({"sum", "max", "min", "latest", "weighted_sum", "average"})
NEEDS_FIELD = frozenset(AGGREGATIONS) - {"count"}

# weighted_sum yields a time-weighted average; keep 12 decimal places of it.
WEIGHTED_QUANTUM = Decimal("1e-12")
# average is sum / count: exact when that has at most 12 decimal places, else rounded to 12
AVERAGE_QUANTUM = Decimal("1e-12")


@dataclass(frozen=True)
class Usage:
    """A meter's aggregate over a period: the quantity and how many events made it.

    `values`: each event's value in the period's order (timestamp, then arrival), only for a sum
    meter a charge prices event by event (domain.pricing.percentage_per_event); None otherwise."""

    quantity: Decimal
    events: int
    values: tuple[Decimal, ...] | None = None

    @classmethod
    def zero(cls) -> Usage:
        return cls(Decimal(0), 0)


@dataclass(frozen=True)
class Sample:
    """One event as aggregation sees it: when, and the value of the meter's field."""

    timestamp: datetime
    value: object  # Decimal for numeric aggregations, any hashable for unique_count


def aggregate(
    aggregation: str,
    samples: Sequence[Sample],
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    prior_level: Decimal = Decimal(0),
) -> Usage:
    """Aggregate the samples of one period. `prior_level` is only used by weighted_sum."""
    count = len(samples)
    if aggregation == "count":
        return Usage(Decimal(count), count)
    if count == 0 and aggregation != "weighted_sum":
        return Usage(Decimal(0), 0)
    if aggregation == "sum":
        return Usage(exact_sum(s.value for s in samples), count)
    if aggregation == "max":
        return Usage(max(s.value for s in samples), count)
    if aggregation == "min":
        return Usage(min(s.value for s in samples), count)
    if aggregation == "unique_count":
        return Usage(Decimal(len({unique_key(s.value) for s in samples})), count)
    if aggregation == "average":
        return Usage(average_of(exact_sum(s.value for s in samples), count), count)
    if aggregation == "latest":
        # greatest timestamp wins; among equal timestamps the later one given wins
        latest = max(enumerate(samples), key=lambda pair: (pair[1].timestamp, pair[0]))[1]
        return Usage(latest.value, count)
    if aggregation == "weighted_sum":
        if period_start is None or period_end is None:
            raise ValueError("weighted_sum needs the period's start and end")
        return Usage(weighted_average(prior_level, samples, period_start, period_end), count)
    raise ValueError(f"unknown aggregation {aggregation!r}")


# Enough digits to add any values inside the number bound exactly: from 10^20 down to the last
# digit of a 38-digit value at 10^-19 (10^-56) is 76 digits, plus 14 for up to 10^14 such values.
# PostgreSQL's numeric adds exactly, so the exact redo on SQLite must too.
EXACT_SUM_DIGITS = (MAX_MAGNITUDE + 1) + (MAX_MAGNITUDE + MAX_DIGITS - 1) + 14


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    """The sum of values inside domain.numbers' bound, with no rounding."""
    with localcontext() as ctx:
        ctx.prec = EXACT_SUM_DIGITS
        total = Decimal(0)
        for value in values:
            total += value
        return total


def average_of(total: Decimal, count: int) -> Decimal:
    """The mean of `count` values that add up to `total`, from those two numbers only.

    This is how average stays exact and splittable: the (sum, count) of two batches add up, so
    the average of their union is average_of(sum1 + sum2, count1 + count2), never the mean of the
    two means. The result is exact when it has at most 12 decimal places, else rounded (half
    even) to 12, and carries no trailing zeros (6.00 / 4 is 1.5, 300 / 3 is 100).
    """
    if count <= 0:
        return Decimal(0)
    with localcontext() as ctx:
        ctx.prec = 60
        mean = (Decimal(total) / count).quantize(AVERAGE_QUANTUM)
        if mean.is_zero():
            return Decimal(0)  # not -0 (a tiny negative mean): PostgreSQL's numeric has no -0
        trimmed = mean.normalize()
        if trimmed.as_tuple().exponent > 0:  # 1E+2 -> 100
            trimmed = trimmed.quantize(Decimal(1))
        return trimmed


def weighted_average(
    prior_level: Decimal, deltas: Sequence[Sample], start: datetime, end: datetime
) -> Decimal:
    """Time-weighted average level over [start, end) (Lago's weighted_sum).

    The level starts at `prior_level` (the sum of every earlier delta) and each event adds
    its value at its timestamp.
    """
    total_seconds = _elapsed_seconds(start, end)
    if total_seconds <= 0:
        return Decimal(0)
    with localcontext() as ctx:
        # levels are sums (exact_sum's digits) times seconds (at most 12 digits with microseconds)
        ctx.prec = EXACT_SUM_DIGITS + 20
        level = prior_level
        cursor = start
        area = Decimal(0)
        for sample in sorted(deltas, key=lambda s: s.timestamp):
            moment = min(max(sample.timestamp, start), end)
            area += level * _elapsed_seconds(cursor, moment)
            cursor = moment
            level += sample.value
        area += level * _elapsed_seconds(cursor, end)
        level = (area / total_seconds).quantize(WEIGHTED_QUANTUM)
        return level.copy_abs() if level.is_zero() else level  # never -0, which numeric columns drop


def _elapsed_seconds(start: datetime, end: datetime) -> Decimal:
    """Real seconds between two aware instants, exactly.

    Both are taken to UTC first: Python subtracts two datetimes of the same zone by wall
    clock, which would make a DST month 1 hour too long or short.
    """
    delta = end.astimezone(UTC) - start.astimezone(UTC)
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)
