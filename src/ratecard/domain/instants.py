"""Instants as ratecard stores them: integer microseconds since the Unix epoch, UTC.

Integers compare, index and sum the same in SQLite and PostgreSQL, and never lose a
microsecond to a float. Every conversion between an aware datetime and a stored instant, and
every RFC 3339 text ratecard prints for one, goes through this module.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """An aware datetime -> microseconds since the epoch."""
    return (moment - EPOCH) // MICROSECOND


def from_micros(micros: int) -> datetime:
    """Microseconds since the epoch -> an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=micros)


def rfc3339(micros: int) -> str:
    """The instant as RFC 3339 in UTC with a `Z`: seconds always, a fraction only when it has one
    (`2026-01-20T10:00:00Z`, `2026-01-20T10:00:00.250000Z`)."""
    return from_micros(micros).isoformat().replace("+00:00", "Z")


def rfc3339_or_none(micros: int | None) -> str | None:
    return None if micros is None else rfc3339(micros)


def rfc3339_seconds(micros: int | None) -> str | None:
    """To the whole second (the fraction cut, never rounded up), for what people read: alerts,
    webhook bodies and delivery logs, where the wall clock's microseconds are noise."""
    return None if micros is None else rfc3339(micros - micros % 1_000_000)
