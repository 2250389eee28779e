"""ratecard's own subscription resources: list and read them, create one, change its terms from an
instant, cancel it. Each write is a new catalog version of the key's environment; `preview=true`
answers what the write would produce (the terms and the customer's next invoices) and stores nothing.

Solvimon's API names its subscriptions `pricing-plan-subscriptions`, which ratecard does not
serve: these paths are ratecard's alone.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from ...catalog import Catalog
from ...services import subscription_changes as changes
from ..context import Caller, current_caller
from ..errors import ApiError
from ..pagination import Page, paginate, ratecard_page

router = APIRouter(tags=["subscriptions"])

Reference = Field(min_length=1, max_length=200)
Instant = Field(min_length=1, max_length=64, description="a date (local midnight in the customer's timezone) or an "
                                                         "RFC 3339 datetime with its offset")
Overrides = dict[str, dict[str, Any]]
PREVIEW = Query(False, description="answer what the write would produce; store nothing")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateSubscription(Strict):
    reference: str = Reference
    customer: str = Reference
    plan: str = Reference
    start: str | None = Field(None, min_length=1, max_length=64, description="default: now")
    billing_anchor: int | None = Field(None, description="day of the month periods start on, 1..31")
    overrides: Overrides | None = None
    requires_reference: bool = Field(False, description="bill only the events that name this subscription")
    quantity: int | None = Field(None, description="seats: the plan's flat fees are billed this many times")
    trial_days: int | None = Field(None, description="days free from the start (default: the plan's; 0: none)")


class ChangeSubscription(Strict):
    at: str = Instant
    plan: str | None = Field(None, min_length=1, max_length=200, description="default: the plan in force")
    overrides: Overrides | None = Field(None, description="fields laid over the overrides in force (over none when "
                                                          "the plan changes)")
    proration: Literal["prorate", "none", "invoice_now"] = "prorate"
    replace_later: bool = False
    quantity: int | None = Field(None, description="seats from `at` (default: those in force)")


class OneOffCharge(Strict):
    code: str = Reference
    amount: str = Field(min_length=1, max_length=64, description="the amount of one unit, e.g. \"500.00\"")
    at: str | None = Field(None, min_length=1, max_length=64, description="default: now")
    description: str | None = Field(None, max_length=500)
    quantity: str | None = Field(None, min_length=1, max_length=64, description="units, default 1")


class UnscheduleChange(Strict):
    at: str = Instant


class CancelSubscription(Strict):
    at: str | None = Field(None, min_length=1, max_length=64)
    at_period_end: bool = False
    proration: Literal["prorate", "none"] = "prorate"
    replace_later: bool = False


def _catalog(caller: Caller) -> Catalog:
    """The environment's current catalog (cached); 404 when none was applied, as for plans."""
    state = caller.catalog()
    if state is None:
        raise ApiError(404, "RESOURCE_NOT_FOUND", "no catalog has been applied in this environment")
    return state.catalog


def _answer(result: changes.SubscriptionEdit, created: bool = False) -> JSONResponse:
    status = 201 if created and result.stored else 200
    return JSONResponse(result.as_dict(), status_code=status)


@router.get("/v1/subscriptions", summary="Subscriptions of the current catalog, with status, plan now and next change")
def list_subscriptions(request: Request, customer: str | None = Query(None), page: Page = Depends(ratecard_page),
                       caller: Caller = Depends(current_caller)) -> dict:
    items = changes.subscriptions_of(_catalog(caller), caller.now, customer)
    return paginate(request, items, page, lambda item: item,
                    {"reference": lambda item: item["reference"], "customer": lambda item: item["customer"]})


@router.post("/v1/subscriptions", summary="Create a subscription of an existing customer (a new catalog version)")
def create_subscription(body: CreateSubscription, preview: bool = PREVIEW,
                        caller: Caller = Depends(current_caller)) -> JSONResponse:
    result = changes.create_subscription(
        caller.store, caller.now, caller.environment, reference=body.reference, customer=body.customer,
        plan=body.plan, start=body.start, anchor=body.billing_anchor, overrides=body.overrides, dry_run=preview,
        requires_reference=body.requires_reference, quantity=body.quantity, trial_days=body.trial_days)
    return _answer(result, created=True)


@router.post("/v1/subscriptions/{reference:path}/change",
             summary="New terms (plan, overrides, seats) from an instant (a new catalog version)")
def change_subscription(reference: str, body: ChangeSubscription, preview: bool = PREVIEW,
                        caller: Caller = Depends(current_caller)) -> JSONResponse:
    result = changes.change_subscription(
        caller.store, caller.now, caller.environment, reference=reference, at=body.at, plan=body.plan,
        overrides=body.overrides, proration=body.proration, replace_later=body.replace_later, dry_run=preview,
        quantity=body.quantity)
    return _answer(result)


@router.post("/v1/subscriptions/{reference:path}/charges",
             summary="A one-off charge on the subscription's next invoice at or after an instant (a new catalog "
                     "version)")
def charge_subscription(reference: str, body: OneOffCharge, preview: bool = PREVIEW,
                        caller: Caller = Depends(current_caller)) -> JSONResponse:
    result = changes.charge_subscription(
        caller.store, caller.now, caller.environment, reference=reference, code=body.code, amount=body.amount,
        at=body.at, description=body.description, quantity=body.quantity, dry_run=preview)
    return _answer(result)


@router.post("/v1/subscriptions/{reference:path}/cancel",
             summary="End a subscription at an instant or at the current period's end (a new catalog version)")
def cancel_subscription(reference: str, body: CancelSubscription, preview: bool = PREVIEW,
                        caller: Caller = Depends(current_caller)) -> JSONResponse:
    result = changes.cancel_subscription(
        caller.store, caller.now, caller.environment, reference=reference, at=body.at,
        at_period_end=body.at_period_end, proration=body.proration, replace_later=body.replace_later,
        dry_run=preview)
    return _answer(result)


@router.get("/v1/subscriptions/{reference:path}",
            summary="A subscription: its terms, every phase, and the catalog versions that changed it")
def get_subscription(reference: str, caller: Caller = Depends(current_caller)) -> dict:
    _catalog(caller)
    return changes.show_subscription(caller.store, caller.now, reference, caller.environment).as_dict()


@router.post("/v1/subscriptions/{reference:path}/unschedule",
             summary="Take back a change still to come, at exactly `at` (a new catalog version)")
def unschedule_change(reference: str, body: UnscheduleChange, preview: bool = PREVIEW,
                      caller: Caller = Depends(current_caller)) -> JSONResponse:
    result = changes.unschedule_change(caller.store, caller.now, caller.environment, reference=reference, at=body.at,
                                       dry_run=preview)
    return _answer(result)


@router.post("/v1/subscriptions/{reference:path}/void",
             summary="Void a subscription made in error: out of the catalog, nothing billed (a new catalog version)")
def void_subscription(reference: str, preview: bool = PREVIEW, caller: Caller = Depends(current_caller)) -> JSONResponse:
    result = changes.void_subscription(caller.store, caller.now, caller.environment, reference=reference,
                                       dry_run=preview)
    return _answer(result)
