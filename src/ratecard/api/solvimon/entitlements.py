"""GET /v1/customers/{key}/entitlements: what the plans of the customer's active subscriptions grant,
with the current period's usage of usage-limited features, from the process's entitlement cache
(services.entitlements). Registered before /v1/customers/{key:path}, which would take the path."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...domain.instants import to_micros
from ...services.entitlements import ENTITLEMENTS, CustomerEntitlements, Granted
from ...services.resources.features import feature_id
from ...services.resources.model import View
from ..context import Caller, current_caller
from ..errors import not_found
from .common import decimal_text, json_response, param, wire_instant
from .config import cached_snapshot, snapshot

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


# How far behind another process's catalog or resource change this route may answer: it reuses
# the fingerprint this process read less than this many seconds ago instead of reading it per
# request (this process's own writes make it read again at once). Usage is kept fresh by the
# entitlement cache (services.entitlements).
FINGERPRINT_MAX_AGE = 1.0


@router.get("/v1/customers/{key}/entitlements", summary="A customer's entitlements (plan features and usage)")
async def customer_entitlements(key: str, caller: Caller = Depends(current_caller)) -> Response:
    """Answered on the event loop when everything is in memory (the usual case: no thread hop,
    no query); otherwise on a worker thread, which reads what is missing."""
    key = param(key, "resourceIdOrReference") or ""
    reused = caller.reuse_recent_fingerprint(FINGERPRINT_MAX_AGE)
    body = _from_memory(caller, key)
    if body is None:
        body = await run_in_threadpool(_read, caller, key, reused)
    return json_response(body)


def _from_memory(caller: Caller, key: str) -> dict[str, Any] | None:
    snap = cached_snapshot(caller)
    if snap is None:
        return None
    found = snap.view.find_customer(key) if snap.catalog_state is not None else None
    if found is None or snap.catalog_state is None:
        return None  # on the thread: the fingerprint is read before answering 404
    state = snap.catalog_state
    answer = ENTITLEMENTS.cached(caller.store, caller.environment, state.version, found[0].reference, caller.now)
    return None if answer is None else _body(caller.environment, snap.view, answer)


def _read(caller: Caller, key: str, reused: bool) -> dict[str, Any]:
    view = snapshot(caller).view
    state = caller.catalog()
    found = view.find_customer(key) if state is not None else None
    if (found is None or state is None) and reused:  # a customer created elsewhere just now: look again
        caller.read_fingerprint_again()
        view = snapshot(caller).view
        state = caller.catalog()
        found = view.find_customer(key) if state is not None else None
    if found is None or state is None:
        raise not_found("customer", key)
    customer = found[0]
    answer = ENTITLEMENTS.get(caller.store, caller.environment, state.catalog, state.version, customer.reference,
                              caller.now)
    return _body(caller.environment, view, answer)


def _body(env: str, view: View, answer: CustomerEntitlements) -> dict[str, Any]:
    return {
        "customer_id": view.customer_id(answer.customer),
        "customer_reference": answer.customer,
        "as_of": wire_instant(to_micros(answer.as_of)),
        "catalog_version": answer.catalog_version,
        "entitlements": [_item(env, item) for item in answer.merged()],
        "pricing_plan_subscription_entitlements": [
            {"pricing_plan_subscription_id": sub.subscription, "pricing_plan_reference": sub.plan,
             "period_start": wire_instant(to_micros(sub.period_start)) if sub.period_start else None,
             "period_end": wire_instant(to_micros(sub.period_end)) if sub.period_end else None,
             "entitlements": [_item(env, item) for item in sub.granted]}
            for sub in answer.subscriptions],
    }
