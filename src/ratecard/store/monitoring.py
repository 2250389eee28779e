"""Monitoring rows: per-minute ingestion counters, alert rules, alerts, webhook endpoints and
the webhook delivery log. Plain reads and writes; the decisions live in ratecard.golive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .db import Store
from .schema import (
    alert_rules,
    alerts,
    api_resources,
    events,
    ingestion_counters,
    webhook_deliveries,
    webhook_endpoints,
)

MINUTE_US = 60_000_000

# ---------------------------------------------------------------- ingestion counters


def add_counters(store: Store, environment: str, minute_us: int, counts: dict[tuple[str, str], int]) -> None:
    """Add counts to one minute's counters in one transaction (an upsert per (metric, reason)).

    Rows are written in key order so concurrent writers lock them in the same order."""
    rows = [{"environment": environment, "minute": minute_us, "metric": metric, "reason": reason, "count": n}
            for (metric, reason), n in sorted(counts.items()) if n]
    if not rows:
        return
    with store.engine.begin() as connection:
        connection.execute(_counter_upsert(store.is_postgres), rows)


_UPSERTS: dict[bool, Any] = {}


def _counter_upsert(is_postgres: bool) -> Any:
    """INSERT … ON CONFLICT DO UPDATE count = count + excluded.count, built once per dialect
    (the statement is the same on every call, so SQLAlchemy's compiled cache serves it)."""
    if is_postgres not in _UPSERTS:
        statement = (postgresql if is_postgres else sqlite).insert(ingestion_counters)
        _UPSERTS[is_postgres] = statement.on_conflict_do_update(
            index_elements=["environment", "minute", "metric", "reason"],
            set_={"count": ingestion_counters.c.count + statement.excluded.count},
        )
    return _UPSERTS[is_postgres]


def read_counters(store: Store, environment: str, start_us: int, end_us: int) -> list[tuple[int, str, str, int]]:
    """(minute, metric, reason, count) for minutes in [start, end), oldest first."""
    c = ingestion_counters.c
    query = (select(c.minute, c.metric, c.reason, c.count)
             .where(c.environment == environment, c.minute >= start_us, c.minute < end_us)
             .order_by(c.minute, c.metric, c.reason))
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]


# ---------------------------------------------------------------- event rates (detection input)


def _event_filter(environment: str, customer: str | None, meter: str | None) -> list[Any]:
    c = events.c
    conditions = [c.environment == environment, c.status == "matched", c.deleted_at.is_(None)]
    if customer is not None:
        conditions.append(c.customer == customer)
    if meter is not None:
        conditions.append(c.meter == meter)
    return conditions


def last_event_times(store: Store, environment: str, customer: str | None,
                     meter: str | None) -> dict[tuple[str, str], int]:
    """(customer, meter) -> the timestamp of its latest matched, not deleted event."""
    c = events.c
    query = (select(c.customer, c.meter, func.max(c.ts))
             .where(*_event_filter(environment, customer, meter))
             .group_by(c.customer, c.meter))
    with store.engine.connect() as connection:
        return {(row[0], row[1]): int(row[2]) for row in connection.execute(query)}


def event_counts(store: Store, environment: str, customer: str | None, meter: str | None,
                 start_us: int, end_us: int) -> dict[tuple[str, str], int]:
    """(customer, meter) -> matched, not deleted events with timestamps in [start, end)."""
    c = events.c
    query = (select(c.customer, c.meter, func.count())
             .where(*_event_filter(environment, customer, meter), c.ts >= start_us, c.ts < end_us)
             .group_by(c.customer, c.meter))
    with store.engine.connect() as connection:
        return {(row[0], row[1]): int(row[2]) for row in connection.execute(query)}


# ---------------------------------------------------------------- alert rules


@dataclass(frozen=True)
class RuleRow:
    id: int
    kind: str
    customer: str | None
    meter: str | None
    window_seconds: int
    baseline_seconds: int | None
    fraction: str | None
    min_expected: str | None
    created_at: int


def add_rule(store: Store, environment: str, values: dict[str, Any]) -> int:
    with store.engine.begin() as connection:
        result = connection.execute(insert(alert_rules).values(environment=environment, **values))
        return int(result.inserted_primary_key[0])


def list_rules(store: Store, environment: str) -> list[RuleRow]:
    c = alert_rules.c
    query = (select(c.id, c.kind, c.customer, c.meter, c.window_seconds, c.baseline_seconds, c.fraction,
                    c.min_expected, c.created_at)
             .where(c.environment == environment).order_by(c.id))
    with store.engine.connect() as connection:
        return [RuleRow(*row) for row in connection.execute(query)]


def delete_rule(connection: Connection, environment: str, rule_id: int) -> bool:
    c = alert_rules.c
    result = connection.execute(alert_rules.delete().where(c.environment == environment, c.id == rule_id))
    return result.rowcount > 0


# ---------------------------------------------------------------- alerts


@dataclass(frozen=True)
class AlertRow:
    id: int
    rule_id: int
    kind: str
    customer: str
    meter: str
    status: str
    message: str
    details: str
    opened_at: int
    resolved_at: int | None


_ALERT_COLUMNS = (alerts.c.id, alerts.c.rule_id, alerts.c.kind, alerts.c.customer, alerts.c.meter,
                  alerts.c.status, alerts.c.message, alerts.c.details, alerts.c.opened_at, alerts.c.resolved_at)


def open_key(rule_id: int, customer: str, meter: str) -> str:
    return f"{rule_id}/{customer}/{meter}"


def insert_open_alert(connection: Connection, environment: str, rule_id: int, kind: str, customer: str,
                      meter: str, message: str, details: str, now_us: int) -> int | None:
    """A new open alert, or None when this rule and pair already has one open."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (dialect.insert(alerts)
                 .values(environment=environment, rule_id=rule_id, kind=kind, customer=customer, meter=meter,
                         status="open", open_key=open_key(rule_id, customer, meter), message=message,
                         details=details, opened_at=now_us, resolved_at=None)
                 .on_conflict_do_nothing(index_elements=["environment", "open_key"])
                 .returning(alerts.c.id))
    row = connection.execute(statement).first()
    return None if row is None else int(row[0])


def open_alerts(connection: Connection, environment: str, rule_id: int | None = None) -> list[AlertRow]:
    conditions = [alerts.c.environment == environment, alerts.c.status == "open"]
    if rule_id is not None:
        conditions.append(alerts.c.rule_id == rule_id)
    query = select(*_ALERT_COLUMNS).where(*conditions).order_by(alerts.c.id)
    return [AlertRow(*row) for row in connection.execute(query)]


def resolve_alert(connection: Connection, alert_id: int, now_us: int) -> bool:
    """Resolve one open alert; False when another run resolved it first."""
    result = connection.execute(
        update(alerts).where(alerts.c.id == alert_id, alerts.c.status == "open")
        .values(status="resolved", open_key=None, resolved_at=now_us))
    return result.rowcount > 0


def list_alerts(store: Store, environment: str, status: str | None = None, limit: int | None = None,
                offset: int = 0) -> tuple[list[AlertRow], int]:
    """Alerts newest first, and how many match in all."""
    conditions = [alerts.c.environment == environment]
    if status is not None:
        conditions.append(alerts.c.status == status)
    query = select(*_ALERT_COLUMNS).where(*conditions).order_by(alerts.c.id.desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(alerts).where(*conditions)).scalar_one()
        return [AlertRow(*row) for row in connection.execute(query)], int(total)


# ---------------------------------------------------------------- webhook endpoints


@dataclass(frozen=True)
class EndpointRow:
    id: int
    url: str
    secret: str
    created_at: int
    allow_private: bool


def add_endpoint(store: Store, environment: str, url: str, secret: str, now_us: int,
                 allow_private: bool = False) -> int:
    with store.engine.begin() as connection:
        result = connection.execute(insert(webhook_endpoints).values(
            environment=environment, url=url, secret=secret, created_at=now_us, lease_until=None,
            lease_holder=None, allow_private=allow_private))
        return int(result.inserted_primary_key[0])


def list_endpoints(store_or_connection: Store | Connection, environment: str) -> list[EndpointRow]:
    c = webhook_endpoints.c
    query = (select(c.id, c.url, c.secret, c.created_at, c.allow_private)
             .where(c.environment == environment).order_by(c.id))
    if isinstance(store_or_connection, Store):
        with store_or_connection.engine.connect() as connection:
            return [_endpoint(row) for row in connection.execute(query)]
    return [_endpoint(row) for row in store_or_connection.execute(query)]


def _endpoint(row: Any) -> EndpointRow:
    return EndpointRow(row.id, row.url, row.secret, row.created_at, bool(row.allow_private))


def webhook_settings(connection: Connection, environment: str) -> dict[int, dict[str, Any]]:
    """Endpoint id -> the settings of the Solvimon webhook it belongs to (its api_resources row of
    kind `webhook`); endpoints added with `webhooks add` have none."""
    query = select(api_resources.c.body).where(api_resources.c.environment == environment,
                                               api_resources.c.kind == "webhook")
    settings = {}
    for (text_,) in connection.execute(query):
        body = orjson.loads(text_)
        if isinstance(body.get("endpoint_id"), int):
            settings[body["endpoint_id"]] = body
    return settings


def set_endpoint_secret(connection: Connection, environment: str, endpoint_id: int, secret: str) -> bool:
    """Replace an endpoint's signing secret (in the caller's transaction)."""
    result = connection.execute(update(webhook_endpoints).where(
        webhook_endpoints.c.environment == environment, webhook_endpoints.c.id == endpoint_id).values(secret=secret))
    return result.rowcount > 0


def delete_endpoint(store: Store, environment: str, endpoint_id: int) -> bool:
    """Remove an endpoint; its pending deliveries are marked failed (the log is kept)."""
    with store.engine.begin() as connection:
        result = connection.execute(webhook_endpoints.delete().where(
            webhook_endpoints.c.environment == environment, webhook_endpoints.c.id == endpoint_id))
        if not result.rowcount:
            return False
        connection.execute(update(webhook_deliveries)
                           .where(webhook_deliveries.c.endpoint_id == endpoint_id,
                                  webhook_deliveries.c.status == "pending")
                           .values(status="failed", next_attempt_at=None, last_error="endpoint removed"))
        return True


# The delivery lease: one run at a time delivers to an endpoint. Instants are the wall clock in µs
# (how long a process really holds the endpoint, whatever "now" the run bills at); `holder` is the
# run's random token, so a run whose lease ran out can neither extend nor release another run's.


def take_lease(store: Store, endpoint_id: int, holder: str, now_us: int, until_us: int) -> bool:
    """Claim an endpoint for one delivery run (atomic); False when another run holds it."""
    c = webhook_endpoints.c
    with store.engine.begin() as connection:
        result = connection.execute(update(webhook_endpoints)
                                    .where(c.id == endpoint_id, or_(c.lease_until.is_(None), c.lease_until <= now_us))
                                    .values(lease_until=until_us, lease_holder=holder))
        return result.rowcount > 0


def renew_lease(store: Store, endpoint_id: int, holder: str, until_us: int) -> bool:
    """Extend the lease `holder` holds (atomic); False when it is no longer the holder."""
    c = webhook_endpoints.c
    with store.engine.begin() as connection:
        result = connection.execute(update(webhook_endpoints)
                                    .where(c.id == endpoint_id, c.lease_holder == holder)
                                    .values(lease_until=until_us))
        return result.rowcount > 0


def release_lease(store: Store, endpoint_id: int, holder: str) -> None:
    c = webhook_endpoints.c
    with store.engine.begin() as connection:
        connection.execute(update(webhook_endpoints).where(c.id == endpoint_id, c.lease_holder == holder)
                           .values(lease_until=None, lease_holder=None))


# ---------------------------------------------------------------- deliveries


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    endpoint_id: int
    event_type: str
    alert_id: int | None
    body: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: int | None
    created_at: int
    delivered_at: int | None


_DELIVERY_COLUMNS = tuple(webhook_deliveries.c[name] for name in DeliveryRow.__dataclass_fields__)


def enqueue_deliveries(connection: Connection, environment: str, rows: Sequence[dict[str, Any]]) -> None:
    """New pending deliveries (endpoint_id, event_type, alert_id, body, created_at); in the caller's
    transaction, so an alert and its deliveries are stored together."""
    if rows:
        connection.execute(insert(webhook_deliveries), [
            {"environment": environment, "status": "pending", "attempts": 0, "last_status_code": None,
             "last_error": None, "next_attempt_at": row["created_at"], "delivered_at": None, **row}
            for row in rows])


def pending_deliveries(store: Store, endpoint_id: int, limit: int = 100) -> list[DeliveryRow]:
    """The endpoint's pending deliveries in the order they must be sent."""
    c = webhook_deliveries.c
    query = (select(*_DELIVERY_COLUMNS).where(c.endpoint_id == endpoint_id, c.status == "pending")
             .order_by(c.id).limit(limit))
    with store.engine.connect() as connection:
        return [DeliveryRow(*row) for row in connection.execute(query)]


def record_attempt(store: Store, delivery_id: int, values: dict[str, Any]) -> None:
    with store.engine.begin() as connection:
        connection.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
                           .values(attempts=webhook_deliveries.c.attempts + 1, **values))


def list_deliveries(store: Store, environment: str, endpoint_id: int | None = None,
                    status: str | None = None, limit: int | None = 100, offset: int = 0) -> list[DeliveryRow]:
    c = webhook_deliveries.c
    conditions = [c.environment == environment]
    if endpoint_id is not None:
        conditions.append(c.endpoint_id == endpoint_id)
    if status is not None:
        conditions.append(c.status == status)
    query = select(*_DELIVERY_COLUMNS).where(and_(*conditions)).order_by(c.id.desc())
    if limit:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    with store.engine.connect() as connection:
        return [DeliveryRow(*row) for row in connection.execute(query)]


def pending_counts(store: Store, environment: str) -> dict[int, int]:
    """Endpoint id -> its pending deliveries (endpoints with none are left out)."""
    c = webhook_deliveries.c
    query = (select(c.endpoint_id, func.count()).where(c.environment == environment, c.status == "pending")
             .group_by(c.endpoint_id))
    with store.engine.connect() as connection:
        return {int(endpoint_id): int(count) for endpoint_id, count in connection.execute(query)}


def requeue_failed_delivery(store: Store, environment: str, delivery_id: int, now_us: int) -> str:
    """Put a failed delivery back in its endpoint's queue with a fresh set of attempts, due now.
    Returns "requeued", or why not: "missing", "not_failed" or "endpoint_removed". One
    transaction, and only a delivery still failed changes (two retries at once requeue it once)."""
    d, e = webhook_deliveries.c, webhook_endpoints.c
    with store.engine.begin() as connection:
        row = connection.execute(select(d.status, d.endpoint_id)
                                 .where(d.environment == environment, d.id == delivery_id)).first()
        if row is None:
            return "missing"
        endpoint = connection.execute(select(e.id).where(e.environment == environment, e.id == row.endpoint_id)).first()
        if endpoint is None:
            return "endpoint_removed"
        result = connection.execute(update(webhook_deliveries)
                                    .where(d.id == delivery_id, d.status == "failed")
                                    .values(status="pending", attempts=0, next_attempt_at=now_us))
        return "requeued" if result.rowcount else "not_failed"
