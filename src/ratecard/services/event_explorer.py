"""The console's events explorer: stored events filtered by customer, meter, id, time range and
outcome, a page at a time, each with the reason it is not billed (when it is not).

Outcomes: accepted (stored and billable), unmatched (stored, waiting for the catalog: unknown
customer or meter, no subscription), late (its period's invoice is already final) and rejected
(stored, then refused when reprocessing re-checked it against a newer catalog). Submissions
refused at ingestion are never stored; their counts by reason come from the ingestion counters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from ..domain.instants import to_micros
from ..store import Store
from ..store.event_search import OUTCOMES, EventSearch, search_events
from ..store.events import StoredEvent
from . import monitoring
from .errors import InvalidInput
from .keys import check_environment

PAGE_SIZE = 50
MAX_PAGE = 200  # 10,000 events; deeper than this, narrow the filters: OFFSET reads every row it skips
MAX_TEXT = 256  # customer, meter and event ids are at most this long in the store

REASONS = {
    "unknown_customer": "unmatched: the customer is not in the catalog",
    "unknown_meter": "unmatched: no meter of this name in the catalog",
    "no_subscription": "unmatched: no subscription of the customer takes this event at its time",
    "unpriced": "unpriced: its subscription takes it, but no charge of the plan counts it (meter not charged, "
                "or left out by the meters' filters)",
    "invalid_value": "rejected when reprocessed: a property is not a valid value for its meter (a number expected)",
    "late": "late: its period's invoice is already final, so it is never billed on it",
}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")  # what <input type="datetime-local"> sends


@dataclass(frozen=True)
class EventFilters:
    """The explorer's filters as the user typed them (kept for the form and the paging links) and parsed."""

    customer: str = ""
    meter: str = ""
    event_id: str = ""
    start: str = ""
    end: str = ""
    outcome: str = ""

    def as_params(self) -> dict[str, str]:
        return {"customer": self.customer, "meter": self.meter, "event_id": self.event_id, "from": self.start,
                "until": self.end, "status": self.outcome}

    def search(self) -> EventSearch:
        if self.outcome and self.outcome not in OUTCOMES:
            raise InvalidInput(f"{self.outcome[:40]!r} is not one of {', '.join(OUTCOMES)}", field="status")
        start = _instant("from", self.start, end_of_day=False)
        end = _instant("until", self.end, end_of_day=True)
        if start is not None and end is not None and end <= start:
            raise InvalidInput("the end of the time range must be after its start", field="until")
        return EventSearch(customer=_text("customer", self.customer), meter=_text("meter", self.meter),
                           event_id=_text("event_id", self.event_id), start_us=start, end_us=end,
                           outcome=self.outcome or None)


@dataclass(frozen=True)
class ExploredEvent:
    event: StoredEvent
    outcome: str
    reason: str | None  # why it is not billed; None for an accepted event


@dataclass(frozen=True)
class EventPage:
    events: list[ExploredEvent]
    page: int
    has_more: bool
    refused_recently: int  # submissions refused at ingestion in the last 24 h (never stored)
    refused_by_reason: dict[str, int]


def explore(store: Store, now: datetime, filters: EventFilters, page: int = 1,
            environment: str = "live") -> EventPage:
    check_environment(environment)
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput(f"page must be between 1 and {MAX_PAGE}; narrow the filters to go further", field="page")
    search = filters.search()
    rows = search_events(store, environment, search, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    figures = monitoring.ingestion(store, now, 24 * 60, environment)["totals"]
    return EventPage([_explained(row) for row in rows[:PAGE_SIZE]], page, len(rows) > PAGE_SIZE,
                     int(figures["rejected"]), dict(figures["rejected_by_reason"]))


def _explained(event: StoredEvent) -> ExploredEvent:
    if event.late:
        return ExploredEvent(event, "late", REASONS["late"])
    if event.status == "matched":
        return ExploredEvent(event, "accepted", None)
    if event.status == "invalid_value":
        return ExploredEvent(event, "rejected", REASONS["invalid_value"])
    return ExploredEvent(event, "unmatched", REASONS.get(event.status, f"unmatched: {event.status}"))


def _text(field: str, value: str) -> str | None:
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"at most {MAX_TEXT} characters", field=field)
    return text or None


def _instant(field: str, value: str, *, end_of_day: bool) -> int | None:
    """A date (a whole day in UTC: `until` a date includes that day), a datetime-local value (UTC)
    or an RFC 3339 datetime with its offset -> µs."""
    text = value.strip()
    if not text:
        return None
    try:
        if _DATE.fullmatch(text):
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time(0), tzinfo=UTC)
        elif _LOCAL.fullmatch(text):
            moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
            if moment.tzinfo is None:
                raise ValueError(text)
        if not 2000 <= moment.year <= 2100:
            raise ValueError(text)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{text[:40]!r} is not a date (2026-11-01) or a date and time (2026-11-01T14:30)",
                           field=field) from None
    return to_micros(moment)
