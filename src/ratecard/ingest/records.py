"""Parsed events and rejections: what the readers hand to validation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import Any

import msgspec

# the flags of events not stored because their id was already held: same content, or not
ALREADY_HELD = frozenset({"duplicate", "conflict"})


class RawEvent(msgspec.Struct):
    """One event as read from a file or request, not yet validated.

    A msgspec Struct, so JSONL lines decode straight into it (fields stay untyped: wrong
    types are reported by validation, per field, not by the decoder).
    """

    id: Any
    customer: Any
    meter: Any
    timestamp: Any
    properties: Any = {}
    line: int = 0
    subscription: Any = None  # the reference of the subscription the event names, if any


@dataclass(slots=True, frozen=True)
class Rejection:
    line: int
    reason: str
    message: str
    event_id: str | None = None
    raw: str | None = None


@dataclass(slots=True)
class Event:
    """A validated event, ready to store: ts in µs since epoch UTC, properties as JSON text."""

    line: int
    id: str
    customer: str
    meter: str
    ts: int
    properties: str
    status: str  # matched | unknown_customer | unknown_meter | no_subscription | unpriced
    late: bool = False  # matched, but inside a period whose invoice is already final
    subscription: str | None = None  # the subscription the event names: only it may bill the event


def event_content(customer: str, meter: str, ts: int, properties: str,
                  subscription: str | None = None) -> tuple[str, str, int, str, str | None]:
    """What makes two events with the same id the same event (a duplicate) or not (a conflict).

    Properties compare as JSON values, not as text: key order is irrelevant and numbers compare
    by value (1 and 1.0 are the same), because PostgreSQL renders stored JSON its own way. The
    subscription named is part of the content: it decides which subscription bills the event."""
    if properties == "{}":
        return customer, meter, ts, properties, subscription
    return customer, meter, ts, repr(json.loads(properties, parse_float=_number, parse_int=_number,
                                                 object_pairs_hook=_sorted_pairs)), subscription


def _number(text: str) -> Decimal:
    return Decimal(text).normalize()


def _sorted_pairs(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return sorted(pairs, key=itemgetter(0))
