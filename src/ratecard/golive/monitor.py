"""Ingestion figures per minute, the reading side: one row per minute that saw any ingestion.

The counting (in memory, written once a second) is ratecard.ingest.figures; see there for the
metrics and when they reach the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain.instants import rfc3339, to_micros
from ..ingest.figures import flush, minute_of
from ..store import Store
from ..store.monitoring import MINUTE_US, read_counters


def ingestion_minutes(store: Store, environment: str, now: datetime, minutes: int) -> dict[str, Any]:
    """The figures of the last `minutes` minutes (the current one included), one row per minute
    that saw any ingestion, oldest first, with totals."""
    flush()  # this process's own counts first
    end = minute_of(to_micros(now)) + MINUTE_US
    start = end - minutes * MINUTE_US
    rows: dict[int, dict[str, Any]] = {}
    totals = _empty_row()
    for minute, metric, reason, count in read_counters(store, environment, start, end):
        row = rows.setdefault(minute, {"minute": rfc3339(minute), **_empty_row()})
        for target in (row, totals):
            _add(target, metric, reason, int(count))
    return {"environment": environment, "from": rfc3339(start), "until": rfc3339(end), "minutes": list(rows.values()),
            "totals": totals}


def _empty_row() -> dict[str, Any]:
    return {"accepted": 0, "rejected": 0, "rejected_by_reason": {}, "duplicates": 0, "unmatched": 0,
            "unmatched_by_reason": {}, "late": 0}


def _add(row: dict[str, Any], metric: str, reason: str, count: int) -> None:
    if metric == "rejected":
        row["rejected"] += count
        row["rejected_by_reason"][reason] = row["rejected_by_reason"].get(reason, 0) + count
    elif metric == "unmatched":
        row["unmatched"] += count
        row["unmatched_by_reason"][reason] = row["unmatched_by_reason"].get(reason, 0) + count
    elif metric == "duplicate":
        row["duplicates"] += count
    elif metric in ("accepted", "late"):
        row[metric] += count
