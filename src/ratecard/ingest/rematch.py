"""Re-match a selection of unmatched events (one customer, a time window) with progress, for the
API's background reprocess jobs. Matched events inside a final invoice's window become `late`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import msgspec

from ..catalog import Catalog
from ..store import Store
from ..store.invoices import finalized_windows
from ..store.meter_data import apply_matches, count_unmatched, unmatched_batches
from .records import RawEvent, Rejection
from .validate import EventValidator, from_micros

# stored JSON numbers come back as Decimals, never floats
_decode = msgspec.json.Decoder(float_hook=Decimal).decode


def rematch(store: Store, catalog: Catalog, now: datetime, environment: str, *, customer: str | None = None,
            start_us: int | None = None, end_us: int | None = None,
            on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Re-check the selected unmatched events against `catalog`; on_progress(done, total)."""
    validator = EventValidator(catalog, now, finalized_windows(store, environment))
    # stored events are re-checked for matching only; their timestamps were accepted already
    validator.latest_allowed = 2**62
    validator.earliest_allowed = -(2**62)
    total = count_unmatched(store, environment, customer, start_us, end_us)
    done = 0
    outcome: Counter = Counter()
    for rows in unmatched_batches(store, environment, customer, start_us, end_us):
        changes = []
        for event_id, event_customer, meter, ts, properties, status in rows:
            raw = RawEvent(event_id, event_customer, meter, from_micros(ts).isoformat(), _decode(properties))
            result = validator.check(raw)
            if isinstance(result, Rejection):
                new_status, new_properties, late = "invalid_value", properties, False
            else:
                new_status, new_properties, late = result.status, result.properties, result.late
            outcome[new_status] += 1
            if new_status != status:
                changes.append((event_id, new_status, new_properties, late))
        apply_matches(store, environment, changes)
        done += len(rows)
        if on_progress is not None:
            on_progress(done, max(total, done))
    return {"checked": done, "matched": outcome.get("matched", 0),
            "still_unmatched": {k: v for k, v in outcome.items() if k != "matched"}}
