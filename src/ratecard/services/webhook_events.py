"""The billing events Solvimon-style webhooks receive, queued on ratecard's webhook machinery
(golive.webhooks: signed, retried with backoff, in order per endpoint; sent by `ratecard monitor
run` or whatever runs deliver_pending).

The deliveries are an outbox: a billing event (an invoice created, finalized or paid; a payment
succeeded or failed; a subscription created, changed or cancelled; a customer created) is queued
in the very transaction that makes the change (`outbox`: the webhooks are read first, the rows are
written by the store function that commits the change, through its `then` step, or in the
config_change the service holds), so the change and its webhooks are stored together or not at
all; a process that stops right after the commit loses none. One delivery per webhook that is
active and subscribed to the action (services.resources.webhooks), in the order the changes happen.
Alert webhooks added with `ratecard webhooks add` receive alert events only; a Solvimon webhook
receives the alert events too when its actions take them (golive.webhooks.subscribed).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

Events = Sequence[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Outbox:
    """The environment's webhooks, read before a change's transaction, to queue the change's events
    inside it (`write`, given the transaction's connection): stored with the change or not at all."""

    environment: str
    now_us: int
    hooks: tuple[tuple[int, dict[str, Any]], ...]  # (endpoint id, the webhook's settings)

    def rows(self, events: Events) -> list[dict[str, Any]]:
        rows = []
        for action, data in events:
            body = event_body(self.environment, action, data, self.now_us)
            for endpoint_id, settings in self.hooks:
                if subscribed(settings, action):
                    rows.append({"endpoint_id": endpoint_id, "event_type": action, "alert_id": None, "body": body,
                                 "created_at": self.now_us})
        return rows

    def write(self, connection: Any, events: Events) -> None:
        """Queue `events` in the caller's transaction."""
        if self.hooks:
            enqueue_deliveries(connection, self.environment, self.rows(events))


def outbox(store: Store, environment: str, now: datetime) -> Outbox:
    """The webhooks a change about to be made at `now` queues its events for (none: it queues nothing)."""
    _, resources = load_resources(store, environment)
    hooks = resources.of_kind(WEBHOOK)
    endpoints = {endpoint.id for endpoint in list_endpoints(store, environment)} if hooks else set()
    return Outbox(environment, to_micros(now), tuple((hook.body["endpoint_id"], hook.body) for hook in hooks
                                                     if hook.body.get("endpoint_id") in endpoints))


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


def subscription_data(reference: str, catalog_version: int) -> dict[str, Any]:
    """A subscription as a webhook event carries it: its reference and the catalog version that
    holds the change."""
    return {"object_type": "PRICING_PLAN_SUBSCRIPTION", "reference": reference, "catalog_version": catalog_version}


def invoice_events(action: str, records: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
    """`action` for each live invoice of `records` (a shadow invoice sends nothing)."""
    return [(action, invoice_data(record)) for record in records if getattr(record, "mode", "live") == "live"]


def invoice_step(store: Store, environment: str, action: str, now: datetime) -> Callable[[Any, Any], None]:
    """A store write's `then` step queuing `action` for the invoice it wrote, in its transaction."""
    box = outbox(store, environment, now)

    def queue(connection: Any, record: Any) -> None:
        box.write(connection, invoice_events(action, [record]))

    return queue


def invoices_step(store: Store, environment: str, action: str, now: datetime
                  ) -> Callable[[Any, Sequence[Any]], None] | None:
    """invoice_step for a write of many invoices (a batch of an invoice run's new drafts); None
    when the environment has no webhook (nothing to queue, nothing to pass down)."""
    box = outbox(store, environment, now)
    if not box.hooks:
        return None

    def queue(connection: Any, records: Sequence[Any]) -> None:
        box.write(connection, invoice_events(action, records))

    return queue
