"""Webhook delivery: signed, at least once, in order per endpoint, retried with backoff.

Each delivery is a POST of the stored JSON body with
`Ratecard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<raw body>">`, keyed by the
endpoint's secret (its UTF-8 bytes), plus `Ratecard-Event` (alert.opened | alert.resolved) and
`Ratecard-Delivery` (the delivery id, the same on every retry: receivers deduplicate on it or on
the body's `id`). A 2xx answer delivers it; anything else (another status, a timeout, a refused
connection, a target refused) is a failed attempt, retried after BASE_BACKOFF × 2^(attempts-1), at most MAX_BACKOFF,
until MAX_ATTEMPTS attempts, when the delivery is marked `failed` and the endpoint's next
delivery goes. Until then the endpoint's later deliveries wait: one endpoint sees its events in
order. Retries happen on later runs (`ratecard monitor run` from cron): a run attempts what is
due at its "now" and never sleeps.

Bounds (see bounded_post and webhook_targets): one attempt ends within DEADLINE seconds however
the receiver trickles (RATECARD_WEBHOOK_DEADLINE overrides it, e.g. for tests); at most 64 KiB of
an answer is read; targets must be public addresses unless the endpoint was added with
allow_private. A run holds an endpoint's lease, renewed before every attempt to outlast it, so two
runs never deliver to one endpoint at once.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.instants import to_micros
from ..store import Store
from ..store.monitoring import (
    add_endpoint,
    list_endpoints,
    pending_deliveries,
    record_attempt,
    release_lease,
    renew_lease,
    take_lease,
)
from .bounded_post import Deadline, DeliveryFailed, Unresolvable, post, resolve
from .webhook_targets import TargetRefused, check_name, parse_target, refuse_unless_allowed

SIGNATURE_HEADER = "Ratecard-Signature"
MAX_ATTEMPTS = 10
BASE_BACKOFF = 30  # seconds
MAX_BACKOFF = 6 * 3600
DEADLINE = 10.0  # seconds one attempt may take in all: resolve, connect, TLS, send, read the answer
DEADLINE_VARIABLE = "RATECARD_WEBHOOK_DEADLINE"
MAX_DEADLINE = 300.0
# seconds a run's lease outlasts the attempt it is renewed for: slow database writes, and clocks
# that differ between the hosts running `monitor run`
LEASE_MARGIN = 300
TOLERANCE = 300  # seconds a receiver should accept between t and its own clock


class EndpointError(ValueError):
    """An endpoint that cannot be added; the message says why."""


class DeadlineSettingError(ValueError):
    """RATECARD_WEBHOOK_DEADLINE is not a number of seconds in range."""


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


def subscribed(settings: dict[str, Any] | None, action: str) -> bool:
    """Whether an endpoint takes an event: one added with `webhooks add` (no settings) takes every
    alert event; a Solvimon webhook's settings say: active, in included_actions (empty: every
    action), not in excluded_actions."""
    if settings is None:
        return action.startswith("alert.")
    if not settings.get("active", True):
        return False
    included = settings.get("included_actions") or []
    if included and action not in included:
        return False
    return action not in (settings.get("excluded_actions") or [])


def backoff(attempts: int) -> int:
    """Seconds to wait after the `attempts`-th failed attempt."""
    return min(MAX_BACKOFF, BASE_BACKOFF * 2 ** (attempts - 1))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_endpoint(store: Store, environment: str, url: str, secret: str | None, now: datetime, *,
                    allow_private: bool = False) -> tuple[int, str]:
    """Store an endpoint; returns (id, secret), the secret generated when none is given.

    The URL must be a webhook target (webhook_targets): refused when its host is, or resolves to,
    a private, loopback, link-local, reserved, multicast or unspecified address — unless
    `allow_private` (then only multicast and unspecified are). A name that does not resolve yet is
    accepted: every delivery checks it again."""
    try:
        target = parse_target(url)
        check_name(target, allow_private)
        if target.address is None:
            for address in resolve(target, Deadline(attempt_deadline())):
                refuse_unless_allowed(target, address, allow_private, resolved=True)
    except TargetRefused as exc:
        raise EndpointError(str(exc)) from None
    except Unresolvable:
        pass
    if secret is not None and len(secret) < 16:
        raise EndpointError("--secret must be at least 16 characters (or leave it out to get a generated one)")
    if secret is not None and len(secret) > 256:
        raise EndpointError("--secret must be at most 256 characters")
    chosen = secret or new_secret()
    return add_endpoint(store, environment, url, chosen, to_micros(now), allow_private), chosen


def attempt_deadline() -> float:
    """Seconds one delivery attempt may take: DEADLINE, or RATECARD_WEBHOOK_DEADLINE when set."""
    setting = os.environ.get(DEADLINE_VARIABLE, "").strip()
    if not setting:
        return DEADLINE
    try:
        seconds = float(setting)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_DEADLINE:  # NaN fails too
        raise DeadlineSettingError(f"{DEADLINE_VARIABLE}={setting!r} is not a number of seconds "
                                   f"above 0 and at most {MAX_DEADLINE:g}")
    return seconds


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


def deliver_pending(store: Store, environment: str, now: datetime, *, max_attempts: int = MAX_ATTEMPTS,
                    deadline: float | None = None) -> DeliveryRun:
    """Attempt every delivery that is due at `now`, endpoint by endpoint, in order; each attempt
    ends within `deadline` seconds (default: attempt_deadline())."""
    run = DeliveryRun()
    seconds = attempt_deadline() if deadline is None else deadline
    holder = secrets.token_hex(16)
    for endpoint in list_endpoints(store, environment):
        if not take_lease(store, endpoint.id, holder, _wall_us(), _lease_end(seconds)):
            run.skipped_endpoints += 1
            continue
        try:
            _deliver_endpoint(store, endpoint, now, holder, seconds, max_attempts, run)
        finally:
            release_lease(store, endpoint.id, holder)
    return run


def deliver_endpoint(store: Store, environment: str, endpoint_id: int, now: datetime, *,
                     max_attempts: int = MAX_ATTEMPTS) -> DeliveryRun:
    """deliver_pending for one endpoint (a test event sent at once): the same lease, order and
    retries; skipped when another run holds the endpoint."""
    run = DeliveryRun()
    seconds = attempt_deadline()
    holder = secrets.token_hex(16)
    endpoint = next((e for e in list_endpoints(store, environment) if e.id == endpoint_id), None)
    if endpoint is None:
        return run
    if not take_lease(store, endpoint.id, holder, _wall_us(), _lease_end(seconds)):
        run.skipped_endpoints += 1
        return run
    try:
        _deliver_endpoint(store, endpoint, now, holder, seconds, max_attempts, run)
    finally:
        release_lease(store, endpoint.id, holder)
    return run


def try_target(url: str, secret: str | None, body: bytes, now: datetime, *,
               allow_private: bool = False) -> tuple[int | None, str | None]:
    """One signed POST of `body` to a URL that is not an endpoint yet (a connection test): the same
    target checks, signature (when a secret is given) and deadline as a delivery; (status, error)."""
    headers = {"Content-Type": "application/json", "User-Agent": "ratecard-webhooks", "Ratecard-Event": "webhook.test"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, int(now.timestamp()), body)
    return _attempt(url, body, headers, allow_private, None, check_name_first=True)


def _wall_us() -> int:
    # the lease is about how long a process really holds an endpoint: the wall clock, not the run's
    # "now", which may be pinned (RATECARD_NOW) or passed in
    return int(time.time() * 1_000_000)


def _lease_end(seconds: float) -> int:
    """When a lease renewed now must end: after the attempt that follows, however long it takes."""
    return _wall_us() + int((seconds + LEASE_MARGIN) * 1_000_000)


def _deliver_endpoint(store: Store, endpoint: Any, now: datetime, holder: str, seconds: float,
                      max_attempts: int, run: DeliveryRun) -> None:
    now_us = to_micros(now)
    while True:
        batch = pending_deliveries(store, endpoint.id)
        if not batch:
            return
        for delivery in batch:
            if delivery.next_attempt_at is not None and delivery.next_attempt_at > now_us:
                return  # the oldest pending one waits for its retry: later ones wait behind it
            if not renew_lease(store, endpoint.id, holder, _lease_end(seconds)):
                return  # the lease ran out and another run holds the endpoint now: it goes on
            run.attempted += 1
            status_code, error = _send(endpoint, delivery, int(now.timestamp()), seconds)
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


def _send(endpoint: Any, delivery: Any, timestamp: int, seconds: float) -> tuple[int | None, str | None]:
    """(status code, error); error is None for a 2xx answer."""
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json", "User-Agent": "ratecard-webhooks",
               SIGNATURE_HEADER: sign(endpoint.secret, timestamp, body),
               "Ratecard-Event": delivery.event_type, "Ratecard-Delivery": str(delivery.id)}
    # the URL was stored before the checks existed, maybe: it is checked again
    return _attempt(endpoint.url, body, headers, endpoint.allow_private, seconds)


def _attempt(url: str, body: bytes, headers: dict[str, str], allow_private: bool, deadline: float | None, *,
             check_name_first: bool = False) -> tuple[int | None, str | None]:
    """One POST of `body` to `url` after the target checks: (status code, error), error None for a
    2xx answer. A connection test also resolves the name before posting (`check_name_first`) and
    reads the configured deadline (None) only once the target passed, as a refused URL comes first."""
    try:
        target = parse_target(url)
        if check_name_first:
            check_name(target, allow_private)
        status_code = post(target, body, headers, allow_private=allow_private,
                           deadline=attempt_deadline() if deadline is None else deadline)
    except TargetRefused as exc:
        return None, f"refused: {exc}"
    except DeliveryFailed as exc:
        return None, str(exc)
    if 200 <= status_code < 300:
        return status_code, None
    return status_code, f"HTTP {status_code}"
