"""Dates and instants as people type them (options, query parameters), checked before any use case runs.

Each parser names the input it reads (`field`) in its InvalidInput, so the CLI can say `--until`
and the HTTP API `until`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from ..ingest.validate import parse_timestamp
from .errors import InvalidInput

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# the billing calendar's arithmetic stays inside these years
EARLIEST_YEAR, LATEST_YEAR = 1970, 9998


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, field=field)


def parse_day(field: str, value: str) -> date:
    """YYYY-MM-DD."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise _invalid(field, f"{value!r}: expected a date as YYYY-MM-DD") from None


def parse_until(field: str, value: str) -> date | datetime:
    """A date (every boundary on or before it, in each subscription's timezone) or an RFC 3339 datetime."""
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(field, f"{value!r} is not a date (2026-11-01) or RFC 3339 datetime") from None
    if moment.tzinfo is None:
        raise _invalid(field, f"{value!r} has no timezone offset")
    return moment


def parse_instant(field: str, value: str) -> datetime:
    """A date (its midnight UTC) or an RFC 3339 datetime with an offset."""
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise _invalid(field, f"{value!r} is not a date (2026-10-01) or RFC 3339 datetime "
                              "(2026-10-01T00:00:00+02:00)") from None
    if moment.tzinfo is None:
        raise _invalid(field, f"{value!r} has no timezone offset (a bare date means midnight UTC)")
    return moment


def parse_moment(field: str, value: str) -> date | datetime:
    """A date (kept as a date: the catalog reads it as local midnight in the subscription's timezone)
    or an RFC 3339 datetime with its offset (as strict as event timestamps), in the years
    EARLIEST_YEAR..LATEST_YEAR."""
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > 64:
        raise _invalid(field, f"{text[:40]!r}... is not a date or an RFC 3339 datetime")
    if _DATE.fullmatch(text):
        try:
            moment: date | datetime = date.fromisoformat(text)
        except ValueError:
            raise _invalid(field, f"{text!r} is not a real date") from None
    else:
        parsed = parse_timestamp(text)
        if isinstance(parsed, str):
            raise _invalid(field, f"{parsed}; expected a date (2026-03-01) or an RFC 3339 datetime with its offset "
                                  "(2026-03-01T00:00:00+01:00)")
        moment = parsed
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise _invalid(field, f"{text!r} is outside the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    return moment


def parse_rfc3339(field: str, value: str) -> datetime:
    """Strictly an RFC 3339 date-time with its offset (`2026-10-15T12:00:00Z`, `…+02:00`): the rule
    event timestamps follow. A bare date, a missing offset or another ISO 8601 form is refused."""
    from ..ingest.validate import parse_timestamp

    parsed = parse_timestamp(value)
    if isinstance(parsed, str):  # one sentence for both reasons (not RFC 3339, no offset)
        raise _invalid(field, f"{value[:60]!r} is not an RFC 3339 date-time with its offset "
                              "(e.g. 2026-10-15T12:00:00Z or 2026-10-15T14:00:00+02:00)")
    return parsed
