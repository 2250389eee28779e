"""Re-match stored unmatched events after the catalog changed (new customer, meter, subscription)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal

import msgspec

from ..catalog import Catalog
from ..store import Store
from ..store.events import set_statuses, unmatched_events
from ..store.invoices import finalized_windows
from .records import RawEvent, Rejection
from .validate import EventValidator, from_micros

# stored JSON numbers come back as Decimals, never floats
_decode = msgspec.json.Decoder(float_hook=Decimal).decode


def reprocess(store: Store, catalog: Catalog, now: datetime, environment: str = "live") -> dict:
    """Re-check every unmatched event; returns counts of what became matched (of which `late`:
    inside a period whose invoice is already final, so flagged, never billed on it) and what stays."""
    validator = EventValidator(catalog, now, finalized_windows(store, environment))
    # stored events are re-checked for matching only; their timestamps were accepted already
    validator.latest_allowed = 2**62
    validator.earliest_allowed = -(2**62)
    checked = 0
    late = 0
    outcome: Counter = Counter()
    for rows in unmatched_events(store, environment):
        changes = []
        for event_id, customer, meter, ts, properties, status in rows:
            checked += 1
            raw = RawEvent(event_id, customer, meter, from_micros(ts).isoformat(), _decode(properties))
            result = validator.check(raw)
            if isinstance(result, Rejection):
                new_status, new_properties, is_late = "invalid_value", properties, False
            else:
                new_status, new_properties, is_late = result.status, result.properties, result.late
            outcome[new_status] += 1
            late += is_late
            if new_status != status or new_properties != properties:
                changes.append((event_id, new_status, new_properties, is_late))
        set_statuses(store, environment, changes)
    return {"checked": checked, "matched": outcome.get("matched", 0), "late": late,
            "still_unmatched": {k: v for k, v in outcome.items() if k != "matched"}}
