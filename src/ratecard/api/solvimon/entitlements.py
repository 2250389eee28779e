"""GET /v1/customers/{key}/entitlements: what the plans of the customer's active subscriptions grant,
with the current period's usage of usage-limited features, from the process's entitlement cache
(services.entitlements). Registered before /v1/customers/{key:path}, which would take the path."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from ...domain.instants import to_micros
from ...services.entitlements import ENTITLEMENTS, Granted
from ...services.resources.features import feature_id
from ..context import Caller, current_caller
from ..errors import not_found
from .common import decimal_text, json_response, param, wire_instant
from .config import snapshot

router = APIRouter(tags=["customers"])


def _item(environment: str, granted: Granted) -> dict[str, Any]:
    feature = granted.feature
    out: dict[str, Any] = {"feature_reference": feature.code, "feature_id": feature_id(environment, feature.code),
                           "type": feature.type.upper()}
    if feature.type == "number":
        out["number"] = decimal_text(granted.value)
        if granted.usage is not None:
            out["usage"] = decimal_text(granted.usage)
            remaining = granted.remaining
            out["remaining"] = decimal_text(remaining) if remaining is not None else None
    elif feature.type == "switch":
        out["switch"] = granted.value
    else:
        out["enums"] = list(granted.value)
    if granted.override:  # the customer's own value (an override or a usage limit), not the plan's
        out["override"] = True
    return out


@router.get("/v1/customers/{key}/entitlements", summary="A customer's entitlements (plan features and usage)")
def customer_entitlements(key: str, caller: Caller = Depends(current_caller)) -> Response:
    key = param(key, "resourceIdOrReference") or ""
    view = snapshot(caller).view
    state = caller.catalog()
    found = view.find_customer(key) if state is not None else None
    if found is None or state is None:
        raise not_found("customer", key)
    customer = found[0]
    answer = ENTITLEMENTS.get(caller.store, caller.environment, state.catalog, state.version, customer.reference,
                              caller.now)
    env = caller.environment
    return json_response({
        "customer_id": view.customer_id(customer.reference),
        "customer_reference": customer.reference,
        "as_of": wire_instant(to_micros(answer.as_of)),
        "catalog_version": answer.catalog_version,
        "entitlements": [_item(env, item) for item in answer.merged()],
        "pricing_plan_subscription_entitlements": [
            {"pricing_plan_subscription_id": sub.subscription, "pricing_plan_reference": sub.plan,
             "period_start": wire_instant(to_micros(sub.period_start)) if sub.period_start else None,
             "period_end": wire_instant(to_micros(sub.period_end)) if sub.period_end else None,
             "entitlements": [_item(env, item) for item in sub.granted]}
            for sub in answer.subscriptions],
    })
