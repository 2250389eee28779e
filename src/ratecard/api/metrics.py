"""Prometheus metrics in the text exposition format, kept in-process (one set per worker)."""

from __future__ import annotations

import threading
from collections import Counter

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: Counter = Counter()  # accepted, duplicates, unmatched
        self.rejected: Counter = Counter()  # by reason
        self.requests: Counter = Counter()  # (method, route, status)
        self.latency_buckets: Counter = Counter()
        self.latency_sum = 0.0
        self.latency_count = 0

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(method, route, status)] += 1
            self.latency_sum += seconds
            self.latency_count += 1
            for bound in BUCKETS:
                if seconds <= bound:
                    self.latency_buckets[bound] += 1

    def observe_import(self, accepted: int, duplicates: int, unmatched: int, rejected: dict[str, int]) -> None:
        with self.lock:
            self.events["accepted"] += accepted
            self.events["duplicates"] += duplicates
            self.events["unmatched"] += unmatched
            self.rejected.update(rejected)

    def render(self) -> str:
        with self.lock:
            lines = [
                "# HELP ratecard_events_accepted_total Events accepted (stored or duplicate).",
                "# TYPE ratecard_events_accepted_total counter",
                f"ratecard_events_accepted_total {self.events['accepted']}",
                "# HELP ratecard_events_duplicates_total Events whose id was already stored.",
                "# TYPE ratecard_events_duplicates_total counter",
                f"ratecard_events_duplicates_total {self.events['duplicates']}",
                "# HELP ratecard_events_unmatched_total Events stored unmatched (unknown customer/meter, no subscription).",
                "# TYPE ratecard_events_unmatched_total counter",
                f"ratecard_events_unmatched_total {self.events['unmatched']}",
                "# HELP ratecard_events_rejected_total Events rejected, by reason.",
                "# TYPE ratecard_events_rejected_total counter",
            ]
            for reason in ("invalid_json", "missing_field", "invalid_timestamp", "future_timestamp", "invalid_value"):
                lines.append(f'ratecard_events_rejected_total{{reason="{reason}"}} {self.rejected[reason]}')
            lines += ["# HELP ratecard_http_requests_total HTTP requests by method, route and status.",
                      "# TYPE ratecard_http_requests_total counter"]
            for (method, route, status), count in sorted(self.requests.items()):
                lines.append(f'ratecard_http_requests_total{{method="{method}",route="{route}",status="{status}"}} {count}')
            lines += ["# HELP ratecard_http_request_seconds Request latency.",
                      "# TYPE ratecard_http_request_seconds histogram"]
            for bound in BUCKETS:
                lines.append(f'ratecard_http_request_seconds_bucket{{le="{bound}"}} {self.latency_buckets[bound]}')
            lines.append(f'ratecard_http_request_seconds_bucket{{le="+Inf"}} {self.latency_count}')
            lines.append(f"ratecard_http_request_seconds_sum {self.latency_sum:.6f}")
            lines.append(f"ratecard_http_request_seconds_count {self.latency_count}")
            return "\n".join(lines) + "\n"
