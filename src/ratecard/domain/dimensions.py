"""Prices per dimension on one charge: which filter and which group an event falls in, and the usage
of each (filter, group) pair (docs/billing.md, "Prices per dimension").

- A charge's `filters` partition its meter's events: an event goes to the FIRST filter (in the
  catalog's order) whose every `match` property has one of the filter's values, compared by text form
  as meter filters compare them (domain.json_values); an event no filter takes goes to the default
  (filter None), priced at the charge's own price. So each event is counted once, and for count and
  sum the quantities of a charge's lines add up to the meter's.
- `group_by` names properties; the events with the same text forms of them form a group (a missing
  property, null, an object or an array is the value None: those events form a group of their own).
- Each (filter, group) pair is aggregated and priced on its own, tiers included; for weighted_sum
  each pair's level is made of its own events only (split_weighted).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .aggregation import Sample, Usage, aggregate, exact_sum
from .json_values import is_number, text_form
from .pricing import ChargeFilter

Group = tuple[str | None, ...]  # the text forms of the group_by properties, in group_by's order
DimensionKey = tuple[str | None, Group]  # (filter code, None for the default; group)

MAX_GROUP_BY = 3
MAX_FILTERS = 50
MAX_MATCH_KEYS = 10
MAX_MATCH_VALUES = 100
# the lines one charge may have in one period: more is a run failure of that subscription, not an invoice
MAX_GROUPS = 10_000


@dataclass(frozen=True)
class Split(Usage):
    """A meter's usage measured per dimension of one charge: `parts` holds the usage of each
    (filter, group) pair with events; quantity and events are their sums (for a count or a sum,
    the meter's own)."""

    parts: tuple[tuple[DimensionKey, Usage], ...] = ()

    @classmethod
    def of(cls, parts: Mapping[DimensionKey, Usage]) -> Split:
        ordered = tuple(sorted(parts.items(), key=lambda item: dimension_order(item[0])))
        return cls(sum((usage.quantity for _, usage in ordered), Decimal(0)),
                   sum(usage.events for _, usage in ordered), parts=ordered)


def dimension_order(key: DimensionKey) -> tuple[Any, ...]:
    code, group = key
    return (code is None, code or "", tuple((value is None, value or "") for value in group))


def filter_of(filters: Sequence[ChargeFilter], properties: Mapping[str, Any]) -> str | None:
    """The code of the first filter taking an event with these properties (None: the default)."""
    for item in filters:
        if all(text_form(properties.get(key)) in values for key, values in item.match):
            return item.code
    return None


def group_of(group_by: Sequence[str], properties: Mapping[str, Any]) -> Group:
    return tuple(text_form(properties.get(key)) for key in group_by)


def sample_value(aggregation: str, field: str | None, properties: Mapping[str, Any]) -> tuple[bool, object]:
    """Whether an event counts for the aggregation, and the value it adds (store/usage.py's rule:
    count counts every event; unique_count any value but null; the others numbers only)."""
    if aggregation == "count" or not field:
        return True, None
    value = properties.get(field)
    if aggregation == "unique_count":
        return value is not None, value
    if not is_number(value):
        return False, None
    return True, plain_number(value)


def plain_number(value: Any) -> Decimal:
    """A JSON number as a Decimal: exact, an exponent written out (1E+2 is 100), no negative zero."""
    number = value if isinstance(value, Decimal) else Decimal(repr(value)) if isinstance(value, float) \
        else Decimal(value)
    if number.as_tuple().exponent > 0:  # type: ignore[operator]
        number = Decimal(int(number))
    return number.copy_abs() if number.is_zero() else number


def split_usage(aggregation: str, field: str | None, filters: Sequence[ChargeFilter], group_by: Sequence[str],
                events: Iterable[tuple[datetime, Mapping[str, Any]]]) -> Split:
    """The usage of each (filter, group) pair of events given in time order (ties in the order the
    store reads them). weighted_sum: see split_weighted."""
    samples: dict[DimensionKey, list[Sample]] = defaultdict(list)
    for timestamp, properties in events:
        counts, value = sample_value(aggregation, field, properties)
        if counts:
            key = (filter_of(filters, properties), group_of(group_by, properties))
            samples[key].append(Sample(timestamp, value))
    parts = {}
    for key, items in samples.items():
        usage = aggregate(aggregation, items)
        if aggregation in ("max", "min"):
            usage = Usage(without_trailing_zeros(usage.quantity), usage.events)
        parts[key] = usage
    return Split.of(parts)


def split_weighted(field: str | None, filters: Sequence[ChargeFilter], group_by: Sequence[str],
                   events: Iterable[tuple[datetime, Mapping[str, Any]]], start: datetime, end: datetime) -> Split:
    """weighted_sum per (filter, group): each pair's level starts at the sum of its own earlier
    deltas (`events` holds every event before `end`, those before `start` included), and the
    quantity is its time-weighted average level over [start, end). A pair whose events all came
    before the period still has its level, and a line."""
    prior: dict[DimensionKey, list[Decimal]] = defaultdict(list)
    inside: dict[DimensionKey, list[Sample]] = defaultdict(list)
    for timestamp, properties in events:
        counts, value = sample_value("weighted_sum", field, properties)
        if not counts or timestamp >= end:
            continue
        key = (filter_of(filters, properties), group_of(group_by, properties))
        if timestamp < start:
            prior[key].append(value)  # type: ignore[arg-type]
        else:
            inside[key].append(Sample(timestamp, value))
    return Split.of({key: aggregate("weighted_sum", inside.get(key, []), start, end, exact_sum(prior.get(key, [])))
                     for key in {*prior, *inside}})


def without_trailing_zeros(value: Decimal) -> Decimal:
    """1.50 as 1.5, 100 as 100: exactly, whatever the digits."""
    if value.is_zero():
        return Decimal(0)
    sign, digits, exponent = value.as_tuple()
    while isinstance(exponent, int) and exponent < 0 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    return Decimal((sign, digits, exponent))


def group_text(group_by: Sequence[str], group: Group) -> str:
    """How a group reads on an invoice line: project_id a, region (none)."""
    return ", ".join(f"{key} {value if value is not None else '(none)'}" for key, value in zip(group_by, group,
                                                                                           strict=True))


def group_json(group: tuple[tuple[str, str | None], ...] | None) -> str | None:
    """A line's group as stored: a JSON object of property -> value, in group_by's order."""
    if group is None:
        return None
    return json.dumps(dict(group), separators=(",", ":"), ensure_ascii=False)


def group_from_json(text: str | None) -> dict[str, str | None] | None:
    """A stored line's group as a mapping (None for a line without one)."""
    return None if not text else dict(json.loads(text))
