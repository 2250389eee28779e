"""The console's overview: money invoiced this month and last, drafts waiting, the last day's
ingestion in buckets, and the open alerts; each figure of one environment only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..domain.instants import to_micros
from ..store import Store
from ..store.overview import DraftCounts, draft_counts, invoiced_by_currency
from . import monitoring
from .keys import check_environment

ACTIVITY_HOURS = 24
BUCKET_MINUTES = 15  # 96 bars: one a minute (1,440) would be thinner than a pixel
ACTIVITY_SERIES = ("accepted", "rejected", "unmatched", "late")
OPEN_ALERTS_SHOWN = 10


@dataclass(frozen=True)
class MonthTotals:
    label: str  # "2026-12"
    totals: dict[str, Decimal]  # currency -> amount, net of credit notes


@dataclass(frozen=True)
class Activity:
    """Ingestion over the last ACTIVITY_HOURS in BUCKET_MINUTES buckets, oldest first."""

    labels: list[str]  # the bucket's start, "HH:MM" UTC
    series: dict[str, list[int]]  # each of ACTIVITY_SERIES -> one count per bucket
    totals: dict[str, int]
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Overview:
    this_month: MonthTotals
    last_month: MonthTotals
    drafts: DraftCounts
    activity: Activity
    open_alerts: list[dict[str, Any]]
    open_alert_count: int


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def previous_month_start(start: datetime) -> datetime:
    return (start - timedelta(days=1)).replace(day=1)


def next_month_start(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def overview(store: Store, now: datetime, environment: str = "live") -> Overview:
    check_environment(environment)
    this_start = month_start(now)
    last_start = previous_month_start(this_start)
    this_month = MonthTotals(f"{this_start:%Y-%m}", invoiced_by_currency(
        store, environment, to_micros(this_start), to_micros(next_month_start(this_start))))
    last_month = MonthTotals(f"{last_start:%Y-%m}", invoiced_by_currency(
        store, environment, to_micros(last_start), to_micros(this_start)))
    alerts, open_count = monitoring.alert_page(store, environment, "open", limit=OPEN_ALERTS_SHOWN)
    return Overview(this_month, last_month, draft_counts(store, environment, to_micros(now)),
                    activity(store, now, environment), alerts, open_count)


def activity(store: Store, now: datetime, environment: str = "live") -> Activity:
    """The ingestion counters the monitoring keeps (one row per minute), added up per bucket: the
    events themselves are never scanned."""
    figures = monitoring.ingestion(store, now, ACTIVITY_HOURS * 60, environment)
    bucket = timedelta(minutes=BUCKET_MINUTES)
    # buckets on the quarter hour (a partly covered one at each end), so a bar reads 09:15, not 09:17
    start = _floor(datetime.fromisoformat(figures["from"].replace("Z", "+00:00")), bucket)
    until = datetime.fromisoformat(figures["until"].replace("Z", "+00:00"))
    count = -(-(until - start) // bucket)
    labels = [f"{start + i * bucket:%H:%M}" for i in range(count)]
    series = {name: [0] * count for name in ACTIVITY_SERIES}
    for row in figures["minutes"]:
        minute = datetime.fromisoformat(row["minute"].replace("Z", "+00:00"))
        index = min(int((minute - start) / bucket), count - 1)
        for name, value in _apart(row).items():
            series[name][index] += value
    return Activity(labels, series, _apart(figures["totals"]), dict(figures["totals"]["rejected_by_reason"]))


def _apart(row: dict[str, Any]) -> dict[str, int]:
    """The counters' `accepted` counts every event stored, unmatched and late ones included; a
    stacked bar needs parts that do not overlap, so accepted here is what is stored and billable."""
    unmatched, late = int(row["unmatched"]), int(row["late"])
    return {"accepted": max(int(row["accepted"]) - unmatched - late, 0), "rejected": int(row["rejected"]),
            "unmatched": unmatched, "late": late}


def _floor(moment: datetime, step: timedelta) -> datetime:
    return moment - (moment - datetime(2000, 1, 1, tzinfo=UTC)) % step
