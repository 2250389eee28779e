"""The events explorer's query: stored events filtered by customer, meter, id, time range and
outcome, newest first, one page at a time (LIMIT/OFFSET; the time indexes `ix_events_time` and,
for the unbilled outcomes, `ix_events_unbilled` serve the order when no customer narrows it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, select

from .db import Store
from .events import UNBILLED, StoredEvent
from .schema import events

UNMATCHED_STATUSES = ("unknown_customer", "unknown_meter", "no_subscription", "unpriced")
# what each outcome the console offers means in stored columns (`late` is only ever set on a matched event)
OUTCOMES = ("accepted", "rejected", "unmatched", "late")


@dataclass(frozen=True)
class EventSearch:
    customer: str | None = None
    meter: str | None = None
    event_id: str | None = None
    start_us: int | None = None  # inclusive
    end_us: int | None = None  # exclusive
    outcome: str | None = None  # one of OUTCOMES


# The unbilled events (unmatched, rejected, late: usually a few in a hundred) have a partial
# index of their own by time, so a page of them deep in the list does not walk the billable ones.
# A query uses it only when its WHERE repeats the index's condition: UNBILLED (store/events.py).


def _outcome_condition(outcome: str) -> Any:
    c = events.c
    if outcome == "accepted":
        return (c.status == "matched") & c.late.is_(False)
    if outcome == "late":
        return c.late.is_(True)
    if outcome == "unmatched":  # never late: the unbilled index reads them in time order at late = false
        return c.status.in_(UNMATCHED_STATUSES) & c.late.is_(False)
    if outcome == "rejected":  # stored, then refused when re-checked against a newer catalog
        return (c.status == "invalid_value") & c.late.is_(False)
    raise ValueError(f"unknown outcome {outcome!r}")


def search_events(store: Store, environment: str, search: EventSearch, limit: int, offset: int = 0) -> list[StoredEvent]:
    """One page of the matching, not deleted events, newest first (timestamp, then id)."""
    c = events.c
    query = select(c.id, c.customer, c.meter, c.ts, cast(c.properties, Text), c.status, c.late, c.received_at,
                   c.subscription).where(c.environment == environment, c.deleted_at.is_(None))
    if search.customer is not None:
        query = query.where(c.customer == search.customer)
    if search.meter is not None:
        query = query.where(c.meter == search.meter)
    if search.event_id is not None:
        query = query.where(c.id == search.event_id)
    if search.start_us is not None:
        query = query.where(c.ts >= search.start_us)
    if search.end_us is not None:
        query = query.where(c.ts < search.end_us)
    if search.outcome is not None:
        query = query.where(_outcome_condition(search.outcome))
        if search.outcome != "accepted":
            query = query.where(UNBILLED)
    query = query.order_by(c.ts.desc(), c.id.desc()).limit(limit).offset(offset)
    with store.engine.connect() as connection:
        return [StoredEvent(*row) for row in connection.execute(query)]
