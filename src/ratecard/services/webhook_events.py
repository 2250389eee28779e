"""The billing events Solvimon-style webhooks receive, queued on ratecard's webhook machinery
(golive.webhooks: signed, retried with backoff, in order per endpoint; sent by `ratecard monitor
run` or whatever runs deliver_pending).

`emit` is the one outbox function: the services call it right after the state change they made
(an invoice created or finalized, paid; a payment; a subscription created, changed or cancelled;
a customer created). It queues one delivery per webhook that is active and subscribed to the
action (services.resources.webhooks), all in one transaction, in the order the changes happen.
Alert webhooks added with `ratecard webhooks add` receive alert events only; a Solvimon webhook
receives the alert events too when its actions take them (golive.webhooks.subscribed).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from ..domain.instants import rfc3339, to_micros
from ..golive.webhooks import subscribed
from ..store import Store
from ..store.monitoring import enqueue_deliveries, list_endpoints
from ..store.resources import load_resources

WEBHOOK = "webhook"
ACTIONS = ("alert.opened", "alert.resolved", "invoice.created", "invoice.finalized", "invoice.paid",
           "payment.succeeded", "payment.failed", "customer.created", "subscription.created", "subscription.changed",
           "subscription.cancelled")


def has_webhooks(store: Store, environment: str) -> bool:
    return bool(load_resources(store, environment)[1].of_kind(WEBHOOK))


def emit(store: Store, environment: str, action: str, data: dict[str, Any], now: datetime) -> int:
    """Queue `action` with its object for every subscribed webhook; returns how many deliveries."""
    return emit_many(store, environment, [(action, data)], now)


def emit_many(store: Store, environment: str, events: Sequence[tuple[str, dict[str, Any]]], now: datetime) -> int:
    if not events:
        return 0
    _, resources = load_resources(store, environment)
    hooks = [row for row in resources.of_kind(WEBHOOK)]
    if not hooks:
        return 0
    now_us = to_micros(now)
    endpoints = {endpoint.id for endpoint in list_endpoints(store, environment)}
    rows = []
    for action, data in events:
        body = event_body(environment, action, data, now_us)
        for hook in hooks:
            endpoint_id = hook.body.get("endpoint_id")
            if endpoint_id in endpoints and subscribed(hook.body, action):
                rows.append({"endpoint_id": endpoint_id, "event_type": action, "alert_id": None, "body": body,
                             "created_at": now_us})
    if rows:
        with store.engine.begin() as connection:
            enqueue_deliveries(connection, environment, rows)
    return len(rows)


def event_body(environment: str, action: str, data: dict[str, Any], now_us: int) -> str:
    """The JSON every receiver gets (and the signature covers)."""
    return orjson.dumps({"id": f"whe_{secrets.token_hex(12)}", "object_type": "WEBHOOK_EVENT", "action": action,
                         "environment": environment, "created_at": rfc3339(now_us), "data": data}).decode()


TEST_ACTION = "webhook.test"  # sent by send-test and test-connection only, whatever a webhook subscribes to


def send_test(store: Store, environment: str, endpoint_id: int, data: dict[str, Any], now: datetime) -> Any:
    """Queue a test event for one endpoint and deliver that endpoint now (golive.webhooks: signed,
    in order behind what it has pending, retried like any event when it fails); the delivery row."""
    from ..golive.webhooks import deliver_endpoint
    from ..store.monitoring import list_deliveries

    now_us = to_micros(now)
    body = event_body(environment, TEST_ACTION, data, now_us)
    with store.engine.begin() as connection:
        enqueue_deliveries(connection, environment, [{"endpoint_id": endpoint_id, "event_type": TEST_ACTION,
                                                      "alert_id": None, "body": body, "created_at": now_us}])
    deliver_endpoint(store, environment, endpoint_id, now)
    return next(row for row in list_deliveries(store, environment, endpoint_id=endpoint_id, limit=50)
                if row.body == body)


def invoice_data(invoice: Any) -> dict[str, Any]:
    """An invoice as a webhook event carries it."""
    return {"object_type": "INVOICE", "id": invoice.id, "number": invoice.number, "customer_reference": invoice.customer,
            "pricing_plan_subscription_reference": invoice.subscription or None, "status": invoice.status.upper(),
            "type": invoice.kind.upper(), "currency": invoice.currency, "subtotal": str(invoice.subtotal),
            "tax": str(invoice.tax), "total": str(invoice.total), "issue_date": invoice.issue_date}


def invoices(store: Store, environment: str, action: str, records: Sequence[Any], now: datetime) -> int:
    return emit_many(store, environment, [(action, invoice_data(record)) for record in records
                                          if getattr(record, "mode", "live") == "live"], now)
