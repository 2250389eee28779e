"""/v1/billing-entities, /v1/coupons and /v1/promotion-codes: the catalog's billing entities and
coupons in Solvimon's shapes, read-only (they are catalog keys: a change is a new catalog version,
applied with `ratecard catalog apply` or POST /v1/catalog); `POST /v1/coupons` is such a write:
services/resources/coupons.py adds the coupon as a new catalog version.

A promotion code is a coupon's code: ratecard's subscriptions name a coupon by its code, so each
coupon has exactly one promotion code, the code itself (id `promo_<code>`). A coupon's redemptions
are the subscriptions of the applied catalog that carry it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...catalog import Catalog
from ...catalog.schema import BillingEntity, Coupon, PromotionCode
from ...domain.instants import to_micros
from ...services.resources import billing_entities, coupons
from ..context import Caller, current_caller
from ..errors import invalid, not_found
from ..pagination import Page, paginate, solvimon_page
from .common import OBJECT_BODY, decimal_text, json_body, json_response, multi, param, wire_instant
from .config import snapshot

router = APIRouter(tags=["billing"])
ENTITY_PREFIX, COUPON_PREFIX, PROMO_PREFIX = "ben_", "cpn_", "promo_"
DURATIONS = {"once": "ONE_TIME", "forever": "FOREVER", "repeating": "PERIOD"}
COUPON_STATUSES = ("DRAFT", "ACTIVE", "INACTIVE", "DEPRECATED", "ARCHIVED")


def _catalog(caller: Caller) -> Catalog | None:
    return snapshot(caller).catalog


def _key(key: str, prefix: str) -> str:
    param(key, "resourceIdOrReference")
    return key[len(prefix):] if key.startswith(prefix) else key


# ---------------------------------------------------------------------------- billing entities


def entity_body(entity: BillingEntity, default: bool) -> dict[str, Any]:
    address = None
    if entity.address is not None:
        lines = list(entity.address.lines)
        address = {"line1": lines[0], "line2": ", ".join(lines[1:]) or None, "city": entity.address.city,
                   "postal_code": entity.address.postal_code, "country": entity.address.country}
        address = {key: value for key, value in address.items() if value is not None}
    body = {
        "object_type": "BILLING_ENTITY", "id": f"{ENTITY_PREFIX}{entity.code}", "reference": entity.code,
        "status": "ACTIVE", "timezone": entity.timezone, "legal_name": entity.legal_name or entity.name,
        "tax_id": entity.tax_id, "registered_address": address,
        "email": entity.email.sender if entity.email is not None else None,
        "ratecard": {"code": entity.code, "name": entity.name, "default": default, "country": entity.country,
                     "currency": entity.currency, "locale": entity.locale, "invoice_prefix": entity.invoice_prefix,
                     "payment_terms_days": entity.payment_terms_days, "peppol_id": entity.peppol_id,
                     "corrections": entity.corrections},
    }
    return {key: value for key, value in body.items() if value is not None}


@router.get("/v1/billing-entities", summary="The catalog's billing entities (the default one first)")
def list_entities(request: Request, custom_field: str | None = Query(None),
                  caller: Caller = Depends(current_caller)) -> Response:
    if multi(request, "expand"):
        raise invalid("expand", "expand: a billing entity has nothing to expand")
    if custom_field is not None:
        raise invalid("custom_field", "custom_field: ratecard's billing entities have no custom fields")
    catalog = _catalog(caller)
    entities = list(catalog.entities.values()) if catalog is not None else []
    default = catalog.default_entity if catalog is not None else None
    data = [entity_body(entity, entity.code == default) for entity in entities]
    return json_response({"data": data})


@router.get("/v1/billing-entities/{key}", summary="One billing entity (ben_<code> or its code)")
def get_entity(key: str, caller: Caller = Depends(current_caller)) -> Response:
    code = _key(key, ENTITY_PREFIX)
    catalog = _catalog(caller)
    entity = catalog.entities.get(code) if catalog is not None else None
    if entity is None or catalog is None:
        raise not_found("billing entity", key)
    return json_response(entity_body(entity, code == catalog.default_entity))


async def _object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise invalid(None, "the body must be a JSON object")
    return body


@router.post("/v1/billing-entities", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Add a billing entity to the catalog (a new catalog version)")
async def create_entity(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    entity, default = billing_entities.create(caller.store, caller.environment, caller.now, await _object(request))
    return json_response(entity_body(entity, default), 201)


@router.put("/v1/billing-entities", status_code=201, openapi_extra=OBJECT_BODY,
            summary="Create or replace a billing entity by reference (a new catalog version)")
async def upsert_entity(request: Request, identifier_field: str | None = Query(None),
                        custom_field_reference: str | None = Query(None), field_actions: str | None = Query(None),
                        caller: Caller = Depends(current_caller)) -> Response:
    if identifier_field not in (None, "reference"):
        raise invalid("identifier_field", "identifier_field: ratecard finds a billing entity by its reference")
    for name, value in (("custom_field_reference", custom_field_reference), ("field_actions", field_actions)):
        if value is not None:
            raise invalid(name, f"{name}: ratecard's billing entities have no custom fields")
    entity, default = billing_entities.upsert(caller.store, caller.environment, caller.now, await _object(request))
    return json_response(entity_body(entity, default), 201)


@router.patch("/v1/billing-entities/{key}", openapi_extra=OBJECT_BODY,
              summary="Change a billing entity's legal name, tax id, address or sender (a new catalog version)")
async def update_entity(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    entity, default = billing_entities.update(caller.store, caller.environment, caller.now,
                                              _key(key, ENTITY_PREFIX), await _object(request))
    return json_response(entity_body(entity, default))


# ------------------------------------------------------------------------- coupons, promotion codes


def _status(coupon: Coupon | PromotionCode, now: datetime) -> str:
    """Its lifecycle status; an active one is ACTIVE until its redeem_by (a subscription starting
    later cannot take it), INACTIVE after."""
    if coupon.status != "active":
        return coupon.status.upper()
    if coupon.redeem_by is not None:
        limit = coupon.redeem_by if isinstance(coupon.redeem_by, datetime) else \
            datetime(coupon.redeem_by.year, coupon.redeem_by.month, coupon.redeem_by.day, tzinfo=UTC)
        if (limit if limit.tzinfo else limit.replace(tzinfo=UTC)) < now:
            return "INACTIVE"
    return "ACTIVE"


def _redemptions(catalog: Catalog, code: str, exact: bool = False) -> list[Any]:
    """The subscriptions that took the coupon `code`, by its code or any of its promotion codes
    (`exact`: by this very code only, as a promotion code counts its own)."""
    codes = {code}
    if not exact:
        codes |= {p.code for c in catalog.document.coupons if c.code == code for p in c.promotion_codes}
    return [s for s in catalog.document.subscriptions if codes & set(s.coupons or [])]


def _moment(value: Any) -> str | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day, tzinfo=UTC)
    return wire_instant(to_micros(moment if moment.tzinfo else moment.replace(tzinfo=UTC)))


def coupon_body(catalog: Catalog | None, coupon: Coupon, now: datetime) -> dict[str, Any]:
    if coupon.percent_off is not None:
        discount: dict[str, Any] = {"type": "PERCENTAGE", "percentage": decimal_text(coupon.percent_off)}
    else:
        discount = {"type": "AMOUNT", "amount": {"quantity": decimal_text(coupon.amount_off or 0),
                                                 "currency": (coupon.currency or "").upper()}}
    body = {
        "object_type": "COUPON", "id": f"{COUPON_PREFIX}{coupon.code}", "reference": coupon.code,
        "name": coupon.code, "description": coupon.description, "status": _status(coupon, now),
        "discount": discount, "duration": {"type": DURATIONS[coupon.duration]},
        "end_at": _moment(coupon.redeem_by), "maximum_redemptions": coupon.max_redemptions,
        "number_of_redemptions": len(_redemptions(catalog, coupon.code)) if catalog is not None else 0,
        # `periods`: how many billing periods of the subscription a repeating coupon lasts
        "ratecard": {"code": coupon.code, "duration": coupon.duration, "periods": coupon.periods},
    }
    return {key: value for key, value in body.items() if value is not None}


def promotion_body(catalog: Catalog | None, coupon: Coupon, now: datetime,
                   promotion: PromotionCode | None = None) -> dict[str, Any]:
    """A promotion code: the coupon's own code (promotion None), or one added to it."""
    shown: Coupon | PromotionCode = promotion if promotion is not None else coupon
    body = {"object_type": "PROMOTION_CODE", "id": f"{PROMO_PREFIX}{shown.code}", "code_format": "CUSTOM",
            "code": shown.code, "coupon_id": f"{COUPON_PREFIX}{coupon.code}", "status": _status(shown, now),
            "end_at": _moment(shown.redeem_by), "maximum_redemptions": shown.max_redemptions,
            "number_of_redemptions": len(_redemptions(catalog, shown.code, exact=promotion is not None))
            if catalog is not None else 0}
    return {key: value for key, value in body.items() if value is not None}


def _promotions(coupons: list[Coupon]) -> list[tuple[Coupon, PromotionCode | None]]:
    """Every promotion code: each coupon's own, then those added to it."""
    return [(coupon, promotion) for coupon in coupons for promotion in (None, *coupon.promotion_codes)]


def _coupons(caller: Caller) -> tuple[Catalog | None, list[Coupon]]:
    catalog = _catalog(caller)
    return catalog, (list(catalog.document.coupons) if catalog is not None else [])


def _coupon(caller: Caller, key: str, prefix: str) -> tuple[Catalog, Coupon]:
    code = _key(key, prefix)
    catalog, coupons = _coupons(caller)
    found = next((coupon for coupon in coupons if coupon.code == code or (
        prefix == PROMO_PREFIX and any(p.code == code for p in coupon.promotion_codes))), None)
    if catalog is None or found is None:
        raise not_found("coupon" if prefix == COUPON_PREFIX else "promotion code", key)
    return catalog, found


def _statuses(request: Request) -> set[str]:
    wanted = {status.upper() for status in multi(request, "statuses")}
    unknown = wanted - set(COUPON_STATUSES)
    if unknown:
        raise invalid("statuses[]", f"statuses[] must be among {', '.join(COUPON_STATUSES)}")
    return wanted


def _no_expand(request: Request) -> None:
    if multi(request, "expand"):
        raise invalid("expand", "expand: ratecard expands nothing on coupons and promotion codes")


SORT = {"reference": lambda coupon: coupon.code, "id": lambda coupon: coupon.code}


@router.get("/v1/coupons", summary="The catalog's coupons")
def list_coupons(request: Request, page: Page = Depends(solvimon_page),
                 caller: Caller = Depends(current_caller)) -> Response:
    _no_expand(request)
    wanted = _statuses(request)
    catalog, coupons = _coupons(caller)
    if wanted:
        coupons = [c for c in coupons if _status(c, caller.now) in wanted]
    return json_response(paginate(request, coupons, page, lambda c: coupon_body(catalog, c, caller.now), SORT))


@router.post("/v1/coupons", status_code=201, summary="Add a coupon to the catalog (a new catalog version)",
             openapi_extra=OBJECT_BODY)
async def create_coupon(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise invalid(None, "the body must be a JSON object")
    coupon = coupons.create_coupon(caller.store, caller.environment, caller.now, body)
    # a new coupon: no subscription carries it yet (the request's catalog snapshot predates it)
    return json_response(coupon_body(None, coupon, caller.now), 201)


@router.get("/v1/coupons/{key}/redemptions", summary="The subscriptions that carry the coupon")
def coupon_redemptions(key: str, request: Request, page: Page = Depends(solvimon_page),
                       customer_id: str | None = Query(None), pricing_plan_subscription_id: str | None = Query(None),
                       caller: Caller = Depends(current_caller)) -> Response:
    return _redemption_list(caller, request, page, key, COUPON_PREFIX, customer_id, pricing_plan_subscription_id)


@router.get("/v1/coupons/{key}", summary="One coupon (cpn_<code> or its code)")
def get_coupon(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    _no_expand(request)
    catalog, coupon = _coupon(caller, key, COUPON_PREFIX)
    return json_response(coupon_body(catalog, coupon, caller.now))


@router.get("/v1/promotion-codes", summary="The promotion codes: one per coupon, its code")
def list_promotion_codes(request: Request, page: Page = Depends(solvimon_page), coupon_id: str | None = Query(None),
                         caller: Caller = Depends(current_caller)) -> Response:
    _no_expand(request)
    wanted = _statuses(request)
    catalog, coupons = _coupons(caller)
    if coupon_id is not None:
        code = _key(coupon_id, COUPON_PREFIX)
        coupons = [c for c in coupons if c.code == code]
    codes = _promotions(coupons)
    if wanted:
        codes = [(c, p) for c, p in codes if _status(p or c, caller.now) in wanted]
    return json_response(paginate(request, codes, page, lambda item: promotion_body(catalog, item[0], caller.now, item[1]),
                                  {"reference": lambda item: (item[1] or item[0]).code,
                                   "id": lambda item: (item[1] or item[0]).code}))


@router.get("/v1/promotion-codes/{key}/redemptions", summary="The subscriptions that carry the code's coupon")
def promotion_redemptions(key: str, request: Request, page: Page = Depends(solvimon_page),
                          customer_id: str | None = Query(None),
                          pricing_plan_subscription_id: str | None = Query(None),
                          caller: Caller = Depends(current_caller)) -> Response:
    return _redemption_list(caller, request, page, key, PROMO_PREFIX, customer_id, pricing_plan_subscription_id)


@router.get("/v1/promotion-codes/{key}", summary="One promotion code (promo_<code> or the code)")
def get_promotion_code(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    _no_expand(request)
    catalog, coupon = _coupon(caller, key, PROMO_PREFIX)
    code = _key(key, PROMO_PREFIX)
    promotion = next((p for p in coupon.promotion_codes if p.code == code), None)
    return json_response(promotion_body(catalog, coupon, caller.now, promotion))


def _redemption_list(caller: Caller, request: Request, page: Page, key: str, prefix: str, customer_id: str | None,
                     subscription_id: str | None) -> Response:
    _no_expand(request)
    catalog, coupon = _coupon(caller, key, prefix)
    view = snapshot(caller).view
    code = _key(key, prefix)
    promotion = next((p for p in coupon.promotion_codes if p.code == code), None) if prefix == PROMO_PREFIX else None
    subscriptions = _redemptions(catalog, code, exact=True) if promotion is not None else \
        _redemptions(catalog, coupon.code)
    if customer_id is not None:
        param(customer_id, "customer_id")
        customer = view.customer_reference(customer_id)
        subscriptions = [s for s in subscriptions if s.customer == customer]
    if subscription_id is not None:
        param(subscription_id, "pricing_plan_subscription_id")
        subscriptions = [s for s in subscriptions if s.reference == subscription_id]

    def body(subscription: Any) -> dict[str, Any]:
        out = {"coupon_id": f"{COUPON_PREFIX}{coupon.code}", "redeemed_at": _moment(subscription.start),
               "customer_id": view.customer_id(subscription.customer),
               "pricing_plan_subscription_id": subscription.reference}
        if prefix == PROMO_PREFIX:
            shown = promotion.code if promotion is not None else coupon.code
            out["promotion_code_details"] = {"promotion_code_id": f"{PROMO_PREFIX}{shown}", "code": shown}
        return {key: value for key, value in out.items() if value is not None}

    return json_response(paginate(request, subscriptions, page, body,
                                  {"pricing_plan_subscription_id": lambda s: s.reference}))
