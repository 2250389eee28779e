"""Parsed events and rejections: what the readers hand to validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec


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
    status: str  # matched | unknown_customer | unknown_meter | no_subscription
    late: bool = False  # matched, but inside a period whose invoice is already final
