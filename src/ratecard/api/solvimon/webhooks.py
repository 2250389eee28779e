"""/v1/webhooks and /v1/webhook-events: Solvimon's webhook resources on ratecard's webhook delivery
(services.resources.webhooks; the events are services.webhook_events)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...services.resources import webhooks
from ...services.resources.checks import invalid_operation
from ...services.webhook_events import ACTIONS
from ...store.monitoring import DeliveryRow, list_deliveries, requeue_failed_delivery
from ...store.resources import Resource
from ..context import Caller, current_caller
from ..errors import invalid, not_found
from ..pagination import Page, paginate, solvimon_page
from .common import OBJECT_BODY, json_body, json_response, param, wire_instant
from .vocabulary import require_object

router = APIRouter(tags=["webhooks"])
EVENT_PREFIX = "whe_"
STATUSES = {"pending": "PENDING", "delivered": "SUCCEEDED", "failed": "FAILED"}


def render(row: Resource, secret: str | None = None) -> dict[str, Any]:
    body = row.body
    out: dict[str, Any] = {
        "object_type": "WEBHOOK", "id": row.id, "reference": row.reference, "name": body.get("name"),
        "url": body.get("url"), "included_actions": body.get("included_actions") or [],
        "excluded_actions": body.get("excluded_actions") or [], "active": bool(body.get("active", True)),
        "authentication_type": "NONE", "signing_protocol": "HMAC_SHA256",
        "secret_rolled_at": wire_instant(body.get("secret_rolled_at")),
    }
    if secret is not None:  # shown when created or rolled only
        out["secret_key"] = secret
    return {key: value for key, value in out.items() if value is not None}


def render_event(delivery: DeliveryRow, webhook_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "object_type": "WEBHOOK_EVENT", "id": f"{EVENT_PREFIX}{delivery.id}", "webhook_id": webhook_id,
        "action": delivery.event_type, "status": STATUSES.get(delivery.status, delivery.status.upper()),
        "status_code": delivery.last_status_code, "created_at": wire_instant(delivery.created_at),
        "updated_at": wire_instant(delivery.delivered_at or delivery.created_at), "request_payload": delivery.body,
        "attempts": delivery.attempts,
    }
    if delivery.last_error and delivery.status != "delivered":
        out["failure_data"] = {"error": delivery.last_error[:500]}
    return {key: value for key, value in out.items() if value is not None}


# ---------------------------------------------------------------- webhooks


@router.get("/v1/webhooks/actions", summary="The actions a webhook can receive")
def webhook_actions(caller: Caller = Depends(current_caller)) -> Response:
    return json_response({"data": [{"object_type": "WEBHOOK_ACTION", "actions": list(ACTIONS)}]})


@router.get("/v1/webhooks", summary="List webhooks")
def list_webhooks(request: Request, page: Page = Depends(solvimon_page),
                  caller: Caller = Depends(current_caller)) -> Response:
    rows = webhooks.listed(caller.store, caller.environment)
    return json_response(paginate(request, rows, page, render, {"created_at": lambda row: (row.created_at, row.id),
                                                                "reference": lambda row: row.reference}))


@router.post("/v1/webhooks", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Create a webhook (its signing secret is in the answer, once)")
def create_webhook(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    row, secret = webhooks.create(caller.store, caller.environment, caller.now, require_object(body))
    return json_response(render(row, secret), 201)


@router.post("/v1/webhooks/test-connection", openapi_extra=OBJECT_BODY,
             summary="POST a signed test event to a URL (nothing is stored)")
def test_connection(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    successful, message = webhooks.test_connection(caller.environment, caller.now, require_object(body))
    return json_response({"successful": successful, "message": message})


@router.post("/v1/webhooks/{key}/send-test", summary="Deliver a signed webhook.test event to the webhook now")
def send_test(key: str, caller: Caller = Depends(current_caller)) -> Response:
    successful, message = webhooks.send_test(caller.store, caller.environment, caller.now,
                                             param(key, "resourceId") or "")
    return json_response({"successful": successful, "message": message})


@router.post("/v1/webhooks/{key}/send-penalty-box-payload", summary="Refused: ratecard has no penalty box")
def send_penalty_box_payload(key: str, caller: Caller = Depends(current_caller)) -> Response:
    webhooks.find(caller.store, caller.environment, param(key, "resourceId") or "")  # 404 for an unknown webhook
    raise invalid_operation("ratecard has no penalty box: a failing webhook stays active, each event is retried with "
                            "backoff up to 10 attempts, then FAILED and sent again with POST "
                            "/v1/webhook-events/{id}/resend; there is no penalty-box notice to send")


@router.get("/v1/webhooks/{key}", summary="Get a webhook")
def get_webhook(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return json_response(render(webhooks.find(caller.store, caller.environment, param(key, "resourceId") or "")))


@router.patch("/v1/webhooks/{key}", openapi_extra=OBJECT_BODY, summary="Update a webhook's name, actions, active")
def update_webhook(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    row = webhooks.update(caller.store, caller.environment, caller.now, param(key, "resourceId") or "",
                          require_object(body))
    return json_response(render(row))


@router.delete("/v1/webhooks/{key}", summary="Delete a webhook (its pending events fail)")
def delete_webhook(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return json_response(render(webhooks.delete(caller.store, caller.environment, caller.now,
                                                param(key, "resourceId") or "")))


@router.patch("/v1/webhooks/{key}/secret-key", openapi_extra=OBJECT_BODY,
              summary="Roll the signing secret (secret_key given, or generated)")
async def roll_secret(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    raw = await request.body()
    data = require_object(await json_body(request)) if raw.strip() else {}
    row, secret = webhooks.roll_secret(caller.store, caller.environment, caller.now, param(key, "resourceId") or "",
                                       data.get("secret_key"))
    return json_response(render(row, secret))


@router.delete("/v1/webhooks/{key}/secret-key", summary="Replace the signing secret with a generated one")
def delete_secret(key: str, caller: Caller = Depends(current_caller)) -> Response:
    row, secret = webhooks.roll_secret(caller.store, caller.environment, caller.now, param(key, "resourceId") or "")
    return json_response(render(row, secret))


# ---------------------------------------------------------------- webhook events (the delivery log)


def _hooks(caller: Caller) -> dict[int, str]:
    return {row.body["endpoint_id"]: row.id for row in webhooks.listed(caller.store, caller.environment)}


def _delivery_id(key: str) -> int:
    text = key[len(EVENT_PREFIX):] if key.startswith(EVENT_PREFIX) else ""
    if not text.isdigit() or len(text) > 18:
        raise not_found("webhook event", key)
    return int(text)


@router.get("/v1/webhook-events", summary="List webhook events (deliveries), newest first")
def list_webhook_events(request: Request, page: Page = Depends(solvimon_page),
                        webhook_id: str | None = Query(None), status: str | None = Query(None),
                        caller: Caller = Depends(current_caller)) -> Response:
    hooks = _hooks(caller)
    wanted = None
    if status is not None:
        wanted = {value: key for key, value in STATUSES.items()}.get(status.upper())
        if wanted is None:
            raise invalid("status", f"status must be one of {', '.join(STATUSES.values())}")
    rows = [row for row in list_deliveries(caller.store, caller.environment, status=wanted, limit=None)
            if row.endpoint_id in hooks and (webhook_id is None or hooks[row.endpoint_id] == webhook_id)]
    return json_response(paginate(request, rows, page, lambda row: render_event(row, hooks[row.endpoint_id]),
                                  {"created_at": lambda row: row.id}))


def _event(caller: Caller, key: str) -> tuple[DeliveryRow, str]:
    delivery_id = _delivery_id(key)
    hooks = _hooks(caller)
    for row in list_deliveries(caller.store, caller.environment, limit=None):
        if row.id == delivery_id and row.endpoint_id in hooks:
            return row, hooks[row.endpoint_id]
    raise not_found("webhook event", key)


@router.get("/v1/webhook-events/{key}", summary="Get a webhook event")
def get_webhook_event(key: str, caller: Caller = Depends(current_caller)) -> Response:
    return json_response(render_event(*_event(caller, key)))


@router.post("/v1/webhook-events/{key}/resend", summary="Send a failed webhook event again (queued, due now)")
def resend_webhook_event(key: str, caller: Caller = Depends(current_caller)) -> Response:
    row, _ = _event(caller, key)
    outcome = requeue_failed_delivery(caller.store, caller.environment, row.id, caller.now_us)
    if outcome != "requeued":
        raise invalid_operation(f"webhook event {key} is not failed (it is {STATUSES.get(row.status, row.status)}): "
                                "nothing to resend")
    return json_response(render_event(*_event(caller, key)))
