"""Exact partial aggregates ("roll-ups") of a meter's events, and how they merge into a period's usage.

A roll-up row holds, for the events of one hour (and one customer, subscription named, dimension):
how many counted, the exact sum, the least and greatest value, the latest (timestamp, id, value),
and sum(value × µs) for weighted_sum; unique_count keeps the distinct values themselves. Every
field merges exactly (addition, min, max, the greater (timestamp, id)), so the usage of any span
of whole hours is the merge of its rows, and a span with partial edge hours adds the edges'
events read one by one through the same `contribution` rule. store/usage.py's raw path and
domain.aggregation / domain.dimensions are the reference: the property tests hold both equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext
from typing import Any

import msgspec

from .aggregation import EXACT_SUM_DIGITS, WEIGHTED_QUANTUM, Usage, average_of
from .dimensions import DimensionKey, Split, filter_of, group_of, plain_number, sample_value, without_trailing_zeros
from .json_values import canonical, text_form
from .pricing import ChargeFilter

HOUR_US = 3_600_000_000
# a split meter's events that pass its meter's filters but do not count (no numeric value): they
# still make the window's usage present (an empty Split), as the raw path reads them
SEEN = "-"
NO_DIMENSION = ""


def hour_of(ts_us: int) -> int:
    return ts_us - ts_us % HOUR_US


def hour_after(ts_us: int) -> int:
    """The first hour boundary at or after the instant."""
    return -((-ts_us) // HOUR_US) * HOUR_US


@dataclass(frozen=True)
class RollupRule:
    """What one roll-up aggregates: the events of `streams` passing `filters` (property -> text
    forms), their `field` under `aggregation`; per (filter, group) of a charge when `split`."""

    streams: frozenset[str]
    aggregation: str
    field: str | None
    filters: tuple[tuple[str, frozenset[str]], ...]
    split: bool = False
    charge_filters: tuple[ChargeFilter, ...] = ()
    group_by: tuple[str, ...] = ()

    @property
    def counts_every_event(self) -> bool:
        """A count with no filter, not per dimension: every event of its streams adds one."""
        return self.aggregation == "count" and not self.filters and not self.split

    def contribution(self, properties: Mapping[str, Any]) -> tuple[str, object] | None:
        """(dimension, value) the event adds, or None when it is not counted. Value: a Decimal for
        numeric aggregations, the JSON value for unique_count, None for count."""
        for key, texts in self.filters:
            if text_form(properties.get(key)) not in texts:
                return None
        counts, value = sample_value(self.aggregation, self.field, properties)
        if not self.split:
            return (NO_DIMENSION, value) if counts else None
        if not counts:
            return SEEN, None
        key = filter_of(self.charge_filters, properties), group_of(self.group_by, properties)
        return dimension_text(key), value


def dimension_text(key: DimensionKey) -> str:
    return msgspec.json.encode([key[0], list(key[1])]).decode()


def dimension_key(text: str) -> DimensionKey:
    code, group = msgspec.json.decode(text)
    return code, tuple(group)


def value_key(value: object) -> str:
    """unique_count's key as text: equal for the values counted once (domain.json_values.unique_key)."""
    return msgspec.json.encode(canonical(value), order="sorted").decode()


@dataclass
class Partial:
    """The mergeable aggregates of some events of one meter (one row, or a period's merge)."""

    events: int = 0
    total: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    moment: Decimal | None = None  # sum of value × µs
    latest: tuple[int, str, Decimal] | None = None  # (µs, id, value): the greatest (µs, id) wins
    values: set[str] = field(default_factory=set)  # unique_count's value keys

    def add(self, aggregation: str, ts: int, event_id: str, value: object) -> None:
        """One counted event; only the fields its aggregation reads are kept (the others stay None)."""
        self.events += 1
        if aggregation == "count":
            return
        if aggregation == "unique_count":
            self.values.add(value_key(value))
            return
        # sample_value hands numbers already plain (rollups.RollupRule.contribution)
        number = value if isinstance(value, Decimal) else plain_number(value)
        if aggregation in ("sum", "average", "weighted_sum"):
            self.total = number if self.total is None else _WIDE.add(self.total, number)
            if aggregation == "weighted_sum":
                moment = _WIDE.multiply(number, ts)
                self.moment = moment if self.moment is None else _WIDE.add(self.moment, moment)
        elif aggregation == "max":
            if self.high is None or number > self.high:
                self.high = number
        elif aggregation == "min":
            if self.low is None or number < self.low:
                self.low = number
        elif aggregation == "latest" and (self.latest is None or (ts, event_id) > self.latest[:2]):
            self.latest = (ts, event_id, number)

    def merge(self, other: Partial) -> None:
        self.events += other.events
        self.total = _add(self.total, other.total)
        self.moment = _add(self.moment, other.moment)
        if other.low is not None and (self.low is None or other.low < self.low):
            self.low = other.low
        if other.high is not None and (self.high is None or other.high > self.high):
            self.high = other.high
        if other.latest is not None and (self.latest is None or other.latest[:2] > self.latest[:2]):
            self.latest = other.latest
        self.values |= other.values

    def usage(self, aggregation: str) -> Usage:
        """The quantity of a period made of exactly these events (not weighted_sum: see weighted)."""
        count = self.events
        if aggregation == "count":
            return Usage(Decimal(count), count)
        if count == 0:
            return Usage(Decimal(0), 0)
        if aggregation == "unique_count":
            return Usage(Decimal(len(self.values)), count)
        if aggregation == "sum":
            return Usage(self.total if self.total is not None else Decimal(0), count)
        if aggregation == "average":
            return Usage(average_of(self.total or Decimal(0), count), count)
        if aggregation == "max":
            return Usage(without_trailing_zeros(self.high or Decimal(0)), count)
        if aggregation == "min":
            return Usage(without_trailing_zeros(self.low or Decimal(0)), count)
        if aggregation == "latest":
            return Usage(self.latest[2] if self.latest else Decimal(0), count)
        raise ValueError(f"{aggregation!r} is not read from a partial alone")


def _add(left: Decimal | None, right: Decimal | None) -> Decimal | None:
    if right is None:
        return left
    if left is None:
        return right
    return _WIDE.add(left, right)


# sums of value × µs exactly: exact_sum's digits plus an instant's 17
EXACT_PRODUCT_DIGITS = EXACT_SUM_DIGITS + 20
# one context object, not localcontext() per operation: the ingest hook adds every event's value
_WIDE = Context(prec=EXACT_PRODUCT_DIGITS)


def weighted(prior: Decimal, inside: Partial, start_us: int, end_us: int) -> Decimal:
    """weighted_sum's time-weighted average level over [start, end) from the level before the
    period (`prior`) and the sum and sum(value × µs) of the deltas inside it: the area under the
    level is prior × (end - start) + Σ value × (end - t) = prior × length + end × Σv - Σ(v × t).
    The same number domain.aggregation.weighted_average computes event by event."""
    length = end_us - start_us
    if length <= 0:
        return Decimal(0)
    with localcontext() as ctx:
        ctx.prec = EXACT_PRODUCT_DIGITS + 20
        area = prior * length + end_us * (inside.total or Decimal(0)) - (inside.moment or Decimal(0))
        level = (area / length).quantize(WEIGHTED_QUANTUM)
    return level.copy_abs() if level.is_zero() else level


def split_of(aggregation: str, parts: Mapping[str, Partial]) -> Split:
    """A split meter's usage from its partials per dimension text (SEEN rows only make it present)."""
    return Split.of({dimension_key(text): partial.usage(aggregation) for text, partial in parts.items()
                     if text != SEEN and partial.events})


def merged(partials: Iterable[Partial]) -> Partial:
    total = Partial()
    for partial in partials:
        total.merge(partial)
    return total

