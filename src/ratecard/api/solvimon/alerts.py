"""/v1/alerts: ratecard's alerts (missing events and the other monitoring rules of
`ratecard monitor`) in Solvimon's ALERT shape, so the SDK's `get_alerts` reads them.

Solvimon's alerts come from alert rules on entitlements and invoices; ratecard's from its
monitoring rules. The mapping: `id` alert_<n>, `created_at` when it opened, `customer_id` the
customer's id, `alert_rule_id` rule_<n> (ratecard's rule), `data_trigger_reference` the meter,
and the extension `ratecard` with ratecard's own document (kind, status, message, details,
resolved_at). `type` is left out: Solvimon's are ENTITLEMENT and INVOICE (the SDK refuses any
other value), and a missing-event or drop alert is neither. ratecard's own shape is served at /v1/ingestion/alerts.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...services import monitoring
from ...services.resources.model import View
from ..context import Caller, current_caller
from ..errors import ApiError, not_found
from ..pagination import Page, paginate, solvimon_page
from .common import json_response, multi, param
from .config import snapshot
from .customers import render as render_customer

router = APIRouter(tags=["alerts"])
ID_PREFIX = "alert_"


def render(view: View, alert: dict[str, Any], expand: list[str] | None = None) -> dict[str, Any]:
    customer = view.find_customer(alert["customer"]) if alert.get("customer") else None
    out: dict[str, Any] = {
        "object_type": "ALERT",
        "id": f"{ID_PREFIX}{alert['id']}",
        "created_at": alert["opened_at"],
        "customer_id": view.customer_id(alert["customer"]) if alert.get("customer") else None,
        "alert_rule_id": f"rule_{alert['rule']}" if alert.get("rule") is not None else None,
        "data_trigger_reference": alert.get("meter"),
        "ratecard": alert,
    }
    if customer is not None and expand and "customer_id" in expand:
        out["customer"] = render_customer(view, *customer)
    return {key: value for key, value in out.items() if value is not None}


@router.get("/v1/alerts", summary="List alerts in Solvimon's shape, newest first (customer_id filters)")
def list_alerts(request: Request, page: Page = Depends(solvimon_page), customer_id: str | None = Query(None),
                expand: list[str] | None = Query(None, alias="expand[]"),
                caller: Caller = Depends(current_caller)) -> Response:
    view = snapshot(caller).view
    alerts = monitoring.alerts(caller.store, caller.environment, None, limit=None)  # newest first
    if param(customer_id, "customer_id") is not None:
        customer = view.customer_reference(customer_id)
        alerts = [alert for alert in alerts if alert.get("customer") == customer]
    expanded = multi(request, "expand")
    return json_response(paginate(request, alerts, page, lambda alert: render(view, alert, expanded),
                                  {"created_at": lambda alert: (alert["opened_at"], alert["id"]),
                                   "id": lambda alert: alert["id"]}))


@router.post("/v1/alerts", summary="Refused: ratecard's alerts are opened by its monitoring rules")
def create_alert(caller: Caller = Depends(current_caller)) -> Response:
    # Solvimon's alerts are raised by its alert rules; ratecard's by the rules of `ratecard monitor`
    # (missing events, drops), from what it stores. An alert posted from outside would have no rule
    # to resolve it, so the write is refused with where alerts come from.
    raise ApiError(400, "INVALID_OPERATION", "ratecard opens and resolves alerts itself from its monitoring rules "
                                             "(`ratecard alerts rules add`, then `ratecard monitor run`); an alert "
                                             "cannot be posted. Usage caps are usage limits (/v1/usage-limits)")


@router.get("/v1/alerts/{key}", summary="Get an alert (alert_<n>)")
def get_alert(key: str, request: Request, expand: list[str] | None = Query(None, alias="expand[]"),
              caller: Caller = Depends(current_caller)) -> Response:
    number = key[len(ID_PREFIX):] if key.startswith(ID_PREFIX) else key
    found = next((alert for alert in monitoring.alerts(caller.store, caller.environment, None, limit=None)
                  if str(alert["id"]) == number), None)
    if found is None:
        raise not_found("alert", key)
    return json_response(render(snapshot(caller).view, found, multi(request, "expand")))
