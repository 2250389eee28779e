"""Prometheus metrics in the text exposition format, kept in-process (one set per worker) and
per environment: a scrape with an environment's key sees that environment's figures only, so
sandbox traffic never shows in live's graphs (nor live's volumes to a sandbox key). Requests
made without a valid key belong to no environment and are not shown."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from contextvars import ContextVar
from dataclasses import dataclass, field

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# The environment of the request being served (None: no valid key), set by the authenticating
# middleware before the routes run, so an import is counted where it happened without every
# route passing it along; run_in_threadpool copies it into the worker thread.
current_environment: ContextVar[str | None] = ContextVar("current_environment", default=None)
REJECTION_REASONS = ("invalid_json", "missing_field", "invalid_timestamp", "future_timestamp", "archived_period",
                     "invalid_value")


@dataclass
class _Figures:
    """One environment's counters."""

    events: Counter = field(default_factory=Counter)  # accepted, duplicates, unmatched
    rejected: Counter = field(default_factory=Counter)  # by reason
    requests: Counter = field(default_factory=Counter)  # (method, route, status)
    latency_buckets: Counter = field(default_factory=Counter)
    latency_sum: float = 0.0
    latency_count: int = 0


class Metrics:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.environments: defaultdict[str, _Figures] = defaultdict(_Figures)

    def observe_request(self, environment: str | None, method: str, route: str, status: int, seconds: float) -> None:
        if environment is None:
            return
        with self.lock:
            figures = self.environments[environment]
            figures.requests[(method, route, status)] += 1
            figures.latency_sum += seconds
            figures.latency_count += 1
            for bound in BUCKETS:
                if seconds <= bound:
                    figures.latency_buckets[bound] += 1

    def observe_import(self, accepted: int, duplicates: int, unmatched: int, rejected: dict[str, int]) -> None:
        """Counted in the environment of the request being served (set by the middleware)."""
        environment = current_environment.get()
        if environment is None:
            return
        with self.lock:
            figures = self.environments[environment]
            figures.events["accepted"] += accepted
            figures.events["duplicates"] += duplicates
            figures.events["unmatched"] += unmatched
            figures.rejected.update(rejected)

    def render(self, environment: str) -> str:
        with self.lock:
            figures = self.environments.get(environment) or _Figures()
            lines = [
                "# HELP ratecard_events_accepted_total Events accepted (stored or duplicate).",
                "# TYPE ratecard_events_accepted_total counter",
                f"ratecard_events_accepted_total {figures.events['accepted']}",
                "# HELP ratecard_events_duplicates_total Events whose id was already stored.",
                "# TYPE ratecard_events_duplicates_total counter",
                f"ratecard_events_duplicates_total {figures.events['duplicates']}",
                "# HELP ratecard_events_unmatched_total Events stored unmatched (unknown customer/meter, no subscription).",
                "# TYPE ratecard_events_unmatched_total counter",
                f"ratecard_events_unmatched_total {figures.events['unmatched']}",
                "# HELP ratecard_events_rejected_total Events rejected, by reason.",
                "# TYPE ratecard_events_rejected_total counter",
            ]
            for reason in REJECTION_REASONS:
                lines.append(f'ratecard_events_rejected_total{{reason="{reason}"}} {figures.rejected[reason]}')
            lines += ["# HELP ratecard_http_requests_total HTTP requests by method, route and status.",
                      "# TYPE ratecard_http_requests_total counter"]
            for (method, route, status), count in sorted(figures.requests.items()):
                lines.append(f'ratecard_http_requests_total{{method="{method}",route="{route}",status="{status}"}} {count}')
            lines += ["# HELP ratecard_http_request_seconds Request latency.",
                      "# TYPE ratecard_http_request_seconds histogram"]
            for bound in BUCKETS:
                lines.append(f'ratecard_http_request_seconds_bucket{{le="{bound}"}} {figures.latency_buckets[bound]}')
            lines.append(f'ratecard_http_request_seconds_bucket{{le="+Inf"}} {figures.latency_count}')
            lines.append(f"ratecard_http_request_seconds_sum {figures.latency_sum:.6f}")
            lines.append(f"ratecard_http_request_seconds_count {figures.latency_count}")
            return "\n".join(lines) + "\n"
