"""Monitoring use cases: ingestion figures, the alert run (rules evaluated, webhooks delivered),
alerts and their rules, and webhook endpoints with their delivery log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..domain.instants import rfc3339_seconds, to_micros
from ..golive.alerts import (
    Evaluation,
    RuleError,
    alert_document,
    create_rule,
    describe_rule,
    evaluate,
    remove_rule,
    rule_document,
)
from ..golive.monitor import ingestion_minutes
from ..golive.webhooks import (
    DeadlineSettingError,
    DeliveryRun,
    EndpointError,
    attempt_deadline,
    create_endpoint,
    deliver_pending,
)
from ..store import Store
from ..store.monitoring import (
    RuleRow,
    delete_endpoint,
    list_alerts,
    list_deliveries,
    list_endpoints,
    list_rules,
    pending_counts,
    requeue_failed_delivery,
)
from .errors import Conflict, InvalidInput, NotFound
from .keys import check_environment

if TYPE_CHECKING:
    from ..golive.webhooks import DeliveryRun

MAX_MINUTES = 525_600  # a year
ALERT_STATUSES = ("open", "resolved")
DELIVERY_STATUSES = ("pending", "delivered", "failed")
MAX_ROW_ID = 2**63 - 1  # the largest id a BIGINT (PostgreSQL) or INTEGER (SQLite) column holds



def ingestion(store: Store, now: datetime, minutes: int = 60, environment: str = "live") -> dict[str, Any]:
    """Per minute that saw ingestion: accepted, rejected by reason, duplicates, unmatched, late; with totals."""
    if minutes < 1 or minutes > MAX_MINUTES:
        raise InvalidInput(f"{minutes} must be between 1 and {MAX_MINUTES} (a year)", field="minutes")
    check_environment(environment)
    return ingestion_minutes(store, environment, now, minutes)


@dataclass
class MonitorRun:
    now: datetime
    evaluation: Evaluation
    deliveries: DeliveryRun

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), **self.evaluation.as_dict(), "deliveries": self.deliveries.as_dict()}


def run(store: Store, now: datetime, environment: str = "live", max_attempts: int = 10) -> MonitorRun:
    """Evaluate every alert rule at `now` and deliver the webhooks that are due (safe to overlap)."""
    if not 1 <= max_attempts <= 100:
        raise InvalidInput(f"{max_attempts} must be between 1 and 100", field="max_attempts")
    try:
        deadline = attempt_deadline()  # a bad setting stops the run before anything is recorded
    except DeadlineSettingError as exc:
        raise InvalidInput(str(exc)) from None
    evaluation = evaluate(store, environment, now)
    deliveries = deliver_pending(store, environment, now, max_attempts=max_attempts, deadline=deadline)
    return MonitorRun(now, evaluation, deliveries)


def alerts(store: Store, environment: str = "live", status: str | None = None,
           limit: int | None = 100) -> list[dict[str, Any]]:
    """Alerts, newest first."""
    if status is not None and status not in ALERT_STATUSES:
        raise InvalidInput(f"{status!r} is not an alert status (open or resolved)", field="status")
    return alert_page(store, environment, status, limit)[0]


def alert_page(store: Store, environment: str = "live", status: str | None = None, limit: int | None = 100,
               offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Alerts newest first, from `offset`, and how many match in all."""
    if status is not None and status not in ALERT_STATUSES:
        raise InvalidInput(f"{status!r} is not an alert status (open or resolved)", field="status")
    rows, total = list_alerts(store, environment, status, limit, offset)
    return [alert_document(row) for row in rows], total


def add_rule(store: Store, now: datetime, environment: str = "live", **options: str | None) -> RuleRow:
    """Store an alert rule (kind silence or drop, with its options as typed); InvalidInput names the option."""
    try:
        rule_id = create_rule(store, environment, now, **options)
    except RuleError as exc:
        raise InvalidInput(str(exc)) from None
    return next(rule for rule in list_rules(store, environment) if rule.id == rule_id)


def rules(store: Store, environment: str = "live") -> list[RuleRow]:
    return list_rules(store, environment)


def remove(store: Store, rule_id: int, now: datetime, environment: str = "live") -> dict[str, Any]:
    """Remove a rule; its open alerts are resolved (and that is delivered)."""
    resolved = remove_rule(store, environment, rule_id, now)
    if resolved is None:
        raise NotFound(f"there is no alert rule {rule_id} (see `ratecard alerts rules list`)")
    return {"removed": rule_id, "resolved_alerts": [alert.id for alert in resolved]}


def rule_as_dict(rule: RuleRow) -> dict[str, Any]:
    return rule_document(rule)


def rule_summary(rule: RuleRow) -> str:
    """The rule in words: "after 6 h without events", "below 50 % of the 7d baseline over 1h"."""
    return describe_rule(rule)


def add_webhook(store: Store, url: str, now: datetime, environment: str = "live",
                secret: str | None = None, allow_private: bool = False) -> dict[str, Any]:
    """A signed endpoint for alert.opened / alert.resolved; `secret` is returned only when generated here.
    `allow_private`: the operator allows a target on a private, loopback or link-local address."""
    try:
        endpoint_id, chosen = create_endpoint(store, environment, url, secret, now, allow_private=allow_private)
    except (EndpointError, DeadlineSettingError) as exc:
        raise InvalidInput(str(exc)) from None
    return {"id": endpoint_id, "url": url, "secret": None if secret else chosen, "allow_private": allow_private}


def webhooks(store: Store, environment: str = "live") -> list[dict[str, Any]]:
    """Endpoints (secrets are never shown again) with their pending deliveries."""
    endpoints = list_endpoints(store, environment)
    pending = pending_counts(store, environment)
    return [{"id": e.id, "url": e.url, "created_at": rfc3339_seconds(e.created_at),
             "pending": pending.get(e.id, 0)} for e in endpoints]


def remove_webhook(store: Store, endpoint_id: int, environment: str = "live") -> None:
    """Remove an endpoint; its pending deliveries are marked failed (the log is kept)."""
    if not delete_endpoint(store, environment, endpoint_id):
        raise NotFound(f"there is no webhook endpoint {endpoint_id} (see `ratecard webhooks list`)")


def deliveries(store: Store, environment: str = "live", status: str | None = None, endpoint: int | None = None,
               limit: int | None = 100, offset: int = 0) -> list[dict[str, Any]]:
    """The delivery log, newest first (from `offset`)."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidInput(f"{status!r} is not a delivery status (pending, delivered or failed)", field="status")
    rows = list_deliveries(store, environment, endpoint, status, limit, offset)
    return [{"id": d.id, "endpoint": d.endpoint_id, "event": d.event_type, "alert": d.alert_id,
             "status": d.status, "attempts": d.attempts, "last_status_code": d.last_status_code,
             "last_error": d.last_error,
             "next_attempt_at": rfc3339_seconds(d.next_attempt_at) if d.status == "pending" else None,
             "created_at": rfc3339_seconds(d.created_at), "delivered_at": rfc3339_seconds(d.delivered_at)} for d in rows]


def retry_delivery(store: Store, delivery_id: int, now: datetime, environment: str = "live") -> dict[str, Any]:
    """Send a failed webhook delivery again: it goes back to pending, due now, with its attempts
    reset, and the next alert run (`ratecard monitor run`) sends it in its endpoint's order."""
    # an id no integer column can hold names no delivery (and would make the query itself fail)
    in_range = 0 < delivery_id <= MAX_ROW_ID
    outcome = requeue_failed_delivery(store, environment, delivery_id, to_micros(now)) if in_range else "missing"
    if outcome == "missing":
        raise NotFound(f"there is no webhook delivery {delivery_id} (see `ratecard webhooks deliveries`)")
    if outcome == "endpoint_removed":
        raise Conflict(f"webhook delivery {delivery_id}: its endpoint was removed; there is nowhere to send it")
    if outcome == "not_failed":
        raise Conflict(f"webhook delivery {delivery_id} has not failed: only a failed delivery is retried")
    return {"retried": delivery_id, "status": "pending", "next_attempt_at": rfc3339_seconds(to_micros(now))}
