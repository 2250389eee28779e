"""Re-match stored unmatched events after the catalog changed (new customer, meter, subscription).

One function serves `ratecard events reprocess` (everything) and the API's background reprocess
jobs (one customer or a time window, with progress). Matched events inside a final invoice's
window become `late`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import msgspec

from ..catalog import Catalog
from ..domain.instants import from_micros
from ..store import Store
from ..store.invoices import finalized_windows
from ..store.meter_data import apply_matches, count_unmatched, unmatched_batches
from .records import RawEvent, Rejection
from .validate import EventValidator

# stored JSON numbers come back as Decimals, never floats
_decode = msgspec.json.Decoder(float_hook=Decimal).decode


def reprocess(store: Store, catalog: Catalog, now: datetime, environment: str = "live", *,
              customer: str | None = None, start_us: int | None = None, end_us: int | None = None,
              on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Re-check the selected unmatched events (all by default); on_progress(done, total).

    Returns counts of what became matched (of which `late`: inside a period whose invoice is
    already final, so flagged, never billed on it) and what stays unmatched.
    """
    validator = EventValidator(catalog, now, finalized_windows(store, environment))
    # stored events are re-checked for matching only; their timestamps were accepted already
    validator.latest_allowed = 2**62
    validator.earliest_allowed = -(2**62)
    total = count_unmatched(store, environment, customer, start_us, end_us) if on_progress else 0
    checked = 0
    late = 0
    outcome: Counter = Counter()
    for rows in unmatched_batches(store, environment, customer, start_us, end_us):
        changes = []
        for event_id, event_customer, meter, ts, properties, status, subscription in rows:
            # the subscription an event names is kept: it is matched against that one again
            raw = RawEvent(event_id, event_customer, meter, from_micros(ts).isoformat(), _decode(properties), 0,
                           subscription)
            result = validator.check(raw)
            if isinstance(result, Rejection):
                new_status, new_properties, is_late = "invalid_value", properties, False
            else:
                new_status, new_properties, is_late = result.status, result.properties, result.late
            outcome[new_status] += 1
            late += is_late
            if new_status != status or new_properties != properties:
                changes.append((event_id, new_status, new_properties, is_late))
        apply_matches(store, environment, changes)
        checked += len(rows)
        if on_progress is not None:
            on_progress(checked, max(total, checked))
    return {"checked": checked, "matched": outcome.get("matched", 0), "late": late,
            "still_unmatched": {k: v for k, v in outcome.items() if k != "matched"}}
