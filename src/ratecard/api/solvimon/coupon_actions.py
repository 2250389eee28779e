"""Changing coupons and promotion codes the Solvimon way: PATCH a coupon, move a coupon or a
promotion code along its lifecycle (activate, deactivate, deprecate, archive), add a promotion
code to a coupon. Each is a new catalog version (services/resources/coupons.py); the catalog
check then refuses a subscription that takes a coupon or code which is not ACTIVE (§13.3).
The read routes are in billing.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from ...services.resources import coupons
from ..context import Caller, current_caller
from ..errors import invalid
from .billing import COUPON_PREFIX, PROMO_PREFIX, coupon_body, promotion_body
from .common import OBJECT_BODY, json_body, json_response, param
from .config import snapshot
from .vocabulary import require_object

router = APIRouter(tags=["billing"])
ACTIONS = {"activate": "active", "deactivate": "inactive", "deprecate": "deprecated", "archive": "archived"}


def _code(key: str, prefix: str) -> str:
    param(key, "resourceIdOrReference")
    return key[len(prefix):] if key.startswith(prefix) else key


def _coupon_transition(target: str) -> Any:
    def transition(key: str, caller: Caller = Depends(current_caller)) -> Response:
        coupon, _ = coupons.change_coupon_status(caller.store, caller.environment, caller.now,
                                                 _code(key, COUPON_PREFIX), target)
        return json_response(coupon_body(snapshot(caller).catalog, coupon, caller.now))

    return transition


def _promotion_transition(target: str) -> Any:
    def transition(key: str, caller: Caller = Depends(current_caller)) -> Response:
        coupon, promotion, _ = coupons.change_promotion_status(caller.store, caller.environment, caller.now,
                                                               _code(key, PROMO_PREFIX), target)
        return json_response(promotion_body(snapshot(caller).catalog, coupon, caller.now, promotion))

    return transition


for _action, _target in ACTIONS.items():
    router.add_api_route("/v1/coupons/{key}/" + _action, _coupon_transition(_target), methods=["POST"],
                         name=f"{_action}_coupon", summary=f"Set a coupon's status to {_target.upper()}")
    router.add_api_route("/v1/promotion-codes/{key}/" + _action, _promotion_transition(_target), methods=["POST"],
                         name=f"{_action}_promotion_code", summary=f"Set a promotion code's status to {_target.upper()}")


@router.patch("/v1/coupons/{key}", openapi_extra=OBJECT_BODY,
              summary="Update a coupon (a new catalog version; its code cannot change)")
def update_coupon(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    coupon, _ = coupons.update_coupon(caller.store, caller.environment, caller.now, _code(key, COUPON_PREFIX),
                                      require_object(body))
    return json_response(coupon_body(snapshot(caller).catalog, coupon, caller.now))


@router.post("/v1/promotion-codes", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Add a promotion code to a coupon (a new catalog version)")
def create_promotion_code(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    data = require_object(body)
    coupon_id = data.get("coupon_id")
    if not isinstance(coupon_id, str) or not coupon_id:
        raise invalid("coupon_id", "coupon_id is required: the coupon the code takes")
    coupon, promotion, _ = coupons.create_promotion_code(caller.store, caller.environment, caller.now,
                                                         _code(coupon_id, COUPON_PREFIX), data)
    return json_response(promotion_body(snapshot(caller).catalog, coupon, caller.now, promotion), 201)
