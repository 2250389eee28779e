"""Webhook delivery: signed, at least once, in order per endpoint, retried with backoff.

Each delivery is a POST of the stored JSON body with
`Ratecard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<raw body>">`, keyed by the
endpoint's secret (its UTF-8 bytes), plus `Ratecard-Event` (alert.opened | alert.resolved) and
`Ratecard-Delivery` (the delivery id, the same on every retry: receivers deduplicate on it or on
the body's `id`). A 2xx answer delivers it; anything else (another status, a timeout, a refused
connection) is a failed attempt, retried after BASE_BACKOFF × 2^(attempts-1), at most MAX_BACKOFF,
until MAX_ATTEMPTS attempts, when the delivery is marked `failed` and the endpoint's next
delivery goes. Until then the endpoint's later deliveries wait: one endpoint sees its events in
order. Retries happen on later runs (`ratecard monitor run` from cron): a run attempts what is
due at its "now" and never sleeps.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..domain.instants import to_micros
from ..store import Store
from ..store.monitoring import (
    add_endpoint,
    list_endpoints,
    pending_deliveries,
    record_attempt,
    release_lease,
    take_lease,
)

SIGNATURE_HEADER = "Ratecard-Signature"
MAX_ATTEMPTS = 10
BASE_BACKOFF = 30  # seconds
MAX_BACKOFF = 6 * 3600
TIMEOUT = 5.0  # seconds per attempt
LEASE = 300  # seconds a run holds an endpoint
TOLERANCE = 300  # seconds a receiver should accept between t and its own clock


class EndpointError(ValueError):
    """An endpoint that cannot be added; the message says why."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for a body sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, now_seconds: int, tolerance: int = TOLERANCE) -> bool:
    """What a receiver does: parse t and v1, recompute over the raw body, compare in constant
    time, and refuse a timestamp further than `tolerance` seconds from its clock (replays)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now_seconds - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def backoff(attempts: int) -> int:
    """Seconds to wait after the `attempts`-th failed attempt."""
    return min(MAX_BACKOFF, BASE_BACKOFF * 2 ** (attempts - 1))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_endpoint(store: Store, environment: str, url: str, secret: str | None, now: datetime) -> tuple[int, str]:
    """Store an endpoint; returns (id, secret), the secret generated when none is given."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(f"URL {url!r} is not an http:// or https:// address with a host")
    if secret is not None and len(secret) < 16:
        raise EndpointError("--secret must be at least 16 characters (or leave it out to get a generated one)")
    if secret is not None and len(secret) > 256:
        raise EndpointError("--secret must be at most 256 characters")
    chosen = secret or new_secret()
    return add_endpoint(store, environment, url, chosen, to_micros(now)), chosen


@dataclass
class DeliveryRun:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    skipped_endpoints: int = 0  # held by another run

    def as_dict(self) -> dict[str, int]:
        return {"attempted": self.attempted, "delivered": self.delivered, "retrying": self.retrying,
                "failed": self.failed, "skipped_endpoints": self.skipped_endpoints}


def deliver_pending(store: Store, environment: str, now: datetime, *, client: httpx.Client | None = None,
                    max_attempts: int = MAX_ATTEMPTS) -> DeliveryRun:
    """Attempt every delivery that is due at `now`, endpoint by endpoint, in order."""
    run = DeliveryRun()
    now_us = to_micros(now)
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT, follow_redirects=False)
    try:
        for endpoint in list_endpoints(store, environment):
            if not take_lease(store, endpoint.id, now_us, now_us + LEASE * 1_000_000):
                run.skipped_endpoints += 1
                continue
            try:
                _deliver_endpoint(store, http, endpoint, now, now_us, max_attempts, run)
            finally:
                release_lease(store, endpoint.id)
    finally:
        if own:
            http.close()
    return run


def _deliver_endpoint(store: Store, http: httpx.Client, endpoint: Any, now: datetime, now_us: int,
                      max_attempts: int, run: DeliveryRun) -> None:
    while True:
        batch = pending_deliveries(store, endpoint.id)
        if not batch:
            return
        for delivery in batch:
            if delivery.next_attempt_at is not None and delivery.next_attempt_at > now_us:
                return  # the oldest pending one waits for its retry: later ones wait behind it
            run.attempted += 1
            status_code, error = _send(http, endpoint, delivery, int(now.timestamp()))
            attempts = delivery.attempts + 1
            if error is None:
                record_attempt(store, delivery.id, {"status": "delivered", "last_status_code": status_code,
                                                    "last_error": None, "next_attempt_at": None,
                                                    "delivered_at": now_us})
                run.delivered += 1
            elif attempts >= max_attempts:
                record_attempt(store, delivery.id, {"status": "failed", "last_status_code": status_code,
                                                    "last_error": error, "next_attempt_at": None})
                run.failed += 1
            else:
                record_attempt(store, delivery.id, {"last_status_code": status_code, "last_error": error,
                                                    "next_attempt_at": now_us + backoff(attempts) * 1_000_000})
                run.retrying += 1
                return


def _send(http: httpx.Client, endpoint: Any, delivery: Any, timestamp: int) -> tuple[int | None, str | None]:
    """(status code, error); error is None for a 2xx answer."""
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json", "User-Agent": "ratecard-webhooks",
               SIGNATURE_HEADER: sign(endpoint.secret, timestamp, body),
               "Ratecard-Event": delivery.event_type, "Ratecard-Delivery": str(delivery.id)}
    try:
        response = http.post(endpoint.url, content=body, headers=headers)
    except httpx.TimeoutException:
        return None, f"timed out after {TIMEOUT:g} s"
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"
