"""Solvimon's webhooks as ratecard webhook endpoints: the endpoint (URL, signing secret) is a row of
the alert webhooks' table, so delivery, signing, retries and order are golive.webhooks'; the
Solvimon settings (name, reference, actions, active) are an api_resources row of kind `webhook`."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from ...domain.instants import to_micros
from ...golive.webhooks import EndpointError, create_endpoint, new_secret
from ...store import Store
from ...store.monitoring import delete_endpoint, list_endpoints, set_endpoint_secret
from ...store.resources import Resource, Resources, config_change, load_resources
from ..webhook_events import ACTIONS, WEBHOOK
from .checks import already_exists, check_reference, check_text, invalid, invalid_operation, missing, not_found

PREFIX = "whk_"
# set to 1 to let API keys add receivers on private, loopback and link-local addresses (on-premises
# receivers, tests); without it a Solvimon webhook URL must be a public address
ALLOW_PRIVATE_VARIABLE = "RATECARD_API_WEBHOOKS_ALLOW_PRIVATE"
AUTHENTICATION_TYPES = ("NONE",)


def allow_private() -> bool:
    return os.environ.get(ALLOW_PRIVATE_VARIABLE, "").strip() == "1"


def _actions(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid(name, f"{name} must be a list of actions")
    unknown = [item for item in value if item not in ACTIONS]
    if unknown:
        raise invalid(name, f"unknown action {unknown[0][:60]!r} (actions: {', '.join(ACTIONS)})")
    return list(dict.fromkeys(value))


def _settings(data: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    body = dict(current)
    for name in ("name",):
        if name in data:
            body[name] = check_text(data[name], name)
    for name in ("included_actions", "excluded_actions"):
        if name in data:
            body[name] = _actions(data, name)
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise invalid("active", "active must be true or false")
        body["active"] = data["active"]
    kind = data.get("authentication_type")
    credentials = any(data.get(name) for name in ("username", "password", "api_key"))
    if not isinstance(kind, str | None) or kind not in (None, *AUTHENTICATION_TYPES) or credentials:
        raise invalid("authentication_type", "ratecard signs every delivery (see the signature header) and sends no "
                                             "basic or API-key authentication: authentication_type must be NONE")
    return body


def secrets_of(store: Store, environment: str) -> dict[int, str]:
    return {endpoint.id: endpoint.secret for endpoint in list_endpoints(store, environment)}


def create(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[Resource, str]:
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise missing("url")
    for name in ("name", "reference"):
        if data.get(name) is None:
            raise missing(name)
    reference = check_reference(data.get("reference"))
    body = _settings(data, {"url": url, "included_actions": [], "excluded_actions": [], "active": True})
    secret = data.get("secret_key")
    if secret is not None and not isinstance(secret, str):
        raise invalid("secret_key", "secret_key must be a string")
    if load_resources(store, environment)[1].by_reference.get((WEBHOOK, reference)) is not None:
        raise already_exists("webhook", reference)
    try:  # its own transaction, before the locked one (SQLite has one writer at a time)
        endpoint_id, chosen = create_endpoint(store, environment, url, secret, now, allow_private=allow_private())
    except EndpointError as exc:
        raise invalid("secret_key" if "secret" in str(exc) else "url", str(exc).replace("--secret", "secret_key")) \
            from None
    body["endpoint_id"] = endpoint_id
    try:
        with config_change(store, environment, to_micros(now)) as change:
            if change.resources.by_reference.get((WEBHOOK, reference)) is not None:
                raise already_exists("webhook", reference)  # created meanwhile by another request
            row = change.put(Resource(change.new_id(PREFIX, WEBHOOK, reference), WEBHOOK, reference, body, 0, 0))
    except BaseException:
        delete_endpoint(store, environment, endpoint_id)
        raise
    return row, chosen


def _find(resources: Resources, key: str) -> Resource:
    row = resources.find(WEBHOOK, key)
    if row is None:
        raise not_found("webhook", key)
    return row


def find(store: Store, environment: str, key: str) -> Resource:
    return _find(load_resources(store, environment)[1], key)


def listed(store: Store, environment: str) -> list[Resource]:
    return sorted(load_resources(store, environment)[1].of_kind(WEBHOOK), key=lambda row: (row.created_at, row.id))


def update(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> Resource:
    with config_change(store, environment, to_micros(now)) as change:
        row = _find(change.resources, key)
        if data.get("url") not in (None, row.body.get("url")):
            raise invalid_operation("a webhook's url cannot change: create another webhook and delete this one", "url")
        if data.get("reference") not in (None, row.reference):
            raise invalid_operation("a webhook's reference cannot change", "reference")
        return change.put(Resource(row.id, WEBHOOK, row.reference, _settings(data, row.body), 0, 0))


def roll_secret(store: Store, environment: str, now: datetime, key: str, secret: Any = None) -> tuple[Resource, str]:
    """A new signing secret (given, at least 16 characters, or generated); deliveries from now on use it."""
    if secret is not None and (not isinstance(secret, str) or not 16 <= len(secret) <= 256):
        raise invalid("secret_key", "secret_key must be 16 to 256 characters (or leave it out to get a generated one)")
    chosen = secret or new_secret()
    with config_change(store, environment, to_micros(now)) as change:
        row = _find(change.resources, key)
        set_endpoint_secret(change.connection, environment, row.body["endpoint_id"], chosen)
        row = change.put(Resource(row.id, WEBHOOK, row.reference, {**row.body, "secret_rolled_at": to_micros(now)},
                                  0, 0))
    return row, chosen


def delete(store: Store, environment: str, now: datetime, key: str) -> Resource:
    """Remove the webhook and its endpoint; its pending deliveries are marked failed (the log stays)."""
    with config_change(store, environment, to_micros(now)) as change:
        row = _find(change.resources, key)
        change.delete(row.id)
    delete_endpoint(store, environment, row.body["endpoint_id"])
    return row


def send_test(store: Store, environment: str, now: datetime, key: str) -> tuple[bool, str]:
    """Deliver a signed `webhook.test` event to the webhook now, through the delivery machinery
    (it shows in the webhook's events); (delivered, what happened)."""
    from ..webhook_events import send_test as queue_and_send

    row = find(store, environment, key)
    data = {"object_type": "WEBHOOK", "id": row.id, "reference": row.reference, "url": row.body.get("url"),
            "message": "a test event from ratecard: nothing changed"}
    delivery = queue_and_send(store, environment, row.body["endpoint_id"], data, now)
    event = f"whe_{delivery.id}"
    if delivery.status == "delivered":
        return True, f"delivered (HTTP {delivery.last_status_code}) as event {event}"
    if delivery.attempts == 0:
        return False, (f"queued as event {event} behind earlier events of this webhook that wait for their retry "
                       "(events are delivered in order)")
    return False, f"not delivered ({delivery.last_error}); event {event} is retried like any event"


def test_connection(environment: str, now: datetime, data: dict[str, Any]) -> tuple[bool, str]:
    """POST a signed `webhook.test` event to a URL that is not a webhook yet (nothing is stored or
    queued); (answered 2xx, what happened)."""
    from ...golive.webhooks import try_target
    from ..webhook_events import TEST_ACTION, event_body

    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise missing("url")
    _settings(data, {})  # the same authentication refusal as a webhook's
    secret = data.get("secret_key")
    if secret is not None and (not isinstance(secret, str) or not 16 <= len(secret) <= 256):
        raise invalid("secret_key", "secret_key must be 16 to 256 characters (leave it out to send unsigned)")
    body = event_body(environment, TEST_ACTION, {"object_type": "WEBHOOK", "url": url,
                                                  "message": "a connection test from ratecard"}, to_micros(now))
    status, error = try_target(url, secret, body.encode(), now, allow_private=allow_private())
    if error is None:
        return True, f"HTTP {status}"
    return False, error
